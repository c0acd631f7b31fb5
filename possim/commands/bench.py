"""``possim bench [--quick] [--json] [--only SECTION]``: the project's stopwatch measurements.

Sections (each ``possim.bench.<name>.run(quick)``):
  enumeration   sign-in, sign-up and reset answer as fast for a taken address as for a free one
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

SECTIONS = ("enumeration",)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="measure on this machine (stopwatch figures, not tests)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="fewer samples: a smoke run, not a measurement")
    parser.add_argument("--json", action="store_true", help="print one JSON object, no progress bar")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only this section (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sections = args.only or list(SECTIONS)
    results: dict[str, Any] = {}
    console = Console(stderr=True)
    with Progress(console=console, disable=args.json, transient=True) as progress:
        task = progress.add_task("possim bench", total=len(sections))
        for name in sections:
            progress.update(task, description=f"bench: {name}")
            module = importlib.import_module(f"possim.bench.{name}")
            results[name] = module.run(quick=args.quick)
            progress.advance(task)
    if args.json:
        print(json.dumps(results))
    else:
        _print_tables(Console(), results)
    return 0


def _print_tables(console: Console, results: dict[str, Any]) -> None:
    enumeration = results.get("enumeration")
    if enumeration is None:
        return
    table = Table(
        title=f"account enumeration by timing ({enumeration['samples']} pairs each, α={enumeration['alpha']})"
    )
    for column in ("case", "taken / with work ms", "free / without ms", "Mann-Whitney p", "verdict"):
        table.add_column(column)
    for case in ("power_check", "sign_in", "sign_up", "reset"):
        row = enumeration[case]
        verdict = ("differs" if row["differs"] else "same") + ("" if row["as_expected"] else "  (unexpected)")
        table.add_row(
            case, f"{row['median_ms'][0]:.1f}", f"{row['median_ms'][1]:.1f}", f"{row['p_value']:.3g}", verdict
        )
    console.print(table)
    sys.stdout.flush()
