"""The registers: each sells its share of the seeded sales, one after the other, through its port of the fault
proxy, with the real :class:`terminal.client.PaymentClient` (signed requests, retries with the same order id,
a query and a reverse when the outcome stays unknown) and records what the clerk was told.

What the register does with each outcome, as ``terminal/client.py`` says:

- ``succeeded``, ``declined``, ``reversed``: final; recorded as it stands.
- ``awaiting_customer``: waited for (:meth:`PaymentClient.wait_for_customer`); reversed when nobody approves.
- ``error``: refused, by the register or the core, and nothing happened: recorded as ``refused``.
- ``unknown``: the core could not be reached to say. The goods stay on the counter and the order is reversed
  once the service is back: before each next sale, and after the last one until every order is final or the
  run's bound passes.

Sales are planned from the seed (:func:`plan_sales`): the register, the phone, the amount, the code's form
and the order id of every sale are the same in every run of a seed.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from possim.chaos.shop import Phone
from possim.world import RegisteredTerminal, next_code
from protocol import PaymentStatus
from terminal.client import ERROR, UNKNOWN, PaymentClient, PaymentOutcome

AMOUNT_STEP_YEN = 10
AMOUNT_STEPS = 200  # 10 to 2,000 yen: below confirm_above_yen, so no phone is asked to approve
CONFIRM_WAIT_SECONDS = 3.0
CONFIRM_POLL_SECONDS = 0.5
SETTLE_PAUSE_SECONDS = 0.2  # between rounds of reverses while the core is still away

REFUSED = "refused"  # the client's ``error``: nothing happened
NOT_SOLD = "not_sold"  # the run's time bound came first
FINAL = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.DECLINED, PaymentStatus.REVERSED, PaymentStatus.REFUNDED})
ENDED = FINAL | {REFUSED}  # what the clerk can close the sale on


@dataclass(frozen=True)
class PlannedSale:
    number: int  # from 0, over all registers
    register: int
    phone: int  # the customer, among the register's phones
    order_id: str
    amount: int
    qr: bool  # the code's QR form (else the numeric form, as a barcode scanner reads it)


def plan_sales(seed: int, payments: int, registers: int, phones_per_register: int) -> list[PlannedSale]:
    """Every sale of the run, from the seed: round robin over the registers and each register's phones."""
    draw = random.Random(f"possim-chaos/{seed}/sales")
    sales = []
    for number in range(payments):
        register, turn = number % registers, number // registers
        amount = draw.randint(1, AMOUNT_STEPS) * AMOUNT_STEP_YEN
        qr = draw.random() < 0.5
        sales.append(PlannedSale(number, register, turn % phones_per_register, f"chaos-{seed}-{number}", amount, qr))
    return sales


def needs(sales: list[PlannedSale], registers: int, phones_per_register: int) -> list[list[int]]:
    """What each phone must hold to pay every sale planned for it."""
    wanted = [[0] * phones_per_register for _ in range(registers)]
    for sale in sales:
        wanted[sale.register][sale.phone] += sale.amount
    return wanted


@dataclass
class Sale:
    """A planned sale and what its register recorded."""

    planned: PlannedSale
    terminal_id: str
    account_id: int
    status: str = NOT_SOLD
    payment_id: str | None = None
    error_code: str | None = None
    attempts: int = 0
    reversed_later: bool = False  # its outcome was unknown; a reverse closed it once the core was back

    @property
    def attempted(self) -> bool:
        return self.status != NOT_SOLD

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def record(self, outcome: PaymentOutcome) -> None:
        self.status = REFUSED if outcome.status == ERROR else str(outcome.status)
        self.payment_id = outcome.payment_id or self.payment_id
        self.error_code = outcome.error_code or outcome.decline_code
        self.attempts += outcome.attempts


class Tally:
    """Sales ended so far, over every register (the crash driver's clock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ended = 0

    def add(self) -> None:
        with self._lock:
            self._ended += 1

    @property
    def ended(self) -> int:
        with self._lock:
            return self._ended


@dataclass(frozen=True)
class ClientSettings:
    """The register's patience: seconds per request, retries after no answer, the first retry's wait."""

    timeout: float = 2.0
    retries: int = 4
    backoff: float = 0.1


class Register:
    """One register's selling loop (run it on a thread with :meth:`run`)."""

    def __init__(
        self,
        terminal: RegisteredTerminal,
        url: str,
        phones: list[Phone],
        sales: list[Sale],
        tally: Tally,
        client: ClientSettings,
        sell_until: float,
        settle_until: float,
    ) -> None:
        self.terminal = terminal
        self.sales = sales
        self._url = url
        self._minters = [phone.minter() for phone in phones]
        self._tally = tally
        self._client = client
        self._sell_until = sell_until
        self._settle_until = settle_until
        self._pending: list[Sale] = []
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            with PaymentClient(
                self._url,
                self.terminal.id,
                self.terminal.secret,
                timeout=self._client.timeout,
                retries=self._client.retries,
                backoff=self._client.backoff,
            ) as client:
                for sale in self.sales:
                    if time.monotonic() >= self._sell_until:
                        break
                    self._reverse_pending(client)
                    self._sell(client, sale)
                while self._pending and time.monotonic() < self._settle_until:
                    self._reverse_pending(client)
                    if self._pending:
                        time.sleep(SETTLE_PAUSE_SECONDS)  # the core is away: a pause between rounds
        except Exception as error:  # reported by the run as a failure with its seed, never lost in a thread
            self.failure = error

    def _sell(self, client: PaymentClient, sale: Sale) -> None:
        planned = sale.planned
        code = next_code(self._minters[planned.phone])
        outcome = client.pay(
            planned.order_id, planned.amount, code.qr if planned.qr else code.numeric, description="chaos sale"
        )
        if outcome.status == PaymentStatus.AWAITING_CUSTOMER:
            outcome = client.wait_for_customer(
                planned.order_id, timeout=CONFIRM_WAIT_SECONDS, poll=CONFIRM_POLL_SECONDS
            )
        sale.record(outcome)
        if outcome.status == UNKNOWN or outcome.status == PaymentStatus.AWAITING_CUSTOMER:
            self._pending.append(sale)
        self._tally.add()

    def _reverse_pending(self, client: PaymentClient) -> None:
        """Reverse every order whose outcome is still unknown; those now final leave the list."""
        still = []
        for sale in self._pending:
            outcome = client.reverse(sale.planned.order_id)
            if outcome.final:
                sale.record(outcome)
                sale.reversed_later = True
            else:
                sale.attempts += outcome.attempts
                still.append(sale)
        self._pending = still


def start(registers: list[Register]) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=register.run, name=f"possim-chaos-register-{index + 1}", daemon=True)
        for index, register in enumerate(registers)
    ]
    for thread in threads:
        thread.start()
    return threads


def join(threads: list[threading.Thread], until: float, on_wait: Callable[[], None] | None = None) -> bool:
    """Wait for the registers until ``until`` (monotonic); True when every one ended."""
    for thread in threads:
        while thread.is_alive() and time.monotonic() < until:
            thread.join(timeout=0.5)
            if on_wait is not None:
                on_wait()
    return not any(thread.is_alive() for thread in threads)
