"""Offline code minting: the phone needs only its device secret and its clock, no signal."""

from __future__ import annotations

import threading

from protocol import Clock, PaymentCode, epoch_seconds, mint_code, system_clock
from protocol.payment_code import COUNTERS_PER_SECOND


class CodesExhausted(Exception):
    """Ten codes were already minted in this second; the next second brings ten more."""


class CodeMinter:
    """Mints distinct codes: up to ten a second, each with its own (second, counter)."""

    def __init__(self, device_id: int, secret: bytes, clock: Clock = system_clock) -> None:
        self.device_id = device_id
        self._secret = secret
        self._clock = clock
        self._lock = threading.Lock()
        self._last_second = -1
        self._next_counter = 0

    def mint(self) -> PaymentCode:
        with self._lock:
            second = epoch_seconds(self._clock())
            if second != self._last_second:
                self._last_second, self._next_counter = second, 0
            if self._next_counter >= COUNTERS_PER_SECOND:
                raise CodesExhausted(second)
            counter = self._next_counter
            self._next_counter += 1
        return mint_code(self._secret, self.device_id, second, counter)
