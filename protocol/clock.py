"""Injectable clocks. Every time in possim is an aware UTC ``datetime``; tests move a clock, never sleep."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def epoch_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class ManualClock:
    """A clock that only moves when told to; thread safe, usable wherever a :data:`Clock` is."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


class OffsetClock:
    """The system clock shifted by a fixed amount: a phone whose clock runs behind or ahead."""

    def __init__(self, offset_seconds: float, base: Clock = system_clock) -> None:
        self._offset = timedelta(seconds=offset_seconds)
        self._base = base

    def __call__(self) -> datetime:
        return self._base() + self._offset
