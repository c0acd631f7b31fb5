"""The faults the proxy injects, their rates, and the seeded plan that decides each request's fate.

A register's requests reach the proxy one after the other (its client waits for each answer), so "the
register's n-th request" names the same request in every run of a seed. The plan draws that request's fate
from ``random.Random`` seeded with the run's seed, the register and n, so one seed always gives the same
fault schedule, whatever the other registers do meanwhile and however fast the machine is.

What each kind does at the HTTP level (``possim.chaos.proxy``):

- ``drop_request``: the request never reaches the core; the register's connection is closed unanswered.
- ``drop_response``: the core decides and answers; the answer is thrown away and the connection closed.
- ``delay``: the request waits up to ``DELAY_MAX_SECONDS`` before it is sent on (less than the client's patience).
- ``duplicate``: two copies go to the core at once, each on its own connection; the register gets the answer
  of the copy the plan names (the other copy's answer is thrown away).
- ``reorder``: the request is held until another request (any register's) has been sent on after it came,
  or ``REORDER_MAX_SECONDS`` passed, so the core sees the later one first.
- ``timeout``: no answer within the client's patience: the register gives up on it (and retries), and the
  held copy reaches the core late, after the retry (its answer thrown away).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field, fields
from enum import StrEnum

DELAY_MAX_SECONDS = 0.4
REORDER_MAX_SECONDS = 0.5


class FaultKind(StrEnum):
    DROP_REQUEST = "drop_request"
    DROP_RESPONSE = "drop_response"
    DELAY = "delay"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    TIMEOUT = "timeout"


KINDS: tuple[FaultKind, ...] = tuple(FaultKind)


@dataclass(frozen=True)
class FaultRates:
    """The chance that one request gets each fault (at most one fault a request): each 0 to 1, together at
    most 1. The defaults put about one request in eight through a fault."""

    drop_request: float = 0.02
    drop_response: float = 0.02
    delay: float = 0.04
    duplicate: float = 0.02
    reorder: float = 0.02
    timeout: float = 0.005

    def __post_init__(self) -> None:
        for kind in KINDS:
            rate = self.of(kind)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"--{kind.replace('_', '-')}: {rate} is not between 0 and 1")
        if sum(self.of(kind) for kind in KINDS) > 1.0 + 1e-9:
            raise ValueError("the fault rates add up to more than 1")

    def of(self, kind: FaultKind) -> float:
        rate: float = getattr(self, kind.value)
        return rate

    def flags(self) -> list[str]:
        """The command-line flags that give these rates (``--drop-request 0.02`` ...), every one spelled out."""
        words: list[str] = []
        for name in (each.name for each in fields(self)):
            words += [f"--{name.replace('_', '-')}", f"{getattr(self, name):g}"]
        return words


@dataclass(frozen=True)
class Fault:
    """The fate of a register's ``number``-th request (from 0). ``kind`` None: sent on untouched."""

    register: int
    number: int
    kind: FaultKind | None
    delay_seconds: float = 0.0  # DELAY: how long the request waits
    answer_copy: int = 0  # DUPLICATE: which copy's answer the register gets (0: the first sent, 1: the second)


class FaultPlan:
    """Decides each request's fate from the seed alone (see the module's docstring)."""

    def __init__(self, seed: int, rates: FaultRates) -> None:
        self.seed = seed
        self.rates = rates

    def decide(self, register: int, number: int) -> Fault:
        draw = random.Random(f"possim-chaos/{self.seed}/fault/{register}/{number}")
        roll, detail = draw.random(), draw.random()
        edge = 0.0
        for kind in KINDS:
            edge += self.rates.of(kind)
            if roll < edge:
                return Fault(
                    register,
                    number,
                    kind,
                    delay_seconds=round(0.01 + detail * (DELAY_MAX_SECONDS - 0.01), 3)
                    if kind is FaultKind.DELAY
                    else 0.0,
                    answer_copy=int(detail * 2) if kind is FaultKind.DUPLICATE else 0,
                )
        return Fault(register, number, None)

    def schedule(self, registers: int, requests: int) -> list[Fault]:
        """The faults of each register's first ``requests`` requests (what a replay of the seed injects)."""
        return [
            fault
            for register in range(registers)
            for number in range(requests)
            if (fault := self.decide(register, number)).kind is not None
        ]


@dataclass
class FaultLog:
    """What the proxy did, written from its event loop's thread and read by the run's (under a lock)."""

    requests: int = 0  # requests the registers sent through the proxy
    injected: list[Fault] = field(default_factory=list)
    upstream_failures: int = 0  # requests the core did not answer (down, killed, connection reset): not a fault
    late_copies_answered: int = 0  # timeout's late copies (and duplicates' second copies) the core answered
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def record(self, fault: Fault) -> None:
        with self._lock:
            self.injected.append(fault)

    def upstream_failed(self) -> None:
        with self._lock:
            self.upstream_failures += 1

    def late_copy_answered(self) -> None:
        with self._lock:
            self.late_copies_answered += 1

    def by_kind(self) -> dict[str, int]:
        """Faults injected by kind, every kind named (0 when none)."""
        with self._lock:
            counted = Counter(fault.kind for fault in self.injected if fault.kind is not None)
        return {kind.value: counted.get(kind, 0) for kind in KINDS}
