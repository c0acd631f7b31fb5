"""Real customers shopping through the attack, so the defences' false positives show: each shopper pays
at most once a minute (a busy shop's pace, well under the velocity rules), a few hundred to a few thousand
yen for groceries at the ordinary shops, from home, with codes minted on the phone they have had for two
months. A payment the core holds for the phone's approval is approved there, as the customer would."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from possim.attack.seeding import Phone
from possim.world import RegisteredTerminal
from protocol import ErrorCode
from protocol.http_auth import SigningAuth
from protocol.wire import encode_body
from wallet_app.minter import CodeMinter

REQUEST_TIMEOUT = 30.0
PAYMENTS_PER_SECOND = 3.0
_JSON = {"content-type": "application/json"}
_NOT_DEFENCES = ("succeeded", ErrorCode.INSUFFICIENT_FUNDS.value)


@dataclass
class ShopperTally:
    outcomes: Counter[str] = field(default_factory=Counter)
    stepped_up: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def approved(self) -> int:
        return self.outcomes["succeeded"]

    @property
    def declined(self) -> int:
        """Refused for any reason but the customer's own balance (a false positive, or worse)."""
        return sum(count for outcome, count in self.outcomes.items() if outcome not in _NOT_DEFENCES)


class Shoppers:
    def __init__(self, url: str, phones: list[Phone], registers: list[RegisteredTerminal], seed: int) -> None:
        self.url, self.phones, self.registers = url, phones, registers
        self.tally = ShopperTally()
        self.stop = threading.Event()
        self._rng = random.Random(seed + 1)
        self._orders = itertools.count(1)
        self._minters = {phone.device_id: CodeMinter(phone.device_id, phone.secret) for phone in phones}

    def run(self, deadline: float) -> None:
        """Pay at ``PAYMENTS_PER_SECOND`` until ``stop`` or the deadline, one shopper after another."""
        if not self.phones:
            return
        clients = [
            httpx.Client(base_url=self.url, auth=SigningAuth(r.id, r.secret), timeout=REQUEST_TIMEOUT)
            for r in self.registers
        ]
        try:
            for turn in itertools.count():
                if self.stop.wait(1 / PAYMENTS_PER_SECOND) or time.monotonic() >= deadline:
                    return
                phone = self.phones[turn % len(self.phones)]
                self._pay(clients[turn % len(clients)], phone)
        finally:
            for client in clients:
                client.close()

    def _pay(self, register: httpx.Client, phone: Phone) -> None:
        body = {
            "order_id": f"shop-{next(self._orders)}",
            "amount": self._rng.randrange(2, 31) * 100,
            "code": self._minters[phone.device_id].mint().numeric,
            "categories": ["grocery"],
        }
        try:
            response = register.post("/v1/payments", content=encode_body(body), headers=_JSON)
            data = response.json()
            if response.status_code == 202:
                data, stepped = self._approve(phone, str(data["id"])), True
            else:
                stepped = False
            outcome = str(data.get("status")) if not response.is_error else str(data["error"]["code"])
        except (httpx.HTTPError, ValueError, KeyError) as error:
            outcome, stepped = f"error:{type(error).__name__}", False
        with self.tally.lock:
            self.tally.outcomes[outcome] += 1
            self.tally.stepped_up += stepped

    def _approve(self, phone: Phone, payment_id: str) -> dict[str, object]:
        auth = SigningAuth(f"dev_{phone.device_id}", phone.secret)
        with httpx.Client(base_url=self.url, auth=auth, timeout=REQUEST_TIMEOUT) as client:
            answer = client.post(
                f"/v1/wallet/payments/{payment_id}/confirm", content=encode_body({"decision": "approve"}), headers=_JSON
            )
        data: dict[str, object] = answer.json()
        return data
