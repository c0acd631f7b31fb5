"""``possim bench [--quick] [--json] [--only SECTION] [--plot FILE.png]``: the project's stopwatch measurements.

Sections (each ``possim.bench.<module>.run(quick)``):
  enumeration       sign-in, sign-up and reset answer as fast for a taken address as for a free one
  core              approved payments a second from 32 registers at once, on SQLite and on PostgreSQL,
                    against a bare FastAPI app's ceiling measured in the same run (possim.bench.core_load)
  workers           the PostgreSQL core served by 1, then 2 processes (possim.bench.core_workers)
  workers_sqlite    the same on a SQLite file (possim.bench.core_workers.run_sqlite)
  throttled         what a sign-in refused by the throttle (429) costs the core beside an approved payment,
                    on each store (possim.bench.throttled_cost)
  scan              hard 1280x720 camera frames (tilted, far, motion-blurred, glare, low light, mixed): possim's
                    pipeline against zxing-cpp, pyzbar, OpenCV and their union (possim.bench.scan)
  scan_to_decision  from the camera's frame to the core's decision (possim.bench.scan_decision)
  growth            throughput and p99 with 1k, 100k and 1M ledger entries, seeded in bulk (possim.bench.growth)
  memory            resident memory of the core after a load and of a register after payments
                    (possim.bench.memory)
  chaos             payments through seeded network faults and core crashes: faults by kind, crashes
                    survived, lost and doubled (each must be 0) (possim.bench.chaos, `possim chaos`)
  hostile           corrupt, truncated, huge and zero-size images and videos through possim scan's frame sources:
                    one clear refusal each, the worst seconds and memory a file (possim.bench.hostile)
  soak              64 registers paying for 5 minutes: errors other than designed declines (must be 0), the
                    core's resident memory at the start and the end (possim.bench.soak)

--json prints one object: "enumeration", "core" (with "workers", "workers_sqlite" and "throttled" inside when
they ran with it), "scan", "scan_to_decision_ms", "growth", "memory_mb" ({"core", "register"}, MiB), "hostile",
"chaos" and "soak", each when its section ran.
--plot draws throughput and p99 against concurrency and against ledger size (matplotlib, a PNG).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

SECTIONS = (
    "enumeration",
    "core",
    "workers",
    "workers_sqlite",
    "throttled",
    "scan",
    "scan_to_decision",
    "growth",
    "memory",
    "hostile",
    "chaos",
    "soak",
)
MODULES = {  # a section's module in possim.bench
    "enumeration": "enumeration",
    "core": "core_load",
    "workers": "core_workers",
    "workers_sqlite": "core_workers",
    "throttled": "throttled_cost",
    "scan": "scan",
    "scan_to_decision": "scan_decision",
    "growth": "growth",
    "memory": "memory",
    "hostile": "hostile",
    "chaos": "chaos",
    "soak": "soak",
}
RUNS = {"workers_sqlite": "run_sqlite"}  # a section's function in its module, if not run(quick)
KEYS = {"scan_to_decision": "scan_to_decision_ms", "memory": "memory_mb"}  # a section's key in --json, if not its name
IN_CORE = ("workers", "workers_sqlite", "throttled")  # sections reported inside "core" when it ran too


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="measure on this machine (stopwatch figures, not tests)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="fewer samples: a smoke run, not a measurement")
    parser.add_argument("--json", action="store_true", help="print one JSON object, no progress bar")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only this section (repeatable)")
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="draw throughput and p99 (a PNG)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sections = args.only or list(SECTIONS)
    results: dict[str, Any] = {}
    failed: dict[str, str] = {}
    console = Console(stderr=True)
    with Progress(console=console, disable=args.json, transient=True) as progress:
        task = progress.add_task("possim bench", total=len(sections))
        for name in sections:
            progress.update(task, description=f"bench: {name}")
            module = _section_module(name)
            if isinstance(module, str):
                failed[name] = module
                console.print(f"possim bench: {name}: {module}", highlight=False, soft_wrap=True)
            else:
                results[name] = getattr(module, RUNS.get(name, "run"))(quick=args.quick)
            progress.advance(task)
    if args.plot is not None:
        importlib.import_module("possim.bench.plot").draw(results, args.plot)
    if args.json:
        print(json.dumps(_report(results) | ({"errors": failed} if failed else {})))
    else:
        _print_tables(Console(), results)
        if args.plot is not None:
            Console().print(f"plot: {args.plot}")
    return 1 if failed else 0


def _section_module(name: str) -> Any:
    """The section's module, or one line saying why there is none (a module not written yet, say)."""
    path = f"possim.bench.{MODULES[name]}"
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as error:
        return f"cannot run: {path} cannot be imported ({error})"
    function = RUNS.get(name, "run")
    if not callable(getattr(module, function, None)):
        return f"cannot run: {path} has no {function}(quick)"
    return module


