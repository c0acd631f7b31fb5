"""Soak: 64 registers paying at once against one ``possim core serve`` on SQLite for five minutes.

It asks two things of a long run that a short one cannot show: that nothing but a designed decline ever
comes back (no 5xx, no timeout, no lost connection) and that the server's memory stays flat. The world is
``possim.bench.core_load``'s (16 stores of 4 registers, phones enrolled through the API and funded with
cash); the load is its client (2 spawned processes, a keep-alive connection per register, signed as the
register signs), 1 yen a payment so that every phone's one top-up covers five minutes. A code lives 60 s,
so the run goes in rounds: each mints every phone's codes for the next round in its most recent seconds
and drives until they are used or the round's time is up. The server's resident memory is read before
the first round and after each one (``rss_mb``); ``growth_mb`` is the last reading less the first round's,
once the caches have warmed.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from payment_core.risk import BURST_FILE
from possim.bench.core_load import (
    Scale,
    bounded_load,
    code_pools,
    minted_keys,
    payment_plans,
    prepare_world,
    summary,
)
from possim.bench.load_client import drive
from possim.bench.served import cpu_seconds, memory_mb, served

AMOUNT_YEN = 1
ROUND_SECONDS = 40.0  # well inside a code's 60 s life and 30 s skew, minting included
FULL = Scale(
    stores=16, registers_per_store=4, phones=100, payments=12_000, warmup=1, seconds=ROUND_SECONDS, flood_payments=0,
    flood_signins=0,
)  # fmt: skip
QUICK = dataclasses.replace(FULL, phones=16, payments=1_500, seconds=10.0)
DURATION = {False: 300.0, True: 20.0}
MAX_ROUNDS = 20  # a bound on the loop whatever the clock does


def run(quick: bool = False) -> dict[str, Any]:
    scale, duration = (QUICK if quick else FULL), DURATION[quick]
    with tempfile.TemporaryDirectory(prefix="possim-bench-soak-") as name:
        folder = Path(name)
        db = str(folder / "core.db")
        terminals, phones, key_file, settings = prepare_world(db, _funded(scale, duration), folder, amount=AMOUNT_YEN)
        command = [sys.executable, "-m", "possim", "core", "serve", "--db", db, "--key-file", str(key_file)]
        command += ["--host", "127.0.0.1", "--risk-config", str(BURST_FILE), "--no-access-log"]
        with served(command, folder / "core.log") as (url, pid):
            rss = [memory_mb(pid)["now"]]
            rounds: list[dict[str, Any]] = []
            started = time.monotonic()
            while time.monotonic() - started < duration and len(rounds) < MAX_ROUNDS:
                pools, oldest = code_pools(phones, _per_phone(scale))
                plans = payment_plans(f"soak{len(rounds)}", scale, terminals, pools)
                load = dataclasses.replace(bounded_load(scale, oldest), amount=AMOUNT_YEN)
                tally, server_cpu = drive(url, plans, load, lambda: cpu_seconds(pid))
                rounds.append(summary(tally, server_cpu))
                rss.append(memory_mb(pid)["now"])
                phones = [dataclasses.replace(phone, used=phone.used | minted_keys(phone)) for phone in phones]
            seconds = time.monotonic() - started
    return _report(scale, rounds, rss, seconds) | settings


def _funded(scale: Scale, duration: float) -> Scale:
    """The world's scale with enough payments per phone for the whole run (every phone is funded once)."""
    rounds = int(duration // scale.seconds) + 1
    return dataclasses.replace(scale, payments=scale.payments * rounds)


def _per_phone(scale: Scale) -> int:
    return -(-(scale.payments + scale.warmup * scale.terminals) // scale.phones)


def _report(scale: Scale, rounds: list[dict[str, Any]], rss: list[float | None], seconds: float) -> dict[str, Any]:
    codes: dict[str, int] = {}
    for row in rounds:
        for outcome, count in row["codes"].items():
            codes[outcome] = codes.get(outcome, 0) + count
    approved = sum(row["approved"] for row in rounds)
    warm, last = (rss[1], rss[-1]) if len(rss) > 1 else (rss[0], rss[0])
    return {
        "terminals": scale.terminals,
        "phones": scale.phones,
        "seconds": round(seconds, 1),
        "rounds": len(rounds),
        "sent": sum(row["sent"] for row in rounds),
        "approved": approved,
        "payments_per_s": round(approved / seconds, 1) if seconds else 0.0,
        "declined": sum(row["declined"] for row in rounds),
        "errors": sum(row["errors"] for row in rounds),
        "codes": codes,
        "p99_ms_worst_round": max((row["p99_ms"] for row in rounds), default=None),
        "rss_mb": {"start": rss[0], "end": rss[-1], "each_round": rss[1:]},
        "growth_mb": round(last - warm, 1) if last is not None and warm is not None else None,
    }


def print_table(console: Any, soak: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"soak: {soak['terminals']} registers for {soak['seconds']} s on SQLite")
    for column in ("approved", "payments/s", "declined", "errors", "worst p99 ms", "RSS start MB", "RSS end MB"):
        table.add_column(column, justify="right")
    rss = soak["rss_mb"]
    table.add_row(
        f"{soak['approved']:,}",
        str(soak["payments_per_s"]),
        str(soak["declined"]),
        str(soak["errors"]),
        str(soak["p99_ms_worst_round"]),
        str(rss["start"]),
        str(rss["end"]),
    )
    console.print(table)
