"""Payments through seeded faults and core crashes (``possim chaos``, ``possim.chaos``): how many ran, the faults
injected by kind, the crashes survived, and what was lost or taken twice (each must be 0).

Not quick: 10,000 payments from 4 registers on SQLite, every fault kind at its default rate, the core killed
with SIGKILL 3 times under load and started again on the same database. Quick: 300 payments, 2 crashes. The
seed is 1: a failure replays with the command line in the figures' ``replay``.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from possim.chaos import report
from possim.chaos.run import ChaosSettings, run_chaos

SEED = 1
FULL = ChaosSettings(seed=SEED, payments=10_000, registers=4, crashes=3)
QUICK = ChaosSettings(seed=SEED, payments=300, registers=3, crashes=2)


def run(quick: bool = False) -> dict[str, Any]:
    """One seeded run (``QUICK`` or ``FULL``): its figures as ``possim chaos --json`` prints them."""
    result = run_chaos(QUICK if quick else FULL)
    return report.as_json(result.figures)


def print_table(console: Console, figures: dict[str, Any]) -> None:
    report.print_table(console, figures)
    if not figures["ok"]:
        for problem in figures["problems"]:
            console.print(f"chaos: {problem}", highlight=False)
        console.print(f"chaos: FAILED; replay: {figures['replay']}", highlight=False)
