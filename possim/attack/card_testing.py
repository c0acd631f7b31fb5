"""``possim attack card-testing``: PayPay's December 2018 incident replayed. Card numbers leaked elsewhere
(without their security codes) are linked to wallets the attacker opened, each code guessed until one fits,
then each card is charged through top-ups as far as the core allows and the money spent at the colluding
stores. Real customers link their own cards, top up and shop throughout.

With 7pay's (and PayPay's) defences nothing limits the guessing, so a card falls in about 500 tries. With
possim's, a link needs the phone's authenticator code (one a 30-second step per account), wrong codes are
limited per card, phone and address, and a lucky guess meets the issuer's check. Bounded by the attempt
budget and the deadline; the figures are counted from the database after the server stopped."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyotp

from payment_core.cards import issuer_code, with_check_digit
from possim.attack.scenario import Scenario, attacker_address
from possim.attack.seeding import Phone
from possim.attack.tally import Tally
from possim.world import RegisteredTerminal
from protocol import ErrorCode, ProtocolError
from protocol.http_auth import SigningAuth
from protocol.wire import encode_body
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

MULES = 20
GIVE_UP_AFTER_REFUSALS = 3  # 429s on one card: the thief moves on to the next card
GIVE_UP_AFTER_REFUSED_TRIES = 3 * MULES  # 429s in a row over every phone: the thief stops
REQUEST_TIMEOUT = 30.0
TOTP_STEP = 30
_JSON = {"content-type": "application/json"}


def leaked_card(n: int) -> str:
    return with_check_digit(f"5{n:014d}")


def own_card(index: int) -> str:
    return with_check_digit(f"4{index:014d}")


@dataclass
class CardTally(Tally):
    links: Counter[str] = field(default_factory=Counter)
    cards_tried: int = 0
    cards_linked: list[str] = field(default_factory=list)
    cards_given_up: int = 0
    yen_charged: int = 0


class _Mule:
    def __init__(self, phone: Phone, url: str, address: str) -> None:
        self.phone, self.last_step = phone, -1
        self.state = WalletState(url, f"mule{phone.account_id}", phone.account_id, phone.device_id, phone.secret)
        self.client = WalletClient(
            url, timeout=REQUEST_TIMEOUT, transport=httpx.HTTPTransport(local_address=address, verify=False)
        )


class CardTester:
    def __init__(
        self,
        url: str,
        scenario: Scenario,
        mules: list[Phone],
        registers: list[RegisteredTerminal],
        topups: tuple[int, int],
        needs_authenticator: bool,
        deadline: float,
    ) -> None:
        self.url, self.scenario, self.registers = url, scenario, registers
        self.topup_max_yen, self.topups_a_day = topups
        self.needs_authenticator, self.deadline = needs_authenticator, deadline
        self.tally = CardTally(time.monotonic())
        self._mules = [_Mule(phone, url, attacker_address(n)) for n, phone in enumerate(mules)]
        self._turn = itertools.count()
        self._cards = itertools.count()
        self._orders = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reserved = 0
        self._refused_in_a_row = 0

    @property
    def gave_up(self) -> bool:
        """Whether the thief stopped because every phone was refused."""
        return self._refused_in_a_row >= GIVE_UP_AFTER_REFUSED_TRIES

    def close(self) -> None:
        for mule in self._mules:
            mule.client.close()

    def _over(self) -> bool:
        return (
            time.monotonic() >= self.deadline
            or self.tally.attempts >= self.scenario.attempts
            or self._refused_in_a_row >= GIVE_UP_AFTER_REFUSED_TRIES
        )

    def worker(self, number: int) -> None:
        rng = random.Random(self.scenario.seed * 1000 + number)
        while not self._over():
            with self._lock:
                card = leaked_card(next(self._cards))
                self.tally.cards_tried += 1
            self._test(card, rng)

    def _mule(self) -> tuple[_Mule, str | None] | None:
        """A phone and an authenticator code it has not used yet (the core takes the steps around now, once
        each, so a thief uses all three), or any phone and no code without that defence."""
        while not self._over():
            step = int(time.time()) // TOTP_STEP
            with self._lock:
                for _ in range(len(self._mules)):
                    mule = self._mules[next(self._turn) % len(self._mules)]
                    if not self.needs_authenticator:
                        return mule, None
                    fresh = [candidate for candidate in (step - 1, step, step + 1) if candidate > mule.last_step]
                    if fresh:
                        mule.last_step = fresh[0]
                        return mule, pyotp.TOTP(mule.phone.totp).at(fresh[0] * TOTP_STEP)
            self._stop.wait(min(1.0, max(0.05, (step + 1) * TOTP_STEP - time.time())))
        return None

    def _test(self, card: str, rng: random.Random) -> None:
        codes = [f"{n:03d}" for n in range(1000)]
        rng.shuffle(codes)
        refusals = 0
        for code in codes:
            with self.tally.lock:  # the budget is reserved before the try, so the workers never pass it
                if self._reserved >= self.scenario.attempts:
                    return
                self._reserved += 1
            chosen = self._mule()
            if chosen is None:
                return
            mule, authenticator = chosen
            try:
                mule.client.link_card(mule.state, card, code, authenticator)
                outcome = "linked"
            except ProtocolError as error:
                outcome = error.code.value
            with self.tally.lock:
                self.tally.attempts += 1
                self.tally.links[outcome] += 1
                limited = outcome == ErrorCode.RATE_LIMITED.value
                self._refused_in_a_row = self._refused_in_a_row + 1 if limited else 0
                self.tally.attempts_by_second[self.tally.second()] += 1
            if outcome == "linked":
                with self.tally.lock:
                    self.tally.cards_linked.append(card)
                self._cash_out(mule, card)
                return
            if outcome == ErrorCode.RATE_LIMITED.value:
                refusals += 1
            if outcome == ErrorCode.RISK_DECLINED.value or refusals >= GIVE_UP_AFTER_REFUSALS or self._over():
                with self.tally.lock:
                    self.tally.cards_given_up += 1
                return

    def _mule_itself(self, mule: _Mule) -> str | None:
        """A fresh authenticator code of this very phone ("" without that defence; None past the deadline)."""
        if not self.needs_authenticator:
            return ""
        while not self._over():
            step = int(time.time()) // TOTP_STEP
            with self._lock:
                fresh = [candidate for candidate in (step - 1, step, step + 1) if candidate > mule.last_step]
                if fresh:
                    mule.last_step = fresh[0]
                    return pyotp.TOTP(mule.phone.totp).at(fresh[0] * TOTP_STEP)
            self._stop.wait(min(1.0, max(0.05, (step + 1) * TOTP_STEP - time.time())))
        return None

    def _cash_out(self, mule: _Mule, card: str) -> None:
        for n in range(self.topups_a_day):
            chosen = self._mule_itself(mule)
            if chosen is None:
                break
            authenticator = chosen or ""
            topup_id = f"card-{card[-6:]}-{mule.phone.device_id}-{n}"
            try:
                mule.client.topup_card(mule.state, self.topup_max_yen, card, authenticator, topup_id)
                outcome = "succeeded"
            except ProtocolError as error:
                outcome = error.code.value
            with self.tally.lock:
                self.tally.topups[outcome] += 1
                if outcome == "succeeded":
                    self.tally.yen_charged += self.topup_max_yen
                    self.tally.yen_by_second[self.tally.second()] += self.topup_max_yen
            if outcome != "succeeded":
                break
        self._spend(mule)

    def _spend(self, mule: _Mule) -> None:
        minter = CodeMinter(mule.phone.device_id, mule.phone.secret)
        register = self.registers[next(self._orders) % len(self.registers)]
        with httpx.Client(base_url=self.url, auth=SigningAuth(register.id, register.secret), timeout=30) as till:
            while not self._over():
                try:
                    amount = mule.client.balance(mule.state) // 1_000 * 1_000
                except ProtocolError:
                    return
                if amount < 1_000:
                    return
                body = {
                    "order_id": f"card-loot-{next(self._orders)}",
                    "amount": min(amount, 50_000),
                    "code": minter.mint().numeric,
                    "categories": ["gift_card"],
                }
                try:
                    answer = till.post("/v1/payments", content=encode_body(body), headers=_JSON)
                    outcome = str(answer.json().get("status") or answer.json()["error"]["code"])
                except (httpx.HTTPError, ValueError, KeyError) as error:
                    outcome = f"error:{type(error).__name__}"
                with self.tally.lock:
                    self.tally.payments[outcome] += 1
                if outcome != "succeeded":
                    return


def link_own_cards(url: str, shoppers: list[Phone], customers: list[int], needs_authenticator: bool) -> Counter[str]:
    """Each shopper links their own card (the right code, their authenticator) and tops up 5,000 yen from it."""
    outcomes: Counter[str] = Counter()
    with WalletClient(url, timeout=REQUEST_TIMEOUT) as client:
        for phone, index in zip(shoppers, customers, strict=True):
            state = WalletState(url, f"customer{index}", phone.account_id, phone.device_id, phone.secret)
            card = own_card(index)
            totp = pyotp.TOTP(phone.totp)
            # two codes of one moment: this step's for the link, the next step's for the top-up (the core takes
            # the steps around its own now, once each), so a step ending between the two requests loses neither
            moment = time.time()
            link_code = totp.at(moment) if needs_authenticator else None
            topup_code = totp.at(moment + TOTP_STEP) if needs_authenticator else ""
            try:
                client.link_card(state, card, issuer_code(card), link_code)
                client.topup_card(state, 5_000, card, topup_code, f"own-{index}")
                outcomes["linked_and_topped_up"] += 1
            except ProtocolError as error:
                outcomes[error.code.value] += 1
    return outcomes


def summary(tally: CardTally) -> dict[str, Any]:
    return {
        "card_code_attempts": tally.attempts,
        "link_outcomes": dict(sorted(tally.links.items())),
        "cards_tried": tally.cards_tried,
        "cards_given_up": tally.cards_given_up,
        "topup_outcomes": dict(sorted(tally.topups.items())),
        "payment_outcomes": dict(sorted(tally.payments.items())),
        "yen_charged_seen_by_attacker": tally.yen_charged,
    }
