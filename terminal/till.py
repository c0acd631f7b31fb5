"""The till: one register's working state, without any UI.

It ties the parts together for a clerk's shift: the operator and shift (``RegisterStore.clerks``), the
sales journal (``RegisterStore.journal``), the sale being rung up (``Sale``), the payment core
(``PaymentClient``), the receipt printer and the customer display. Screens call it; the payment calls it makes are blocking, so screens call those from workers.

A wallet payment is written down as pending before it is sent (:meth:`Till.send_wallet`, ``terminal.wallet_orders``)
and settled with its outcome (:meth:`Till.finish_wallet` records the sale and settles it in one transaction,
:meth:`Till.settle_wallet` a decline or a reverse). What a register stopped mid-payment left pending is asked of
the core by :meth:`Till.reconcile_pending`, which the register app and ``terminal.headless`` run at start before
the clerk can sell (``terminal.reconcile``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace

from hardware.customer_display import CustomerDisplay, fit_line, format_total_line
from hardware.printer import PrinterError, ReceiptPrinter
from protocol import Clock, PaymentStatus, ScanKind, format_yen, looks_like_payment_code, system_clock
from terminal.catalog import Catalog, Product
from terminal.client import CONFIRM_POLL_SECONDS, CONFIRM_TIMEOUT_SECONDS, ERROR, PaymentClient, PaymentOutcome
from terminal.receipt import Receipt, Tender, mask_balance, render_receipt
from terminal.reconcile import Reconciliation, reconcile
from terminal.register_store import Clerk, RegisterStore, RegisterStoreError, SaleRecord, Shift, ShiftReport
from terminal.sale import Sale, SaleError
from terminal.wallet_orders import DECLINED, REFUSED, REVERSED


class TillError(Exception):
    """Something the clerk must be told; the message is for the screen."""


@dataclass(frozen=True)
class ScanOutcome:
    """What a scanned or typed code meant: a product rung up, a payment code, or nothing usable."""

    kind: ScanKind
    text: str
    product: Product | None = None
    message: str = ""
    line_index: int | None = None  # the sale line the product landed on


@dataclass
class PaymentAttempt:
    """One customer's payment: a receipt number, and an order id per try (a declined try needs a new one)."""

    receipt_no: str
    amount: int
    tries: int = 1
    categories: tuple[str, ...] = ()  # the catalog categories of the goods: sent with the payment (risk rules)

    @property
    def order_id(self) -> str:
        return f"{self.receipt_no}-{self.tries}"

    def next_try(self) -> None:
        self.tries += 1


@dataclass(frozen=True)
class Completed:
    """A printout: a sale's or refund's receipt, or a shift report (``receipt`` None)."""

    receipt: Receipt | None
    lines: list[str]
    printed: bool
    printer_message: str = ""


