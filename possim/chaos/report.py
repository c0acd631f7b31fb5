"""A chaos run's figures as tables (``possim chaos`` and the bench's ``chaos`` section) and as JSON."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from possim.chaos.checks import FIGURES
from possim.chaos.faults import KINDS

JSON_KEYS = (
    "seed",
    "store",
    "core_workers",
    "registers",
    "payments",
    "cut_short",
    "approved",
    "declined",
    "reversed",
    "refused",
    "reversed_after_unknown",
    "requests",
    "faults",
    "faults_total",
    "upstream_failures",
    "late_copies_answered",
    "crashes",
    "crash_kind",
    "crash_details",
    *FIGURES,
    "audit_ok",
    "ok",
    "seconds",
    "setup_s",
    "problems",
    "replay",
)


def as_json(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures ``--json`` prints, in a fixed order."""
    return {key: figures[key] for key in JSON_KEYS if key in figures}


def print_table(console: Console, figures: dict[str, Any]) -> None:
    """The run, the faults injected by kind, the crashes, and the checks (each 0 when all is well)."""
    title = (
        f"chaos: seed {figures['seed']}, {figures['payments']} payments, {figures['registers']} registers, "
        f"{figures['store']}" + (f", {figures['core_workers']} core workers" if figures["core_workers"] > 1 else "")
    )
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name in ("approved", "declined", "reversed", "refused", "reversed_after_unknown", "cut_short", "requests"):
        table.add_row(name.replace("_", " "), str(figures[name]))
    for kind in KINDS:
        table.add_row(f"fault: {kind.value.replace('_', ' ')}", str(figures["faults"][kind.value]))
    table.add_row("requests the core did not answer", str(figures["upstream_failures"]))
    table.add_row("late copies the core answered", str(figures["late_copies_answered"]))
    table.add_row(f"crashes survived ({figures['crash_kind']} killed)", str(figures["crashes"]))
    for name in FIGURES:
        value = figures[name]
        table.add_row(name.replace("_", " "), f"[bold red]{value}[/]" if value else "0")
    audit = "balanced" if figures["audit_ok"] else "[bold red]unbalanced[/]"
    table.add_row("audit", audit)
    table.add_row("seconds (setup)", f"{figures['seconds']:.1f} ({figures['setup_s']:.1f})")
    console.print(table)
    for crash in figures["crash_details"]:
        console.print(
            f"crash at sale {crash['at_sale']}: {crash['kind']} pid {crash['victim_pid']} killed, "
            f"back as pid {crash['back_pid']} after {crash['down_seconds']:.1f} s",
            highlight=False,
        )
