"""What an attacker counts as it goes (each answer by what it was, and per second for the chart)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    started: float
    attempts: int = 0
    topups: Counter[str] = field(default_factory=Counter)
    payments: Counter[str] = field(default_factory=Counter)
    attempts_by_second: Counter[int] = field(default_factory=Counter)
    yen_by_second: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def second(self) -> int:
        return int(time.monotonic() - self.started)
