"""Crashes under load: when to kill the core (:func:`plan_crashes`, from the seed) and the thread that does it
(:class:`CrashDriver`).

The moments are counts of sales ended over every register, drawn between a tenth and eight tenths of the
run, so the registers are selling flat out around each one. For a single-process core the driver sends
SIGKILL to it, then starts ``possim core serve`` again on the same database and key and points the proxy
at it; requests meanwhile find no core (the registers retry, query and reverse). For a core served by
several workers it kills one that is answering a request of the proxy's at that moment (found by matching the
proxy's connections awaiting an answer to the workers' sockets in ``/proc``, every worker stopped with SIGSTOP
while it looks, so that request cannot be answered before the SIGKILL; failing that within
``_TARGET_SECONDS``, the one holding the most connections; the seed breaks ties), so a register's request dies
with it; the supervisor starts another while the others keep serving, and that register's retry lands on a
live one.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from possim.chaos.faults import FaultLog
from possim.chaos.proxy import FaultProxy
from possim.chaos.registers import Tally
from possim.chaos.served import ServedCore

_WATCH_SECONDS = 0.02
_TARGET_SECONDS = 10.0  # how long to look for a worker answering a request before killing one anyway


def plan_crashes(seed: int, payments: int, crashes: int) -> tuple[int, ...]:
    """``crashes`` distinct moments (sales ended), sorted; ``ValueError`` when the run is too short for them."""
    if crashes <= 0:
        return ()
    low, high = max(1, payments // 10), max(2, payments * 8 // 10)
    if crashes > high - low:
        raise ValueError(f"{crashes} crashes need more than {payments} payments")
    draw = random.Random(f"possim-chaos/{seed}/crashes")
    return tuple(sorted(draw.sample(range(low, high), crashes)))


@dataclass
class Crash:
    """One kill: when (sales ended), whom, and how the core came back."""

    at_sale: int
    kind: str  # "core": the whole core process; "worker": one of the supervisor's workers
    victim_pid: int
    victim_connections: int | None  # the proxy's connections the worker held when it was chosen, just before the kill
    back_pid: int | None  # the restarted core, or the worker that replaced the victim
    down_seconds: float  # from the kill until the core (or the replacement) served again
    upstream_failures_before: int  # the proxy's count of unanswered requests at the kill

    def figures(self) -> dict[str, Any]:
        return asdict(self)


class CrashDriver:
    """Kills the core at each planned moment, on a thread of its own (:meth:`start`, :meth:`stop`)."""

    def __init__(
        self, seed: int, moments: tuple[int, ...], core: ServedCore, proxy: FaultProxy, log: FaultLog, tally: Tally
    ) -> None:
        self.moments = moments
        self.crashes: list[Crash] = []
        self.failure: BaseException | None = None
        self._draw = random.Random(f"possim-chaos/{seed}/victims")
        self._core = core
        self._proxy = proxy
        self._log = log
        self._tally = tally
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="possim-chaos-crashes", daemon=True)

    def start(self) -> None:
        if self.moments:
            self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop waiting for moments not reached (a restart under way is finished first)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    @property
    def busy(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            for moment in self.moments:
                while self._tally.ended < moment:
                    if self._stopping.wait(_WATCH_SECONDS):
                        return
                self.crashes.append(
                    self._crash_worker(moment) if self._core.workers_wanted > 1 else self._crash(moment)
                )
        except Exception as error:  # reported by the run with its seed
            self.failure = error

    def _crash(self, moment: int) -> Crash:
        before = self._log.upstream_failures
        killed_at = time.monotonic()
        victim = self._core.kill()
        port = self._core.start()  # the same database and key, a new port
        self._proxy.point_at(port)
        return Crash(moment, "core", victim, None, self._core.pid, round(time.monotonic() - killed_at, 2), before)

    def _crash_worker(self, moment: int) -> Crash:
        before = self._log.upstream_failures
        victim, held = self._kill_busiest_worker()
        killed_at = time.monotonic()
        back = self._core.wait_for_replacement(victim)
        if back is None:
            raise RuntimeError(f"worker {victim} was killed and not replaced:\n{self._core.output()[-2000:]}")
        return Crash(moment, "worker", victim, held, back, round(time.monotonic() - killed_at, 2), before)

    def _kill_busiest_worker(self) -> tuple[int, int]:
        """Kill a worker answering a request of the proxy's and say how many of the proxy's connections it held.
        The workers are frozen while they are looked at, so the request cannot be answered between the look
        and the kill; looked for during at most ``_TARGET_SECONDS``, else the one holding the most connections;
        the seed breaks ties."""
        deadline = time.monotonic() + _TARGET_SECONDS
        while True:
            with self._core.frozen_workers():
                busy = self._core.connections_by_worker(self._proxy.in_flight())
                last_look = time.monotonic() >= deadline
                if any(busy.values()) or last_look:
                    ranked = busy if any(busy.values()) else self._core.connections_by_worker()
                    if not ranked:
                        raise RuntimeError("the core's workers cannot be found in /proc")
                    most = max(ranked.values())
                    victim = self._draw.choice(sorted(pid for pid, count in ranked.items() if count == most))
                    self._core.kill_worker(victim)  # while frozen: its request dies unanswered
                    return victim, ranked[victim]
            time.sleep(_WATCH_SECONDS)
