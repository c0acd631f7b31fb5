"""A SQLite core set up once and copied for each run: the ``growth`` and ``memory`` benchmarks' world.

Enrolling the phones is the slow part of a core benchmark's setup (argon2, on purpose), so it is done
once: :func:`prepare` makes a fresh core (``possim.world.new_core``) with the registers and the phones
enrolled and funded exactly as ``possim.bench.core_load`` does (its ``setup_world``), and keeps the database
file and the server key. Each run then takes its own copy (:func:`copy_to`, SQLite's online backup), so a
run never sees another run's payments; a copy is served by a real ``possim core serve`` subprocess
(:func:`served_core`) and loaded with core_load's load (:func:`load`): the same client processes, the
same codes (each phone's most recent seconds, never one used in the copy), the same figures
(core_load's ``summary``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from payment_core.risk import BURST_FILE
from possim.bench.core_load import (
    Phone,
    Scale,
    bounded_load,
    code_pools,
    codes_per_phone,
    minted_keys,
    payment_plans,
    prepare_world,
    summary,
)
from possim.bench.load_client import drive
from possim.bench.served import cpu_seconds, served
from possim.world import RegisteredTerminal


@dataclass(frozen=True)
class Template:
    """The prepared core: its database file, the server key's file, the registers and the phones."""

    db: Path
    key_file: Path
    scale: Scale
    terminals: list[RegisteredTerminal]
    phones: list[Phone]  # ``used``: the codes the funding took, the only ones a fresh copy has seen
    settings: dict[str, Any]  # SQLite's synchronous level, as the core sets it
    setup_s: float


def prepare(scale: Scale, folder: Path) -> Template:
    """A fresh SQLite core in ``folder`` with ``scale``'s registers and phones, enrolled and funded for the
    main load and for ``scale.flood_payments`` more (core_load's rule)."""
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    db = folder / "template.db"
    terminals, phones, key_file, settings = prepare_world(str(db), scale, folder)
    return Template(db, key_file, scale, terminals, phones, settings, round(time.monotonic() - started, 1))


_SHARED: dict[Scale, Template] = {}
_FOLDERS: list[tempfile.TemporaryDirectory[str]] = []  # removed when the process exits


def shared(scale: Scale) -> Template:
    """:func:`prepare` once a process for each scale: ``growth`` and ``memory`` in one ``possim bench``
    start from the same template (each run takes its own copy, so neither sees the other's payments)."""
    if scale not in _SHARED:
        folder = tempfile.TemporaryDirectory(prefix="possim-bench-template-")
        _FOLDERS.append(folder)
        _SHARED[scale] = prepare(scale, Path(folder.name))
    return _SHARED[scale]


def copy_to(template: Template, path: Path) -> Path:
    """A copy of the template's database at ``path`` (SQLite's backup: consistent, whatever the WAL holds)."""
    with contextlib.closing(sqlite3.connect(template.db)) as source, contextlib.closing(sqlite3.connect(path)) as to:
        source.backup(to)
    return path


@contextlib.contextmanager
def served_core(template: Template, db: Path) -> Iterator[tuple[str, int]]:
    """``possim core serve`` on ``db`` (a copy) with the template's key; the URL and the server's pid."""
    command = [sys.executable, "-m", "possim", "core", "serve", "--db", str(db), "--key-file", str(template.key_file)]
    command += ["--host", "127.0.0.1", "--risk-config", str(BURST_FILE)]
    with served(command, db.with_suffix(".log")) as (url, pid):
        yield url, pid


def load(
    template: Template, url: str, pid: int, label: str, *, registers: int | None = None, payments: int | None = None
) -> dict[str, Any]:
    """core_load's measured load against ``url`` (server ``pid``), from the first ``registers`` registers
    (all by default) with ``payments`` measured payments (the scale's by default). Each phone's codes are
    fresh for the copy only if this is the copy's first load: pass ``label``s that differ, and for a
    second load on the same copy use :func:`after`."""
    scale = template.scale
    if registers is not None or payments is not None:
        count = registers or scale.terminals
        scale = dataclasses.replace(
            scale, stores=1, registers_per_store=count, payments=payments or scale.payments
        )  # one "store" of ``count`` registers: only ``terminals`` (their count) matters to the load
    terminals = template.terminals[: scale.terminals]
    pools, oldest = code_pools(template.phones, codes_per_phone(scale))
    plans = payment_plans(label, scale, terminals, pools)
    tally, server_cpu = drive(url, plans, bounded_load(scale, oldest), lambda: cpu_seconds(pid))
    return summary(tally, server_cpu) | {"connections": scale.terminals}


def after(template: Template) -> Template:
    """The template with every code its phones have minted so far counted as used: for a second load on a
    copy that has had one (codes minted for earlier copies are excluded too: fewer codes, never a reused one)."""
    phones = [dataclasses.replace(phone, used=phone.used | minted_keys(phone)) for phone in template.phones]
    return dataclasses.replace(template, phones=phones)
