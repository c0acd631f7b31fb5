"""Refund or void a past sale by receipt number, through the core for wallet sales."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from protocol import format_yen
from terminal.receipt import store_time
from terminal.register.header import StoreHeader
from terminal.register.screens.receipt import ReceiptScreen
from terminal.register_store import RegisterStoreError, format_receipt_no
from terminal.till import Completed, TillError

if TYPE_CHECKING:
    from terminal.register.app import RegisterApp


class RefundScreen(Screen[None]):
    CSS_PATH = "refund.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="refund_back"),
        Binding("f2", "refund_amount", "Refund", id="refund_do", tooltip="Refund the amount (blank: all left)"),
        Binding("f4", "void_receipt", "Void sale", id="refund_void", tooltip="Cancel the whole sale (reverse)"),
    ]

    busy = False  # a refund or void is in flight: the keys wait for it

    @property
    def register(self) -> RegisterApp:
        return cast("RegisterApp", self.app)

    def compose(self) -> ComposeResult:
        yield StoreHeader(show_clock=self.register.options.show_clock)
        yield DataTable(id="recent", cursor_type="row")
        with Vertical(id="refund-form"):
            example = format_receipt_no(self.register.till.store.terminal_id, 12)
            yield Input(placeholder=f"Receipt number (e.g. {example})", id="refund-receipt")
            yield Input(placeholder="Amount in yen (blank = everything left)", id="refund-amount", restrict=r"[0-9]*")
        yield Static("", id="refund-message")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "返品・取消  Refund / void"
        table = self.query_one("#recent", DataTable)
        table.add_columns("Receipt", "Time", "Total", "Tender", "Refunded", "Status")
        self._fill()
        self.query_one("#refund-receipt", Input).focus()

    def _fill(self) -> None:
        table = self.query_one("#recent", DataTable)
        table.clear()
        for sale in self.register.till.store.journal.recent_sales(20):
            when = store_time(sale.created_at).strftime("%m/%d %H:%M")  # the store's time, as on the receipt
            table.add_row(
                sale.receipt_no,
                when,
                format_yen(sale.total),
                sale.tender,
                format_yen(sale.refunded),
                sale.status,
                key=sale.receipt_no,
            )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.query_one("#refund-receipt", Input).value = event.row_key.value
            self.query_one("#refund-amount", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "refund-receipt":
            self._describe(event.value)
            self.query_one("#refund-amount", Input).focus()
        else:
            self.action_refund_amount()

    def _describe(self, receipt_no: str) -> None:
        try:
            sale = self.register.till.find_sale(receipt_no)
            left = self.register.till.store.journal.refundable(sale.receipt_no)
        except (TillError, RegisterStoreError) as error:
            self.say(str(error), error=True)
            return
        self.say(f"{sale.receipt_no}: {format_yen(sale.total)} by {sale.tender}, {format_yen(left)} left to refund.")

    def action_back(self) -> None:
        self.dismiss(None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("refund_amount", "void_receipt", "back"):
            return not self.busy
        return True

    def action_refund_amount(self) -> None:
        amount_text = self.query_one("#refund-amount", Input).value.strip()
        self._start("refund", "Refunding…", int(amount_text) if amount_text else None)

    def action_void_receipt(self) -> None:
        self._start("void", "Voiding…", None)

    def _start(self, kind: str, doing: str, amount: int | None) -> None:
        if self.busy:  # a second press while the first is in flight does nothing
            return
        receipt_no = self.query_one("#refund-receipt", Input).value.strip()
        if not receipt_no:
            self.say("Type or pick a receipt number.", error=True)
            return
        self.say(doing)
        self._set_busy(True)
        self._run(kind, receipt_no, amount)

    @work(thread=True, exclusive=True, group="refund", exit_on_error=False)
    def _run(self, kind: str, receipt_no: str, amount: int | None) -> None:
        till = self.register.till
        try:
            done = till.refund(receipt_no, amount) if kind == "refund" else till.void(receipt_no)
        except (TillError, RegisterStoreError) as error:
            self.app.call_from_thread(self._failed, str(error))
            return
        except Exception as error:
            self.app.call_from_thread(self._failed, f"{type(error).__name__}: {error}"[:200])
            return
        self.app.call_from_thread(self._done, done)

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.refresh_bindings()

    def _failed(self, message: str) -> None:
        self._set_busy(False)
        self.say(message, error=True)

    def _done(self, completed: Completed) -> None:
        self._set_busy(False)
        self._fill()
        self.query_one("#refund-amount", Input).value = ""
        self.say("Done: the refund receipt is printed.")
        self.app.push_screen(ReceiptScreen(completed), self._receipt_taken)

    def _receipt_taken(self, _result: None) -> None:
        """ "Next customer" on the refund's receipt: the refund is done, back to the sale screen."""
        self.dismiss(None)

    def say(self, text: str, error: bool = False) -> None:
        message = self.query_one("#refund-message", Static)
        message.update(text)
        message.set_class(error, "error")
