"""A job the core runs by itself every so often (closing unanswered payments, pruning what is kept only for
a while), on a daemon thread of ``possim core serve``. A failed run is logged and the next one tries again;
:meth:`Periodic.run_now` wakes it at once and waits (tests, an operator's nudge)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Self

from sqlalchemy.exc import OperationalError

log = logging.getLogger("possim.core")


def described(error: Exception) -> str:
    """An error for the log: its type, and for a database that failed to answer (``OperationalError``: down,
    locked, the connection lost) the driver's own first line, which holds no statement parameters; other
    errors by type only, as their text may carry what a request held."""
    if isinstance(error, OperationalError):
        return f"{type(error.orig).__name__}: {str(error.orig).splitlines()[0][:200] if str(error.orig) else ''}"
    return type(error).__name__


class Periodic:
    """``job`` every ``every_seconds`` until :meth:`stop`; ``job`` returns how much it did (summed in ``done``)."""

    def __init__(self, name: str, every_seconds: float, job: Callable[[], int], what: str) -> None:
        self._job, self._every, self._what = job, every_seconds, what
        self._stopping = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._requested = False
        self._started = 0
        self._launched = False
        self.runs = 0  # runs finished
        self.done = 0  # what they did, summed

    def start(self) -> Self:
        with self._wake:
            if not self._launched:
                self._launched = True
                self._thread.start()
        return self

    def poke(self) -> None:
        """Ask for a run soon, without waiting for it."""
        with self._wake:
            self._requested = True
            self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._requested or self._stopping, self._every)
                if self._stopping:
                    return
                self._requested = False
                self._started += 1
                ticket = self._started
            try:
                done = self._job()
            except Exception as error:  # logged; the next run tries again
                log.error("%s failed: %s", self._what, described(error))
                done = 0
            if done:
                log.info("%s: %d", self._what, done)
            with self._wake:
                self.runs = ticket
                self.done += done
                self._wake.notify_all()

    def run_now(self, timeout: float = 30.0) -> int:
        """Wake the thread for one run and wait for it; its run number."""
        with self._wake:
            self._requested = True
            target = self._started + 1  # a run under way may have looked before this call
            self._wake.notify_all()
            if not self._wake.wait_for(lambda: self.runs >= target or self._stopping, timeout):
                raise TimeoutError(f"{self._what} did not run")
            return self.runs

    def stop(self, timeout: float = 10.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
