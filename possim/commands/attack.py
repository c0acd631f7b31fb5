"""``possim attack``: replay 7pay's attack against a fresh core and count what it cost (``possim.attack``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar

from possim.attack import defences
from possim.attack.report import plot, side_by_side
from possim.attack.run import Progress, run_attack, run_card_testing
from possim.attack.scenario import Scenario

CARD_ATTEMPTS = 20_000


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "attack", help="replay the 7pay attack against a fresh core and count what it cost"
    )
    kinds = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    stuffing = kinds.add_parser(
        "credential-stuffing", help="a leaked ID/password list over many addresses, then the stolen wallets emptied"
    )
    stuffing.add_argument("--operator", action="store_true", help="an operator uses the incident controls mid-attack")
    _common(stuffing, Scenario.attempts, "list entries")
    stuffing.set_defaults(func=run, runner=run_attack)
    testing = kinds.add_parser(
        "card-testing", help="leaked card numbers linked to the attacker's wallets, security codes guessed (PayPay)"
    )
    _common(testing, CARD_ATTEMPTS, "security codes tried at most")
    testing.set_defaults(func=run, runner=run_card_testing, operator=False)


def _common(parser: argparse.ArgumentParser, attempts: int, what: str) -> None:
    parser.add_argument(
        "--defenses",
        choices=(*defences.NAMES, "both"),
        default="both",
        help="7pay: the core as 7pay was in 2019; hardened: possim as shipped; both (default): one after the other",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--accounts", type=_count, default=Scenario.accounts, help="customers (default 20,000)")
    parser.add_argument("--attempts", type=_count, default=attempts, help=f"{what} (default {attempts:,})")
    parser.add_argument(
        "--max-seconds", type=float, default=Scenario.max_seconds, help="each run's time bound (default 600)"
    )
    parser.add_argument(
        "--core-workers", type=int, default=1, metavar="N", help="serve the core with N processes (default 1)"
    )
    parser.add_argument("--json", action="store_true", help="the figures as JSON, no progress bar")
    parser.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="yen lost and attempts over time")


def _count(value: str) -> int:
    number = int(value)
    if number < 10:
        raise argparse.ArgumentTypeError(f"{value}: at least 10")
    return number


def _one(args: argparse.Namespace, scenario: Scenario, name: str, progress: Progress | None) -> dict[str, Any]:
    if args.runner is run_attack:
        answer: dict[str, Any] = run_attack(scenario, name, operator=args.operator, progress=progress)
        return answer
    result: dict[str, Any] = args.runner(scenario, name, progress=progress)
    return result


def run(args: argparse.Namespace) -> int:
    scenario = Scenario(
        accounts=args.accounts,
        attempts=args.attempts,
        seed=args.seed,
        max_seconds=args.max_seconds,
        core_workers=args.core_workers,
    )
    names = list(defences.NAMES) if args.defenses == "both" else [args.defenses]
    console = Console(stderr=True)
    runs = []
    try:
        for name in names:
            if args.json:
                runs.append(_one(args, scenario, name, None))
                continue
            with Bar(
                TextColumn(f"[bold]{name}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
            ) as bar:
                task = bar.add_task("tries", total=scenario.attempts)

                def advance(done: int, total: int, bar: Bar = bar, task: Any = task) -> None:
                    bar.update(task, completed=done, total=total)

                runs.append(_one(args, scenario, name, advance))
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