def _report(results: dict[str, Any]) -> dict[str, Any]:
    """What --json prints: each section under its key; the workers inside "core" when the core ran too."""
    report = {KEYS.get(name, name): value for name, value in results.items() if name not in IN_CORE}
    for name in IN_CORE:
        if name in results:
            if isinstance(report.get("core"), dict):
                report["core"] = report["core"] | {name: results[name]}
            else:
                report[name] = results[name]
    return report


def _print_tables(console: Console, results: dict[str, Any]) -> None:
    enumeration = results.get("enumeration")
    if enumeration is not None:
        _print_enumeration(console, enumeration)
    core = results.get("core")
    if core is not None:
        _print_core(console, core)
    if "workers" in results:
        _print_rows(console, "core served by 1 and 2 processes (PostgreSQL)", "processes", results["workers"])
    if "workers_sqlite" in results:
        _print_rows(console, "core served by 1 and 2 processes (SQLite)", "processes", results["workers_sqlite"])
    if "throttled" in results:
        importlib.import_module("possim.bench.throttled_cost").print_table(console, results["throttled"])
    if "scan" in results:
        importlib.import_module("possim.bench.scan").print_table(console, results["scan"])
    if "scan_to_decision" in results:
        _print_figures(console, "scan to decision, ms", results["scan_to_decision"])
    for name in ("growth", "memory", "hostile", "chaos", "soak"):
        if name in results:
            importlib.import_module(f"possim.bench.{name}").print_table(console, results[name])
    sys.stdout.flush()


def _print_rows(console: Console, title: str, first: str, rows: dict[str, Any]) -> None:
    """A row a key (processes, say) of the usual figures, where the rows have them."""
    table = Table(title=title)
    names = ("payments_per_s", "p50_ms", "p99_ms", "approved", "errors")
    for column in (first, "paid/s", "p50 ms", "p99 ms", "approved", "errors"):
        table.add_column(column, justify="left" if column == first else "right")
    for key, row in rows.items():
        if isinstance(row, dict):
            table.add_row(key, *(_cell(row.get(name)) for name in names))
    console.print(table)


def _print_figures(console: Console, title: str, figures: dict[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in figures.items():
        if not isinstance(value, dict | list):
            table.add_row(name, _cell(value))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


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
    for name in ("ceiling", "floor", "sqlite", "postgresql"):
        if name not in core:
            continue
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
        for name in ("ceiling", "floor", "sqlite", "postgresql")
        if name in core and core[name]["server_cpu"] is not None
    )
    memory = ", ".join(
        f"{name} {core[name]['server_memory_mb']['peak']}"
        for name in ("sqlite", "postgresql")
        if (core[name].get("server_memory_mb") or {}).get("peak") is not None
    )
    console.print(
        f"SQLite synchronous={core['synchronous']}; limits: {core['limits']}"
        + (f"; server CPU (cores busy): {cpu}" if cpu else "")
        + (f"; server memory (peak MiB): {memory}" if memory else "")
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
