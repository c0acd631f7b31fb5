"""The attacker: a leaked ID/password list tried as new-phone sign-ins (``POST /v1/devices``) from many
loopback addresses (each request really comes from its own 127.x.y.z alias), and every wallet taken over
emptied at once: topped up from the owner's card as far as the core allows, then spent on tobacco and gift
cards at the colluding stores, through real signed register requests with codes minted on the stolen phone.

Bounded: every list entry is tried once (a refusal is counted, not retried), and everything stops at the
deadline. Every answer is counted by what it was."""

from __future__ import annotations

import itertools
import queue
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from payment_core.topups import CARD_OK
from possim.attack.list_client import ListClient
from possim.attack.scenario import World
from possim.attack.tally import Tally
from possim.world import RegisteredTerminal
from protocol import ErrorCode, ProtocolError
from protocol.http_auth import SigningAuth
from protocol.wire import encode_body
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

REQUEST_TIMEOUT = 30.0
SPEND_CHUNK_YEN = 50_000
GOODS = (["tobacco"], ["gift_card"])
_OUTCOMES = {
    ErrorCode.CREDENTIALS_INVALID: "refused",
    ErrorCode.RATE_LIMITED: "held",
    ErrorCode.SERVICE_UNAVAILABLE: "shed",
    ErrorCode.SERVICE_PAUSED: "paused",
    ErrorCode.RISK_DECLINED: "risk_declined",
}


@dataclass
class AttackTally(Tally):
    sign_ins: Counter[str] = field(default_factory=Counter)
    takeovers: list[WalletState] = field(default_factory=list)
    yen_taken: int = 0


class Attacker:
    def __init__(
        self,
        url: str,
        world: World,
        registers: list[RegisteredTerminal],
        topup_max_yen: int,
        topups_a_day: int,
        deadline: float,
    ) -> None:
        self.url, self.world, self.registers = url, world, registers
        self.topup_max_yen, self.topups_a_day = topup_max_yen, topups_a_day
        self.deadline = deadline
        self.tally = AttackTally(time.monotonic())
        self.stolen: queue.Queue[WalletState | None] = queue.Queue()
        self.wrong_password: Callable[[int], None] | None = None  # the reset door's queue (reset_door.py)
        self._next = itertools.count()
        self._rng = random.Random(world.scenario.seed)
        self._orders = itertools.count(1)

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    # -- the list -------------------------------------------------------------------------------------

    def sign_in_worker(self, number: int) -> None:
        """Take list entries until the list or the time runs out; each from the address its index picks."""
        clients: dict[str, ListClient] = {}
        entries, addresses = self.world.leaked, self.world.attacker_addresses
        try:
            while not self.expired():
                with self.tally.lock:
                    index = next(self._next)
                if index >= len(entries):
                    return
                address = addresses[index % len(addresses)]
                client = clients.get(address)
                if client is None:
                    client = clients[address] = ListClient(self.url, address, REQUEST_TIMEOUT)
                self._try(client, index)
        finally:
            for client in clients.values():
                client.close()

    def _try(self, client: ListClient, index: int) -> None:
        entry = self.world.leaked[index]
        guess = f"{(index * 7919) % 1_000_000:06d}"  # the attacker has no authenticator: a guess
        try:
            state = client.enroll(entry.email, entry.password, guess, "iPhone")
            outcome = "taken_over"
        except ProtocolError as error:
            state, outcome = None, _OUTCOMES.get(error.code, f"other:{error.code.value}")
        with self.tally.lock:
            self.tally.attempts += 1
            self.tally.sign_ins[outcome] += 1
            self.tally.attempts_by_second[self.tally.second()] += 1
            if state is not None:
                self.tally.takeovers.append(state)
        if state is not None:
            self.stolen.put(state)
        elif outcome == "refused" and self.wrong_password is not None:
            self.wrong_password(index)

    # -- the money ------------------------------------------------------------------------------------

    def cash_out_worker(self, number: int) -> None:
        """Empty each stolen wallet: card top-ups to the limit, then tobacco and gift cards."""
        registers = [
            httpx.Client(base_url=self.url, auth=SigningAuth(r.id, r.secret), timeout=REQUEST_TIMEOUT)
            for r in self.registers
        ]
        try:
            with WalletClient(self.url, timeout=REQUEST_TIMEOUT) as phone_api:
                while True:
                    try:
                        state = self.stolen.get(timeout=0.5)
                    except queue.Empty:
                        if self.expired():
                            return
                        continue
                    if state is None:
                        return
                    if not self.expired():
                        self._top_up(phone_api, state)
                        self._spend(phone_api, registers, state)
        finally:
            for register in registers:
                register.close()

    def _top_up(self, phone_api: WalletClient, state: WalletState) -> None:
        for n in range(self.topups_a_day):
            try:
                phone_api.topup_card(state, self.topup_max_yen, CARD_OK, "000000", f"card-{state.device_id}-{n}")
                outcome = "succeeded"
            except ProtocolError as error:
                outcome = error.code.value
            with self.tally.lock:
                self.tally.topups[outcome] += 1
            if outcome != "succeeded":
                return

    def _spend(self, phone_api: WalletClient, registers: list[httpx.Client], state: WalletState) -> None:
        minter = CodeMinter(state.device_id, state.secret)
        while not self.expired():
            try:
                balance = phone_api.balance(state)
            except ProtocolError:
                return
            amount = min(SPEND_CHUNK_YEN, balance // 1_000 * 1_000)
            if amount < 1_000:
                return
            register = registers[next(self._orders) % len(registers)]
            outcome = self._pay(register, phone_api, state, minter, amount)
            with self.tally.lock:
                self.tally.payments[outcome] += 1
                if outcome == "succeeded":
                    self.tally.yen_taken += amount
                    self.tally.yen_by_second[self.tally.second()] += amount
            if outcome != "succeeded":
                return

    def _pay(
        self, register: httpx.Client, phone_api: WalletClient, state: WalletState, minter: CodeMinter, amount: int
    ) -> str:
        body = {
            "order_id": f"loot-{state.device_id}-{next(self._orders)}",
            "amount": amount,
            "code": minter.mint().numeric,
            "categories": self._rng.choice(GOODS),
        }
        try:
            response = register.post("/v1/payments", content=encode_body(body), headers=_JSON)
            data = response.json()
        except (httpx.HTTPError, ValueError) as error:
            return f"error:{type(error).__name__}"
        if response.status_code == 202 and data.get("status") == "awaiting_customer":
            try:  # the thief holds the phone: approve it there
                data = phone_api.confirm(state, str(data["id"]), approve=True)
            except ProtocolError as error:
                return error.code.value
        if response.is_error:
            return str((data.get("error") or {}).get("code", response.status_code))
        return str(data.get("status"))


_JSON = {"content-type": "application/json"}
