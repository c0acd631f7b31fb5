"""``possim bench [--quick] [--json] [--only SECTION]``: the project's stopwatch measurements.

Sections (each ``possim.bench.<module>.run(quick)``):
  enumeration   sign-in, sign-up and reset answer as fast for a taken address as for a free one
  core          approved payments a second from 32 registers at once, on SQLite and on PostgreSQL,
                against a bare FastAPI app's ceiling measured in the same run (possim.bench.core_load)
  scan          hard 1280x720 camera frames (tilted, far, motion-blurred, glare, low light, mixed): possim's
                pipeline against zxing-cpp, pyzbar, OpenCV and their union (possim.bench.scan)
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

SECTIONS = ("enumeration", "core", "scan")
MODULES = {"enumeration": "enumeration", "core": "core_load", "scan": "scan"}  # a section's module in possim.bench


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
            module = importlib.import_module(f"possim.bench.{MODULES[name]}")
            results[name] = module.run(quick=args.quick)
            progress.advance(task)
    if args.json:
        print(json.dumps(results))
    else:
        _print_tables(Console(), results)
    return 0


def _print_tables(console: Console, results: dict[str, Any]) -> None:
    enumeration = results.get("enumeration")
    if enumeration is not None:
        _print_enumeration(console, enumeration)
    core = results.get("core")
    if core is not None:
        _print_core(console, core)
    if "scan" in results:
        importlib.import_module("possim.bench.scan").print_table(console, results["scan"])
    sys.stdout.flush()


def _print_enumeration(console: Console, enumeration: dict[str, Any]) -> None:
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


def _print_core(console: Console, core: dict[str, Any]) -> None:
    table = Table(
        title=f"core: approved payments/s, {core['terminals']} registers, {core['phones']} phones, "
        f"{core['payments']} × {core['amount_yen']} yen"
    )
    for column in ("server", "paid/s", "ratio", "p50 ms", "p99 ms", "approved", "declined", "errors"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for name in ("ceiling", "sqlite", "postgresql"):
        row = core[name]
        ratio = "1" if name == "ceiling" else f"{row['ratio']:.3f}"
        table.add_row(
            name,
            f"{row['payments_per_s']:.1f}",
            ratio,
            f"{row['p50_ms']:.1f}",
            f"{row['p99_ms']:.1f}",
            str(row["approved"]),
            str(row["declined"]),
            str(row["errors"]),
        )
    console.print(table)
    cpu = ", ".join(
        f"{name} {core[name]['server_cpu']:.2f}"
        for name in ("ceiling", "sqlite", "postgresql")
        if core[name]["server_cpu"] is not None
    )
    console.print(
        f"SQLite synchronous={core['synchronous']}; limits: {core['limits']}"
        + (f"; server CPU (cores busy): {cpu}" if cpu else "")
    )
    for name in ("sqlite", "postgresql"):
        row = core[name]
        if row["cut_short"]:
            console.print(f"{name}: the time bound stopped the run {row['cut_short']} payments short")
        for outcome, count in row["codes"].items():
            console.print(f"{name}: {count} × {outcome}")
    floods = {name: core[name]["flood"] for name in ("sqlite", "postgresql") if "flood" in core[name]}
    if not floods:
        return
    table = Table(title="core under a sign-in flood (100 at once, rotating loopback addresses)")
    for column in ("server", "paid/s", "p50 ms", "p99 ms", "p99 ms without", "approved", "sign-ins", "healthz"):
        table.add_column(column, justify="left" if column in ("server", "sign-ins", "healthz") else "right")
    for name, flood in floods.items():
        signins = flood["signins"]
        statuses = ", ".join(f"{count} × {status}" for status, count in signins["by_status"].items())
        healthz = f"p99 {flood['healthz_p99_ms']} ms" + (", saturated" if flood["healthz_saturated_seen"] else "")
        table.add_row(
            name,
            f"{flood['payments_per_s']:.1f}",
            f"{flood['p50_ms']:.1f}",
            f"{flood['p99_ms']:.1f}",
            f"{core[name]['p99_ms']:.1f}",
            f"{flood['approved']}/{flood['sent']}",
            f"{signins['sent']} ({statuses})",
            healthz,
        )
    console.print(table)
