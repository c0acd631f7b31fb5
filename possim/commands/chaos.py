"""``possim chaos``: seeded faults and crashes between registers and a served core, then proof that no payment
was lost or taken twice (``possim.chaos``). Exit 1, with the command line that replays it, on any failed check."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import SQLAlchemyError

from possim.chaos.faults import FaultRates
from possim.chaos.report import as_json as as_json_figures
from possim.chaos.report import print_table
from possim.chaos.run import ChaosResult, ChaosSettings, run_chaos
from possim.chaos.shop import STORES


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "chaos",
        help="pay through seeded network faults and core crashes; prove nothing was lost or charged twice",
        description=__doc__,
    )
    parser.add_argument("--seed", type=int, required=True, help="every random choice comes from it: a replay")
    parser.add_argument("--payments", type=_count, required=True, help="sales in all, over every register")
    parser.add_argument("--registers", type=_count, default=3, help="registers selling at once (default 3)")
    defaults = FaultRates()
    for name, what in (
        ("drop_request", "a request never reaches the core"),
        ("drop_response", "the core's answer is lost"),
        ("delay", "a request waits before it is sent on"),
        ("duplicate", "a request reaches the core twice"),
        ("reorder", "a request is overtaken by a later one"),
        ("timeout", "no answer in time; the request reaches the core late"),
    ):
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=_rate,
            default=getattr(defaults, name),
            metavar="P",
            help=f"the chance that {what} (default {getattr(defaults, name):g})",
        )
    parser.add_argument(
        "--crashes", type=int, default=0, metavar="K", help="kill -9 the core K times under load (default 0)"
    )
    parser.add_argument("--store", choices=STORES, default="sqlite", help="the core's database (default sqlite)")
    parser.add_argument(
        "--core-workers",
        type=_count,
        default=1,
        metavar="N",
        help="serve the core with N processes; a crash then kills one worker (default 1)",
    )
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="selling stops after this (default 1800)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(func=run)


def _count(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return number


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value} is not a number") from None
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return rate


def run(args: argparse.Namespace) -> int:
    try:
        rates = FaultRates(
            drop_request=args.drop_request,
            drop_response=args.drop_response,
            delay=args.delay,
            duplicate=args.duplicate,
            reorder=args.reorder,
            timeout=args.timeout,
        )
        settings = ChaosSettings(
            seed=args.seed,
            payments=args.payments,
            registers=args.registers,
            rates=rates,
            crashes=args.crashes,
            store=args.store,
            core_workers=args.core_workers,
            max_seconds=args.max_seconds,
        )
    except ValueError as error:
        print(f"possim chaos: {error}", file=sys.stderr)
        return 2
    try:
        if args.json:
            result = run_chaos(settings)
        else:
            with Progress(
                TextColumn("[bold]chaos[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True,
                console=Console(stderr=True),
            ) as bar:  # fmt: skip
                task = bar.add_task("sales", total=settings.payments)
                result = run_chaos(settings, progress=lambda done, total: bar.update(task, completed=done, total=total))
    except (RuntimeError, OSError, SQLAlchemyError) as error:
        print(f"possim chaos: {str(error).splitlines()[0]}", file=sys.stderr)
        print(f"replay: {settings.command_line()}", file=sys.stderr)
        return 1
    return report(result, as_json=args.json)


def report(result: ChaosResult, *, as_json: bool) -> int:
    """Print a run's figures (a table, or JSON); on any failed check each problem and the command line that
    replays the run, on stderr, and 1."""
    if as_json:
        print(json.dumps(as_json_figures(result.figures), indent=2))
    else:
        print_table(Console(), result.figures)
    if result.ok:
        return 0
    for problem in result.figures["problems"]:
        print(f"possim chaos: {problem}", file=sys.stderr)
    print(f"possim chaos: FAILED; replay: {result.settings.command_line()}", file=sys.stderr)
    return 1