class Till:
    def __init__(
        self,
        store: RegisterStore,
        catalog: Catalog,
        client: PaymentClient,
        printer: ReceiptPrinter,
        display: CustomerDisplay,
        *,
        store_name: str,
        terminal_id: str,
        clock: Clock = system_clock,
        on_display: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.client = client
        self.printer = printer
        self.display = display
        self.store_name = store_name
        self.terminal_id = terminal_id
        self.clock = clock
        self.on_display = on_display
        self.clerk: Clerk | None = None
        self.shift: Shift | None = None
        self.sale = Sale()
        self.display_lines = ("いらっしゃいませ", "Welcome")
        self.last_receipt: Completed | None = None

    # -- operator and shift ------------------------------------------------------------------------

    def sign_in(self, clerk_id: str, pin: str) -> Clerk:
        """Check the PIN (throttled by the store) and open a shift, or resume this clerk's open one."""
        clerk = self.store.clerks.sign_in(clerk_id, pin)
        shift = self.store.clerks.current_shift()
        if shift is not None and shift.clerk_id != clerk.clerk_id:
            raise TillError(f"Shift #{shift.shift_id} is open for clerk {shift.clerk_id}; they must close it first.")
        self.clerk, self.shift = clerk, shift or self.store.clerks.open_shift(clerk.clerk_id)
        self.show("いらっしゃいませ", "Welcome")
        return clerk

    def shift_report(self) -> ShiftReport:
        return self.store.journal.shift_report(self._shift().shift_id)

    def close_shift(self) -> Completed:
        """Close the shift (Z-report), print it, and sign the clerk out."""
        if not self.sale.is_empty:
            raise TillError("Finish or void the sale before closing the shift.")
        report = self.store.journal.close_shift(self._shift().shift_id)
        lines = [fit_line(self.store_name, 42).rstrip(), *report.lines()]
        printed, message = self._print(lines, None)
        self.clerk, self.shift = None, None
        self.show("休止中", "Closed")
        return Completed(None, lines, printed, message)

    def _shift(self) -> Shift:
        if self.shift is None:
            raise TillError("Sign in first.")
        return self.shift

    # -- the sale ----------------------------------------------------------------------------------

    def scan(self, text: str, quantity: int = 1) -> ScanOutcome:
        """A code from the camera, a wedge scanner or the keyboard: a product is rung up at once."""
        text = text.strip()
        if looks_like_payment_code(text):
            return ScanOutcome(ScanKind.PAYMENT, text, message="Payment code read.")
        product = self.catalog.lookup(text)
        if product is None:
            return ScanOutcome(
                ScanKind.UNKNOWN, text, message=f"{text[:24]}: not in the catalog (商品が見つかりません)"
            )
        try:
            index = self.sale.add(product, quantity)
        except SaleError as error:
            return ScanOutcome(ScanKind.UNKNOWN, text, product, str(error))
        self.show(format_total_line(product.name, product.price), format_total_line("合計", self.sale.total))
        return ScanOutcome(ScanKind.PRODUCT, text, product, f"{product.name}  {format_yen(product.price)}", index)

    def void_sale(self) -> None:
        self.sale = Sale()
        self.show("取消しました", "Sale voided")

    def new_sale(self) -> None:
        self.sale = Sale()
        self.show("いらっしゃいませ", "Welcome")

    def refresh_display(self) -> None:
        if self.sale.is_empty:
            self.show("いらっしゃいませ", "Welcome")
        else:
            self.show(f"点数 {self.sale.item_count}", format_total_line("合計", self.sale.total))

    def start_payment(self) -> PaymentAttempt:
        self._shift()
        if self.sale.total <= 0:
            raise TillError("Nothing to pay: ring up an item first.")
        if self.sale.age_check_pending:
            raise TillError("Age check needed: the customer must confirm they are 20 or over.")
        categories = tuple(sorted({line.product.category for line in self.sale.active_lines}))
        attempt = PaymentAttempt(self.store.journal.next_receipt_no(), self.sale.total, categories=categories)
        self.show(format_total_line("お支払い", attempt.amount), "コードをかざしてください")
        return attempt

    def send_wallet(
        self,
        attempt: PaymentAttempt,
        code: str,
        *,
        confirm_timeout: float = CONFIRM_TIMEOUT_SECONDS,
        confirm_poll: float = CONFIRM_POLL_SECONDS,
        on_awaiting: Callable[[], None] | None = None,
        on_tick: Callable[[float], bool] | None = None,
    ) -> PaymentOutcome:
        """Write the order down as pending (committed before anything is sent), then send it; when the phone must
        approve, call ``on_awaiting`` and wait (``PaymentClient.wait_for_customer`` with ``on_tick``). Blocking: a
        screen calls it from a worker. :class:`TillError` when the order could not be written down: nothing was
        sent. The outcome is not settled here: :meth:`finish_wallet` or :meth:`settle_wallet` does that."""
        self.begin_wallet(attempt)
        description = f"receipt {attempt.receipt_no}"
        outcome = self.client.pay(
            attempt.order_id, attempt.amount, code, description=description, categories=attempt.categories
        )
        if outcome.status == PaymentStatus.AWAITING_CUSTOMER:
            if on_awaiting is not None:
                on_awaiting()
            outcome = self.client.wait_for_customer(
                attempt.order_id, timeout=confirm_timeout, poll=confirm_poll, on_tick=on_tick
            )
        return outcome

    def begin_wallet(self, attempt: PaymentAttempt) -> None:
        """Write ``attempt``'s order down as pending before it is sent (again: a retry of the same order is fine)."""
        shift = self._shift()
        try:
            self.store.wallet_orders.begin(
                order_id=attempt.order_id,
                receipt_no=attempt.receipt_no,
                shift_id=shift.shift_id,
                amount=attempt.amount,
                lines_json=self._lines_json(),
            )
        except (RegisterStoreError, OSError, sqlite3.Error) as error:
            raise TillError(f"The register could not write the order down, so nothing was sent: {error}") from None

    def settle_wallet(self, outcome: PaymentOutcome) -> bool:
        """Write down a payment that will not be recorded as a sale: declined, reversed (or refunded), or refused
        (an ``error``: nothing happened). An ``unknown`` or ``awaiting_customer`` outcome leaves the order pending
        (the register asks the core again: retry, or at start); so does a failed write. True when settled."""
        states = {
            PaymentStatus.DECLINED: DECLINED,
            PaymentStatus.REVERSED: REVERSED,
            PaymentStatus.REFUNDED: REVERSED,
            ERROR: REFUSED,
        }
        state = states.get(outcome.status)
        if state is None:
            return False
        note = outcome.decline_code or outcome.error_code or outcome.message
        try:
            return self.store.wallet_orders.settle(outcome.order_id, state, payment_id=outcome.payment_id, note=note)
        except (RegisterStoreError, OSError, sqlite3.Error):
            return False  # still pending: the next check asks the core, which says the same

    def reconcile_pending(self) -> Reconciliation:
        """Ask the core about every wallet order left pending (a register stopped mid-payment) and write down what
        it says: a paid one is recorded as a sale and its receipt printed, the others settled or reversed
        (``terminal.reconcile``). Blocking: the register app runs it in a worker, before the clerk can sell."""
        result = reconcile(self.store, self.client)
        for settlement in result.paid:
            if settlement.sale is not None:
                self._print_recovered(settlement.sale)
        return result

    def pending_count(self) -> int:
        """How many wallet orders are still pending (0 when the file cannot be read: nothing to show)."""
        try:
            return self.store.wallet_orders.pending_count()
        except (RegisterStoreError, sqlite3.Error):
            return 0

    def finish_wallet(self, attempt: PaymentAttempt, outcome: PaymentOutcome) -> Completed:
        """Record a succeeded wallet payment, print the receipt, and start a new sale."""
        if outcome.status != PaymentStatus.SUCCEEDED:
            raise TillError(f"The payment is {outcome.status}, not approved.")
        masked = mask_balance(outcome.balance_after) if outcome.balance_after is not None else None
        tender = Tender("wallet", attempt.amount, "possim")
        return self._complete(attempt, outcome.order_id, "wallet", (tender,), 0, outcome.payment_id, masked)

    def finish_cash(self, attempt: PaymentAttempt, tendered: int) -> Completed:
        if tendered < attempt.amount:
            raise TillError(f"{format_yen(tendered)} is less than the {format_yen(attempt.amount)} due.")
        change = tendered - attempt.amount
        return self._complete(attempt, f"{attempt.receipt_no}-cash", "cash", (Tender("cash", tendered),), change, None)

    def _complete(
        self,
        attempt: PaymentAttempt,
        order_id: str,
        tender: str,
        tenders: tuple[Tender, ...],
        change: int,
        payment_id: str | None,
        masked_balance: str | None = None,
    ) -> Completed:
        shift = self._shift()
        lines_json = self._lines_json()
        self.store.journal.record_sale(
            receipt_no=attempt.receipt_no,
            shift_id=shift.shift_id,
            order_id=order_id,
            total=attempt.amount,
            tender=tender,
            wallet_amount=attempt.amount if tender == "wallet" else 0,
            cash_amount=attempt.amount if tender == "cash" else 0,
            payment_id=payment_id,
            lines_json=lines_json,
        )
        receipt = Receipt.from_sale(
            self.sale,
            tenders=tenders,
            change=change,
            payment_id=payment_id,
            balance_after_masked=masked_balance,
            **self._header(attempt.receipt_no, "sale"),
        )
        completed = self._print_receipt(receipt)
        self.sale = Sale()
        lower = f"お釣り {format_yen(change)}" if tender == "cash" else "Approved 承認"
        self.show("ありがとうございました", lower)
        return completed

    def _lines_json(self) -> str:
        """The sale's lines as the journal keeps them: JAN, name, price, quantity, voided."""
        return json.dumps(
            [
                [line.product.jan, line.product.name, line.product.price, line.quantity, line.voided]
                for line in self.sale.lines
            ],
            ensure_ascii=False,
        )

    def _print_recovered(self, record: SaleRecord) -> Completed | None:
        """The receipt of a sale found paid at start (its lines from the journal); None when they cannot be
        rebuilt (a product gone from the catalog): the sale is recorded all the same."""
        goods = self._returned_goods(record, record.total)
        if goods.is_empty:
            return None
        receipt = Receipt.from_sale(
            goods,
            tenders=(Tender("wallet", record.total, "possim"),),
            change=0,
            payment_id=record.payment_id,
            note="復旧 Recorded at restart",
            **self._header(record.receipt_no, "sale"),
        )
        return self._print_receipt(receipt)

    # -- refunds and voids -------------------------------------------------------------------------

    def find_sale(self, receipt_no: str) -> SaleRecord:
        record = self.store.journal.get_sale(receipt_no.strip())
        if record is None:
            raise TillError(f"No receipt {receipt_no.strip()[:20]} on this register.")
        return record

    def refund(self, receipt_no: str, amount: int | None = None) -> Completed:
        """Refund ``amount`` (or all that is left) of a past sale: to the wallet through the core, or in cash."""
        record = self.find_sale(receipt_no)
        left = self.store.journal.refundable(record.receipt_no)
        value = left if amount is None else amount
        if value <= 0 or value > left:
            raise TillError(f"Only {format_yen(left)} is left to refund on {record.receipt_no}.")
        refund_id = None
        if record.tender == "wallet":
            if record.payment_id is None:
                raise TillError("The sale has no payment id to refund.")
            # Stable until the refund is recorded here: a retry after a lost answer or a failed local write
            # replays the core's refund (or is refused if the amount changed), never a second refund.
            refund_id = f"{record.receipt_no}-r{record.refunded}"
            outcome = self.client.refund(record.payment_id, refund_id, value)
            if outcome.status != PaymentStatus.REFUNDED:
                raise TillError(f"The refund did not go through: {outcome.message}")
        try:
            self.store.journal.record_refund(
                receipt_no=record.receipt_no, amount=value, tender=record.tender, refund_id=refund_id
            )
        except RegisterStoreError as error:
            raise TillError(str(error)) from None
        return self._refund_receipt(record, value, f"返品 {record.receipt_no}")

    def void(self, receipt_no: str) -> Completed:
        """Cancel a whole past wallet sale at the core (a reverse: refunded in full) and mark it voided."""
        record = self.find_sale(receipt_no)
        if record.status != "completed":
            raise TillError(f"{record.receipt_no} is {record.status}; use a refund instead.")
        if self.shift is None or record.shift_id != self.shift.shift_id:
            raise TillError(f"{record.receipt_no} is from an earlier shift: refund it instead (F2).")
        if record.tender == "wallet":
            outcome = self.client.reverse(record.order_id)
            if outcome.status != PaymentStatus.REVERSED:
                raise TillError(f"The void did not go through: {outcome.message}")
        self.store.journal.record_void(record.receipt_no)
        return self._refund_receipt(record, record.total, f"取消 {record.receipt_no}")

    def _refund_receipt(self, record: SaleRecord, amount: int, note: str) -> Completed:
        goods = self._returned_goods(record, amount)
        receipt = Receipt.from_sale(
            goods, tenders=(Tender(record.tender, amount),), note=note, **self._header(record.receipt_no, "refund")
        )
        receipt = replace(receipt, total=amount)
        self.show(note, format_total_line("返金", amount))
        return self._print_receipt(receipt)

    def _returned_goods(self, record: SaleRecord, amount: int) -> Sale:
        """What a refund of ``amount`` gives back: the sale's live lines when it returns the whole sale (so the
        refund receipt lists them, counts them and splits the tax); nothing for a refund of part of the amount,
        or when a product is no longer in the catalog (its tax rate is unknown)."""
        if amount != record.total:
            return Sale()
        goods = Sale()
        try:
            for jan, name, price, quantity, voided in json.loads(record.lines_json):
                product = self.catalog.lookup(str(jan))
                if product is None:
                    return Sale()
                if not voided:
                    goods.add(replace(product, name=str(name), price=int(price)), int(quantity))
        except (ValueError, TypeError, SaleError):
            return Sale()
        return goods if goods.total == amount else Sale()

    # -- devices -----------------------------------------------------------------------------------

    def show(self, upper: str, lower: str) -> None:
        self.display_lines = (fit_line(upper), fit_line(lower))
        try:
            self.display.show(upper, lower)
        except Exception:
            self.display_lines = (self.display_lines[0], "(display offline)")
        if self.on_display is not None:
            self.on_display(*self.display_lines)

    def _header(self, receipt_no: str, kind: str) -> dict[str, object]:
        clerk = self.clerk.name if self.clerk else ""
        return {
            "store_name": self.store_name,
            "terminal_id": self.terminal_id,
            "receipt_no": receipt_no,
            "clerk": clerk,
            "issued_at": self.clock(),
            "kind": kind,
        }

    def _print_receipt(self, receipt: Receipt) -> Completed:
        lines = render_receipt(receipt)
        printed, message = self._print(lines, receipt.receipt_no or None)
        self.last_receipt = Completed(receipt, lines, printed, message)
        return self.last_receipt

    def _print(self, lines: list[str], barcode: str | None) -> tuple[bool, str]:
        try:
            self.printer.print_receipt(lines, title_lines=1, barcode=barcode)
        except PrinterError as error:
            return False, f"Printer: {error}"
        return True, ""
