"""A server the benchmarks run in a subprocess: started on a free loopback port, waited for, always stopped.

Also what ``/proc`` says of such a process: the CPU time it has used (:func:`cpu_seconds`; with its
children, :func:`tree_cpu_seconds`) and its resident memory (:func:`memory_mb`: the peak, ``VmHWM``, and now, ``VmRSS``). Each is ``None`` where
``/proc`` is missing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

START_SECONDS = 60.0


@contextlib.contextmanager
def served(command: list[str], log: Path) -> Iterator[tuple[str, int]]:
    """Run ``command --port N`` (a server) on a free loopback port until it answers; always stop it.

    Yields the server's URL and its process id; its output goes to ``log``, its data directory
    (``POSSIM_HOME``) is ``home`` beside ``log``."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name not in ("POSSIM_SERVER_KEY", "POSSIM_DB")}
    env["POSSIM_HOME"] = str(log.parent / "home")  # nothing in the user's data directory
    with log.open("wb") as output:  # our own interpreter and arguments, no shell
        process = subprocess.Popen([*command, "--port", str(port)], stdout=output, stderr=subprocess.STDOUT, env=env)  # noqa: S603
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_answering(url, process, command, log)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def health_answers(url: str) -> bool:
    """Does the core at ``url`` answer ``/healthz`` with 200? False while nothing listens there yet."""
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def wait_until_answering(url: str, process: subprocess.Popen[bytes], command: list[str], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            httpx.get(f"{url}/healthz", timeout=2)  # any answer will do (the ceiling has no such route)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the server did not start ({' '.join(command)}):\n{tail}")


def cpu_seconds(pid: int) -> float | None:
    """The CPU time (user + system) process ``pid`` has used so far, from ``/proc`` (None without it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float | None:
    """The CPU time process ``pid`` and its children have used so far (a supervisor and its workers)."""
    own = cpu_seconds(pid)
    if own is None:
        return None
    return own + sum(cpu_seconds(child) or 0.0 for child in children(pid))


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, from ``/proc`` (none where it is missing)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(entry.read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not a process's line
        if parent == pid:
            found.append(int(entry.parent.name))
    return found


def memory_mb(pid: int | str = "self") -> dict[str, float | None]:
    """Process ``pid``'s resident memory in MiB from ``/proc/PID/status``: ``peak`` (``VmHWM``, the most it
    has held) and ``now`` (``VmRSS``); each None where ``/proc`` does not say."""
    figures: dict[str, float | None] = {"peak": None, "now": None}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return figures
    for line in lines:
        name, _, value = line.partition(":")
        key = {"VmHWM": "peak", "VmRSS": "now"}.get(name)
        if key and value.split():
            figures[key] = round(int(value.split()[0]) / 1024, 1)  # kB
    return figures
