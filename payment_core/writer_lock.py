"""SQLite's one writer within a process: a lock that knows whether threads are queued for it, so that
background work can step aside for requests.

``threading.Lock`` is not fair: a thread that lets the lock go and asks for it again at once, still holding
the interpreter's lock, nearly always gets it back before a thread woken from the queue gets the
interpreter back. The queued-work runner does jobs back to back, a transaction each; measured in a replay
of 7pay's list attack (``possim attack credential-stuffing --defenses 7pay``), every sign-in thread sat
queued for the writer while the runner committed one reset mail after another. Between two jobs the runner
now waits until the threads queued for the writer have had it (:meth:`WriterLock.step_aside`), at most
``STEP_ASIDE_SECONDS``, so that a steady queue of requests still lets the work go on.
"""

from __future__ import annotations

import threading

STEP_ASIDE_SECONDS = 0.05  # the longest background work waits between two of its transactions


class WriterLock:
    """A lock (acquire with a timeout, release) that counts the threads waiting to acquire it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._queued = 0

    @property
    def queued(self) -> int:
        """How many threads wait to acquire the lock now."""
        return self._queued

    def acquire(self, timeout: float) -> bool:
        if self._lock.acquire(blocking=False):  # free: no queue to join, no condition to touch
            return True
        with self._changed:
            self._queued += 1
        try:
            return self._lock.acquire(timeout=timeout)
        finally:
            with self._changed:
                self._queued -= 1
                if self._queued == 0:
                    self._changed.notify_all()

    def release(self) -> None:
        self._lock.release()

    def step_aside(self, timeout: float = STEP_ASIDE_SECONDS) -> bool:
        """Wait (call it not holding the lock) until no thread is queued for the lock, at most ``timeout``
        seconds: True when the queue emptied, False when the time ran out first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._queued == 0, timeout)
