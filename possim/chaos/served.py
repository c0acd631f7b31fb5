"""The core a chaos run pays against: ``possim core serve`` as a subprocess on the run's database, as a user
would start it, on a free loopback port.

It can be killed outright (SIGKILL: no chance to finish a request, commit or close anything) and started
again on the same database and key, on a new port (the fault proxy is pointed at it). With ``workers`` above
1 it is a supervisor and its worker processes: :meth:`ServedCore.workers` lists them (from ``/proc``),
:meth:`ServedCore.connections_by_worker` says how many of the core's established connections each one holds,
and the supervisor replaces a worker that was killed (``possim.core_workers``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from payment_core.risk import BURST_FILE
from possim.bench.served import free_port, wait_until_answering
from possim.chaos.shop import Store

STOP_SECONDS = 20.0
REPLACE_SECONDS = 60.0  # a killed worker's replacement must be serving within this
_POLL_SECONDS = 0.05
_ESTABLISHED = "01"  # the TCP state in /proc/net/tcp


class ServedCore:
    """``possim core serve`` on ``store`` with ``workers`` processes; its output is appended to ``core.log`` in
    ``folder`` (its data directory is ``folder/home``)."""

    def __init__(self, store: Store, key_file: Path, folder: Path, workers: int = 1) -> None:
        self.store = store
        self.key_file = key_file
        self.folder = folder
        self.workers_wanted = workers
        self.log = folder / "core.log"
        self.port = 0
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the core is not running")
        return self._process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, port: int) -> list[str]:
        command = [sys.executable, "-m", "possim", "core", "serve", "--db", self.store.url]
        command += ["--db-schema", self.store.schema] if self.store.schema else []
        command += ["--key-file", str(self.key_file), "--host", "127.0.0.1", "--port", str(port)]
        command += ["--risk-config", str(BURST_FILE), "--no-access-log", "--workers", str(self.workers_wanted)]
        return command

    def start(self) -> int:
        """Start the core and wait until it answers (``RuntimeError`` with its log's end if it does not); its port."""
        port = free_port()
        command = self.command(port)
        env = {name: value for name, value in os.environ.items() if name not in ("POSSIM_SERVER_KEY", "POSSIM_DB")}
        env["POSSIM_HOME"] = str(self.folder / "home")
        with self.log.open("ab") as output:  # our own interpreter and arguments, no shell
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)  # noqa: S603
        self._process = process
        try:
            wait_until_answering(f"http://127.0.0.1:{port}", process, command, self.log)
        except RuntimeError:
            self.stop()
            raise
        self.port = port
        self.starts += 1
        return port

    def kill(self) -> int:
        """SIGKILL the core (the supervisor too, with workers) and reap it; the pid that was killed."""
        process = self._require()
        victims = [*self.workers(), process.pid]
        for pid in victims:
            _kill(pid)
        process.wait(timeout=STOP_SECONDS)
        self._process = None
        return process.pid

    def workers(self) -> list[int]:
        """The supervisor's worker processes now (empty for a single-process core, or without ``/proc``)."""
        if self._process is None or self.workers_wanted < 2:
            return []
        pid = self._process.pid
        try:
            return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def kill_worker(self, pid: int) -> None:
        _kill(pid)

    @contextlib.contextmanager
    def frozen_workers(self) -> Iterator[list[int]]:
        """Every worker stopped (SIGSTOP) for the duration, so a request one of them is answering stays
        unanswered while the chaos driver looks and kills; the survivors continue (SIGCONT) after."""
        pids = self.workers()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        try:
            yield pids
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def wait_for_replacement(self, victim: int) -> int | None:
        """Wait (at most ``REPLACE_SECONDS``) until the supervisor has ``workers`` workers again, ``victim`` not
        among them; the replacement's pid, or None if none came (or the supervisor itself is gone)."""
        process = self._require()
        before = set(self.workers()) - {victim}
        deadline = time.monotonic() + REPLACE_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            now = set(self.workers())
            if victim not in now and len(now) >= self.workers_wanted:
                new = now - before
                return min(new) if new else None
            time.sleep(_POLL_SECONDS)
        return None

    def connections_by_worker(self, peers: set[int] | None = None) -> dict[int, int]:
        """Each worker's established connections on the core's port (only those from the local ports ``peers``,
        when given), matched from ``/proc/net/tcp*`` to the sockets in ``/proc/PID/fd`` (0 each without
        ``/proc``)."""
        inodes = _established_inodes(self.port, peers)
        counts = {}
        for pid in self.workers():
            try:
                links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            except OSError:
                links = []
            counts[pid] = sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in inodes)
        return counts

    def wait_exit(self, timeout: float) -> int | None:
        """Wait (at most ``timeout`` seconds) for the core to exit on its own; its exit code, None if it has not."""
        process = self._require()
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, as a service manager sends; killed if it has not stopped within the bound. Its exit code."""
        process = self._process
        self._process = None
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
        try:
            return process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(timeout=STOP_SECONDS)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _require(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("the core is not running")
        return self._process


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _established_inodes(port: int, peers: set[int] | None) -> set[str]:
    """The socket inodes of established TCP connections whose local port is ``port`` (and whose remote port is
    one of ``peers``, when given)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) <= 9 or fields[3] != _ESTABLISHED or _port(fields[1]) != port:
                continue
            if peers is None or _port(fields[2]) in peers:
                inodes.add(fields[9])
    return inodes


def _port(address: str) -> int:
    """The port of an ``ADDRESS:PORT`` field of ``/proc/net/tcp`` (hexadecimal)."""
    return int(address.rsplit(":", 1)[1], 16)
