"""How much memory do the core and a register hold? Resident memory (``/proc``) after real work.

- ``core``: a ``possim core serve`` subprocess on SQLite (``possim.bench.template``: the registers and
  phones of ``possim.bench.core_load``'s SQLite run), read at the end of core_load's load against it;
- ``register``: a register in its own process (``possim.bench.register_run``: the Textual register run
  headless, a clerk driving it with the pilot) taking ``REGISTER_PAYMENTS`` wallet payments from the
  phones on that same core, read when it has finished.

Each figure is the process's peak resident set (``VmHWM``, MiB); ``*_now_mb`` is its resident set at
that moment (``VmRSS``). None where ``/proc`` is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from possim.bench import growth
from possim.bench.core_load import Phone
from possim.bench.served import memory_mb
from possim.bench.template import Template, after, copy_to, load, served_core, shared
from protocol import epoch_seconds, from_epoch, system_clock
from wallet_app.minter import CodesExhausted

REGISTER_PAYMENTS = {True: 2, False: 10}  # by --quick
_REGISTER_SECONDS = 180.0


def run(quick: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="possim-bench-memory-") as name:
        folder = Path(name)
        template = shared(growth.scale(quick))  # the growth section's, when both run
        db = copy_to(template, folder / "core.db")
        with served_core(template, db) as (url, pid):
            # The register starts (Textual's imports are its slow part) while the load runs: its codes are
            # minted first, so the load's never include them.
            with _Register(template, url, folder / "register", REGISTER_PAYMENTS[quick]) as register:
                row = load(after(template), url, pid, "memory")
                core = memory_mb(pid)
            report = register.report
    figures = ("payments_per_s", "p99_ms", "approved", "sent", "connections")
    return {
        "core": core["peak"],
        "register": report["memory_mb"]["peak"],
        "core_now_mb": core["now"],
        "register_now_mb": report["memory_mb"]["now"],
        "measure": "VmHWM",
        "core_load": {name: row[name] for name in figures} | {"store": "sqlite"},
        "register_payments": {
            name: report[name] for name in ("payments", "approved", "states", "seconds", "signed_in_s", "sale_s")
        },
    }


class _Register:
    """``possim.bench.register_run`` against ``url`` with ``payments`` fresh numeric codes, in a subprocess
    started on entering; leaving waits for it and reads its report (``report``)."""

    def __init__(self, template: Template, url: str, folder: Path, payments: int) -> None:
        folder.mkdir()
        terminal = template.terminals[0]
        (folder / "secret").write_text(terminal.secret.hex())
        codes = [_numeric(template.phones[index % len(template.phones)]) for index in range(payments)]
        (folder / "codes").write_text("\n".join(codes))
        self.out = folder / "report.json"
        self.command = [sys.executable, "-m", "possim.bench.register_run", "--core", url, "--terminal-id", terminal.id]
        self.command += ["--secret-file", str(folder / "secret"), "--codes-file", str(folder / "codes")]
        self.command += ["--folder", str(folder), "--out", str(self.out)]
        self.log = folder / "register.log"
        self.report: dict[str, Any] = {}

    def __enter__(self) -> _Register:
        with self.log.open("wb") as output:  # our own interpreter and arguments, no shell
            self.process = subprocess.Popen(self.command, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            code = self.process.wait(timeout=_REGISTER_SECONDS)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=10)
        if exc[0] is not None:
            return
        if not self.out.exists():
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the register process failed (exit {code}):\n{tail}")
        self.report = json.loads(self.out.read_text())


def _numeric(phone: Phone) -> str:
    """A code the phone has not minted before (numeric form: what a wedge scanner types), minted now; the
    phone's minter remembers it (``template.after`` then counts it used)."""
    second = epoch_seconds(system_clock())
    while True:
        phone.clock.set(from_epoch(second))
        try:
            code = phone.minter.mint()
        except CodesExhausted:
            second -= 1
            continue
        if f"{code.device_id}:{code.minted_at}:{code.counter}" not in phone.used:
            return code.numeric


def print_table(console: Console, memory: dict[str, Any]) -> None:
    table = Table(title="resident memory, MiB (peak: VmHWM)")
    for column in ("process", "peak", "now", "after"):
        table.add_column(column, justify="left" if column in ("process", "after") else "right")
    load, paid = memory["core_load"], memory["register_payments"]
    table.add_row(
        "core (possim core serve, SQLite)",
        str(memory["core"]),
        str(memory["core_now_mb"]),
        f"{load['sent']} payments from {load['connections']} registers",
    )
    table.add_row(
        "register (headless)",
        str(memory["register"]),
        str(memory["register_now_mb"]),
        f"{paid['approved']}/{paid['payments']} paid",
    )
    console.print(table)
