"""At start, the wallet orders this register sent but never saw settled: asked of the core, then written down.

A register killed mid-payment (or whose core never answered) finds those orders ``pending`` in its file
(:mod:`terminal.wallet_orders`). Before the clerk sells, each is asked of the core
(:meth:`PaymentClient.query`), oldest first:

- **succeeded**: the customer paid, so the sale is recorded under the order's receipt number, with its lines
  and amount and the core's payment id (``Journal.record_sale``, which settles the order in the same
  transaction): the till's books match the core's;
- **declined**, **reversed** or **refunded**: nothing is owed; the order is written down as such;
- **awaiting the customer**, or **unknown to the core** (``resource_missing``: the request never arrived):
  the order is reversed (:meth:`PaymentClient.reverse`: a late approval is refunded in full, and a late copy
  of the request can never charge) and written down as reversed;
- **no answer**, or an answer that says nothing: the order stays pending, and once the core cannot be
  reached the orders after it are not asked either. The summary says so; the register asks again at its next
  start, when the clerk asks (F9 on the sale screen), and before the shift can close.

Nothing here raises for the core's answers: every order ends in a :class:`Settlement`.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import ErrorCode, PaymentStatus
from terminal.client import UNKNOWN, PaymentClient, PaymentOutcome
from terminal.register_records import RegisterStoreError, SaleRecord
from terminal.register_store import RegisterStore
from terminal.wallet_orders import DECLINED, PAID, PENDING, REVERSED, WalletOrder

NOT_ASKED = "Not asked: the payment service did not answer for an earlier order."


@dataclass(frozen=True)
class Settlement:
    """What became of one pending order: ``result`` is ``paid``, ``declined``, ``reversed`` or ``pending``."""

    order: WalletOrder
    result: str
    message: str
    sale: SaleRecord | None = None  # the sale recorded for a paid order
    answered: bool = True  # False: the core could not be reached, or answered 5xx (unavailable)

    def line(self) -> str:
        """One line for the clerk: the order, its receipt and amount, and what was done."""
        head = f"{self.order.order_id} (receipt {self.order.receipt_no}, ¥{self.order.amount:,})"
        words = {
            PAID: "paid, recorded as a sale",
            DECLINED: "declined, nothing charged",
            REVERSED: "reversed, nothing charged",
            PENDING: "still pending",
        }
        return f"{head}: {words[self.result]} — {self.message}"


@dataclass(frozen=True)
class Reconciliation:
    """The pending orders found at start and what became of each."""

    settlements: tuple[Settlement, ...] = ()

    def _with(self, result: str) -> list[Settlement]:
        return [settlement for settlement in self.settlements if settlement.result == result]

    @property
    def found(self) -> int:
        return len(self.settlements)

    @property
    def paid(self) -> list[Settlement]:
        return self._with(PAID)

    @property
    def still_pending(self) -> list[Settlement]:
        return self._with(PENDING)

    def summary(self) -> str:
        """``2 pending payments found: 1 recorded as paid (receipt R1-000003), 1 reversed``; empty when none."""
        if not self.settlements:
            return ""
        parts = []
        if self.paid:
            receipts = ", ".join(settlement.order.receipt_no for settlement in self.paid)
            parts.append(f"{len(self.paid)} recorded as paid (receipt {receipts})")
        for result, words in ((REVERSED, "reversed"), (DECLINED, "declined")):
            if count := len(self._with(result)):
                parts.append(f"{count} {words}")
        if self.still_pending:
            unanswered = any(not settlement.answered for settlement in self.still_pending)
            reason = "the payment service cannot be reached" if unanswered else "the payment service would not say"
            parts.append(f"{len(self.still_pending)} still pending: {reason}; checked again at the next start or F9")
        plural = "s" if self.found > 1 else ""
        return f"{self.found} pending payment{plural} found: " + ", ".join(parts)


def reconcile(store: RegisterStore, client: PaymentClient) -> Reconciliation:
    """Ask the core about every pending wallet order of ``store`` and write down what it says (see the module)."""
    settlements: list[Settlement] = []
    reachable = True
    for order in store.wallet_orders.pending():
        if not reachable:
            settlements.append(Settlement(order, PENDING, NOT_ASKED, answered=False))
            continue
        settlement = _settle_one(store, client, order)
        settlements.append(settlement)
        reachable = settlement.answered
    return Reconciliation(tuple(settlements))


def _settle_one(store: RegisterStore, client: PaymentClient, order: WalletOrder) -> Settlement:
    looked_up = client.query(order.order_id)
    if looked_up.status == PaymentStatus.SUCCEEDED:
        return _record_paid(store, order, looked_up)
    if looked_up.status in (PaymentStatus.DECLINED, PaymentStatus.REVERSED, PaymentStatus.REFUNDED):
        return _write_down(store, order, looked_up, "The payment service had already closed it.")
    never_seen = looked_up.error_code == ErrorCode.NOT_FOUND.value and looked_up.http_status == 404
    if looked_up.status != PaymentStatus.AWAITING_CUSTOMER and not never_seen:
        return _left_pending(order, looked_up)
    reversed_ = client.reverse(order.order_id)
    if reversed_.status in (PaymentStatus.DECLINED, PaymentStatus.REVERSED, PaymentStatus.REFUNDED):
        if never_seen:
            why = "It never reached the payment service; closed there, so a late copy can never charge."
        else:
            why = "The customer had not approved it; closed at the payment service."
        if (reversed_.data or {}).get("amount_refunded"):
            why = "The customer approved it as it was being closed: refunded in full."
        return _write_down(store, order, reversed_, why)
    return _left_pending(order, reversed_)


def _record_paid(store: RegisterStore, order: WalletOrder, outcome: PaymentOutcome) -> Settlement:
    try:
        sale = store.journal.record_sale(
            receipt_no=order.receipt_no,
            shift_id=order.shift_id,
            order_id=order.order_id,
            total=order.amount,
            tender="wallet",
            wallet_amount=order.amount,
            cash_amount=0,
            payment_id=outcome.payment_id,
            lines_json=order.lines_json,
        )
    except RegisterStoreError as error:  # the core has the payment: the order stays pending until it is recorded
        return Settlement(order, PENDING, f"The customer paid ({outcome.payment_id}), but recording failed: {error}.")
    return Settlement(order, PAID, f"Payment {outcome.payment_id}.", sale)


def _write_down(store: RegisterStore, order: WalletOrder, outcome: PaymentOutcome, message: str) -> Settlement:
    state = DECLINED if outcome.status == PaymentStatus.DECLINED else REVERSED
    store.wallet_orders.settle(order.order_id, state, payment_id=outcome.payment_id, note=message)
    return Settlement(order, state, message)


def _left_pending(order: WalletOrder, outcome: PaymentOutcome) -> Settlement:
    """The core could not be reached (or answered 5xx: unavailable), or refused to say: ask again later."""
    if outcome.status == UNKNOWN:
        message = outcome.message
        if outcome.http_status is not None and outcome.http_status >= 500:
            message = f"The payment service is unavailable ({outcome.http_status}): {outcome.message}"
        return Settlement(order, PENDING, message, answered=False)
    refused = f"The payment service refused to say ({outcome.error_code or outcome.status}): {outcome.message}"
    return Settlement(order, PENDING, refused)
