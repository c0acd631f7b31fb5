"""Password hashing (argon2id) on a bounded budget, so a sign-in flood cannot take the registers down.

argon2 is tens of milliseconds of CPU and memory by design, and it runs outside the GIL: a hundred
sign-ins at once would keep every core busy and the registers' payments would wait behind them. Here
at most ``workers`` hashes run at once (by default one core fewer than the machine has) and at most
``queue`` more wait; a sign-in beyond that is refused at once with 503 ``service_unavailable`` and
``Retry-After``, before any password work. Work that was already answered (the hash of a new account,
done after its 202) waits instead of being refused. ``/healthz`` reports the budget and whether it is full.

The hashes run on threads of their own at a lower scheduling priority (``niceness``; Linux gives each
thread its own): when the cores are all busy, a register's payment gets one before a sign-in's argon2.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from payment_core.config import PASSWORD_NICENESS
from payment_core.passwords import PasswordHasher
from protocol import ErrorCode, ProtocolError

T = TypeVar("T")
RETRY_AFTER_SECONDS = 1
BUSY_MESSAGE = "Sign-in is busy right now; please try again in a moment."


def lower_this_threads_priority(niceness: int) -> None:
    """Lower the calling thread's scheduling priority by ``niceness`` (Linux: per thread; elsewhere nothing, since
    ``setpriority`` there would lower the whole process, the registers' requests too)."""
    if niceness > 0 and sys.platform == "linux":
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + niceness))


class PasswordWorkFull(ProtocolError):
    """503 with ``Retry-After``: every hashing slot is busy and the queue is full."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.SERVICE_UNAVAILABLE, BUSY_MESSAGE)
        self.retry_after = RETRY_AFTER_SECONDS


class PasswordWork:
    def __init__(self, workers: int, queue: int, niceness: int = PASSWORD_NICENESS) -> None:
        if workers < 1 or queue < 0 or not 0 <= niceness <= 19:
            raise ValueError("password work needs at least one worker, a queue of zero or more, niceness 0-19")
        self.workers = workers
        self.queue = queue
        self.niceness = niceness
        self._threads = ThreadPoolExecutor(
            workers, "possim-password", initializer=lower_this_threads_priority, initargs=(niceness,)
        )
        self._admitted = threading.BoundedSemaphore(self.capacity)
        self._lock = threading.Lock()
        self._in = 0  # admitted: running or waiting
        self._requests = 0  # sign-in requests in, anywhere in their route (admitted by payment_core.api_unit)

    @property
    def capacity(self) -> int:
        return self.workers + self.queue

    def admit_request(self) -> bool:
        """Let one more request of a password route in, if fewer than :attr:`capacity` are in (False: refuse it,
        503). It leaves with :meth:`leave_request`. Counted here rather than at the hashing itself, so that a
        request between its transactions and its hash still takes its place."""
        with self._lock:
            if self._requests >= self.capacity:
                return False
            self._requests += 1
            return True

    def leave_request(self) -> None:
        """A request let in by :meth:`admit_request` has its answer: its place is free."""
        with self._lock:
            self._requests -= 1

    def run(self, work: Callable[[], T], *, shed: bool = True) -> T:
        """Run ``work`` when a slot is free; with ``shed`` (a caller still waiting for its answer) refuse at
        once when the queue is full, otherwise wait for room."""
        if not self._admitted.acquire(blocking=not shed):
            raise PasswordWorkFull()
        with self._lock:
            self._in += 1
        try:
            return self._threads.submit(work).result()
        finally:
            with self._lock:
                self._in -= 1
            self._admitted.release()

    def close(self) -> None:
        self._threads.shutdown(wait=True)

    def status(self) -> dict[str, int | bool]:
        """``saturated``: the next sign-in would be refused with 503 (every place is taken)."""
        admitted = self._in
        return {
            "workers": self.workers,
            "queue": self.queue,
            "running": min(admitted, self.workers),
            "waiting": max(0, admitted - self.workers),
            "saturated": max(admitted, self._requests) >= self.capacity,
        }


class BoundedHasher:
    """A :class:`PasswordHasher` whose hashing and verifying go through a :class:`PasswordWork` budget."""

    def __init__(self, hasher: PasswordHasher, work: PasswordWork, *, shed: bool = True) -> None:
        self._hasher = hasher
        self._work = work
        self._shed = shed

    def hash(self, password: str) -> str:
        if self._hasher.fast:  # the 7pay replay's fast hash: handing it to the pool would cost more
            return self._hasher.hash(password)
        return self._work.run(lambda: self._hasher.hash(password), shed=self._shed)

    def verify(self, stored: str, password: str) -> bool:
        if self._hasher.fast:
            return self._hasher.verify(stored, password)
        return self._work.run(lambda: self._hasher.verify(stored, password), shed=self._shed)

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.needs_rehash(stored)
