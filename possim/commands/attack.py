"""``possim attack``: replay 7pay's attack against a fresh core and count what it cost (``possim.attack``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from possim.attack import defences
from possim.attack.report import plot, side_by_side
from possim.attack.run import run_attack
from possim.attack.scenario import Scenario


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "attack", help="replay the 7pay attack against a fresh core and count what it cost"
    )
    kinds = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    stuffing = kinds.add_parser(
        "credential-stuffing", help="a leaked ID/password list over many addresses, then the stolen wallets emptied"
    )
    stuffing.add_argument(
        "--defenses",
        choices=(*defences.NAMES, "both"),
        default="both",
        help="7pay: the core as 7pay was in 2019; hardened: possim as shipped; both (default): one after the other",
    )
    stuffing.add_argument("--seed", type=int, default=7)
    stuffing.add_argument("--accounts", type=_count, default=Scenario.accounts, help="customers (default 20,000)")
    stuffing.add_argument("--attempts", type=_count, default=Scenario.attempts, help="list entries (default 200,000)")
    stuffing.add_argument(
        "--max-seconds", type=float, default=Scenario.max_seconds, help="each run's time bound (default 600)"
    )
    stuffing.add_argument("--operator", action="store_true", help="an operator uses the incident controls mid-attack")
    stuffing.add_argument("--json", action="store_true", help="the figures as JSON, no progress bar")
    stuffing.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="yen lost and attempts over time")
    stuffing.set_defaults(func=run)


def _count(value: str) -> int:
    number = int(value)
    if number < 10:
        raise argparse.ArgumentTypeError(f"{value}: at least 10")
    return number


def run(args: argparse.Namespace) -> int:
    scenario = Scenario(accounts=args.accounts, attempts=args.attempts, seed=args.seed, max_seconds=args.max_seconds)
    names = list(defences.NAMES) if args.defenses == "both" else [args.defenses]
    console = Console(stderr=True)
    runs = []
    try:
        for name in names:
            if args.json:
                runs.append(run_attack(scenario, name, operator=args.operator))
                continue
            with Progress(
                TextColumn(f"[bold]{name}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
            ) as bar:
                task = bar.add_task("sign-ins", total=scenario.attempts)

                def advance(done: int, total: int, bar: Progress = bar, task: Any = task) -> None:
                    bar.update(task, completed=done, total=total)

                runs.append(run_attack(scenario, name, operator=args.operator, progress=advance))
    except (RuntimeError, OSError) as error:
        print(f"possim attack: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    if args.plot is not None:
        plot(runs, args.plot)
    if args.json:
        print(json.dumps(runs[0] if len(runs) == 1 else {"runs": runs}, indent=2))
    else:
        for line in side_by_side(runs):
            print(line)
    return 0
