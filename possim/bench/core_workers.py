"""How many approved payments a second does the core sustain served by one process, and by two
(``possim core serve --workers N``)? On PostgreSQL (:func:`run`, the ``workers`` section) and on a SQLite
file (:func:`run_sqlite`, ``workers_sqlite``: the processes' transactions queue on the flock beside the
database, ``payment_core.db``).

The same world and load as ``possim.bench.core_load``, reusing its steps: for each process count a fresh
schema (or SQLite file) with its registers and its enrolled, funded phones (``core_load.setup_world``), the
core served by a real ``possim core serve --workers N`` subprocess on a free loopback port
(``possim.bench.served``), each phone's codes minted offline in its recent seconds (``code_pools``),
payments in rounds over one keep-alive connection per register from two client processes
(``payment_plans``, ``possim.bench.load_client.drive``), and the figures of ``core_load.summary``. No
sign-in flood here: that is ``core_load``'s.

Each section (``"1"``, ``"2"``) adds ``workers`` (the processes asked for), ``pids_seen`` (how many
different processes answered ``/healthz`` over new connections: the kernel spreads connections, not
requests, over the processes), ``server_cpu`` over the whole process tree (supervisor and workers),
``server_memory_mb`` (their resident memory summed at the end of the load) and ``setup_s``. On a machine
with two cores the clients, PostgreSQL and the workers share them: a second worker can only use what the
first leaves idle. On SQLite the writes stay one at a time whatever the processes: a second one can only
overlap the work around them (HTTP, signatures, JSON) with the other's transaction.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from payment_core.risk import BURST_FILE
from possim.bench.core_load import (
    FULL,
    POSTGRES_URL,
    QUICK,
    Scale,
    bounded_load,
    code_pools,
    codes_per_phone,
    drop_schema,
    payment_plans,
    prepare_world,
    summary,
)
from possim.bench.load_client import drive
from possim.bench.served import cpu_seconds, memory_mb, served

WORKER_COUNTS = (1, 2)
_PID_TRIES = 100  # new connections asked for their worker's pid


def run(quick: bool = False) -> dict[str, Any]:
    """PostgreSQL served by 1, then 2 processes: ``{"1": ..., "2": ...}``."""
    return _run("postgresql", quick)


def run_sqlite(quick: bool = False) -> dict[str, Any]:
    """A SQLite file (``synchronous=FULL``) served by 1, then 2 processes: ``{"1": ..., "2": ...}``."""
    return _run("sqlite", quick)


def _run(kind: str, quick: bool) -> dict[str, Any]:
    scale = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="possim-bench-workers-") as folder:
        return {
            str(count): _served_store(kind, scale, Path(folder) / f"workers-{count}", count) for count in WORKER_COUNTS
        }


def _served_store(kind: str, scale: Scale, folder: Path, workers: int) -> dict[str, Any]:
    folder.mkdir()
    schema = f"bench_{secrets.token_hex(6)}" if kind == "postgresql" else None
    db = POSTGRES_URL if schema else str(folder / "core.db")
    try:
        started = time.monotonic()
        terminals, phones, key_file, _ = prepare_world(db, scale, folder, schema)
        command = [sys.executable, "-m", "possim", "core", "serve", "--db", db]
        command += ["--db-schema", schema] if schema else []
        command += ["--key-file", str(key_file), "--host", "127.0.0.1", "--workers", str(workers)]
        command += ["--risk-config", str(BURST_FILE)]
        with served(command, folder / "core.log") as (url, pid):
            setup_seconds = time.monotonic() - started
            pids_seen = _pids_seen(url, workers)
            pools, oldest = code_pools(phones, codes_per_phone(scale))
            plans = payment_plans(f"{kind}-workers{workers}", scale, terminals, pools)
            tally, server_cpu = drive(url, plans, bounded_load(scale, oldest), lambda: _tree_cpu_seconds(pid))
            memory = _tree_memory_mb(pid)
    finally:
        if schema:
            drop_schema(schema)
    extra = {"pids_seen": pids_seen, "server_memory_mb": memory, "setup_s": round(setup_seconds, 1)}
    return {"workers": workers} | summary(tally, server_cpu) | extra


def _pids_seen(url: str, workers: int) -> int:
    """How many different processes answer ``/healthz``, each asked over a new connection (at most
    ``_PID_TRIES`` asked, fewer once ``workers`` have answered)."""
    seen: set[int] = set()
    for _ in range(_PID_TRIES):
        seen.add(int(httpx.get(f"{url}/healthz", timeout=10).json()["pid"]))
        if len(seen) >= workers:
            break
    return len(seen)


def _tree(pid: int) -> list[int]:
    """``pid`` and its children (the workers of ``possim core serve --workers N``), from ``/proc``."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(int(child) for child in children)]


def _tree_cpu_seconds(pid: int) -> float | None:
    """The CPU time the supervisor and its workers have used so far (None without ``/proc``)."""
    times = [cpu_seconds(each) for each in _tree(pid)]
    known = [each for each in times if each is not None]
    return sum(known) if known else None


def _tree_memory_mb(pid: int) -> float | None:
    """The resident memory of the supervisor and its workers now, summed, in MiB (None without ``/proc``)."""
    now = [memory_mb(each)["now"] for each in _tree(pid)]
    known = [each for each in now if each is not None]
    return round(sum(known), 1) if known else None
