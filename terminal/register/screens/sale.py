"""The sale screen: ring up items (camera, wedge scanner or keyboard), see totals and tax, take payment."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from protocol import ScanKind, Symbology, format_yen
from terminal.register.entry import ScanEntry
from terminal.register.header import StoreHeader
from terminal.register.screens.dialogs import AgeCheckDialog, NumberDialog, cash_question
from terminal.register.screens.payment import PaymentScreen
from terminal.register.screens.pending import PendingScreen
from terminal.register.screens.receipt import ReceiptScreen
from terminal.register.viewfinder import Viewfinder
from terminal.sale import MAX_QUANTITY, SaleError
from terminal.till import Completed, PaymentAttempt, TillError

if TYPE_CHECKING:
    from terminal.register.app import RegisterApp

RATE_LABELS = {10: "10%対象", 8: "8%対象※", 0: "非課税"}


class SaleScreen(Screen[None]):
    CSS_PATH = "sale.tcss"
    pending = 0  # wallet payments still pending at the core (F9 shows while there are any)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "pay_wallet", "Wallet pay", id="pay_wallet", tooltip="Take the total from a wallet code"),
        Binding("f3", "pay_cash", "Cash", id="pay_cash"),
        Binding("f4", "quantity", "Qty", id="quantity", tooltip="Quantity of the selected line"),
        Binding("f5", "void_line", "Void line", id="void_line"),
        Binding("f6", "void_sale", "Void sale", id="void_sale"),
        Binding("f7", "refund", "Refund", id="refund"),
        Binding("f8", "report", "Shift", id="report"),
        Binding("f9", "pending", "Unfinished", id="pending", tooltip="Check unfinished wallet payments again"),
        Binding("up", "cursor(-1)", "", show=False, id="cursor_up"),
        Binding("down", "cursor(1)", "", show=False, id="cursor_down"),
    ]

    def compose(self) -> ComposeResult:
        yield StoreHeader(show_clock=self.register.options.show_clock)
        with Horizontal(id="sale-main"):
            with Vertical(id="sale-left"):
                yield DataTable(id="lines", cursor_type="row", zebra_stripes=True)
                yield ScanEntry("Scan or type a JAN / payment code  (3*JAN = quantity 3)", id="entry")
                yield Static("", id="sale-message")
            with Vertical(id="sale-right"):
                yield Static("", id="totals")
                yield Static("", id="pole")
                with Vertical(id="camera-box"):
                    yield Viewfinder(id="viewfinder")
                    yield Static("", id="camera-status")
        yield Footer()

    @property
    def register(self) -> RegisterApp:
        return cast("RegisterApp", self.app)

    def on_mount(self) -> None:
        till = self.register.till
        self.title = till.store_name
        self.sub_title = f"レジ {till.terminal_id}  担当 {till.clerk.name if till.clerk else '-'}"
        table = self.query_one("#lines", DataTable)
        table.add_columns("#", "品名 Item", "単価", "数", "金額")
        self.query_one("#camera-status", Static).update(self.register.status_line())
        self.query_one("#pole", Static).update("\n".join(till.display_lines))
        if self.register.last_preview is not None:
            self.query_one(Viewfinder).show(self.register.last_preview)
        self.refresh_sale()
        self.query_one("#entry", Input).focus()
        self._count_pending()

    def on_screen_resume(self) -> None:
        self.query_one("#pole", Static).update("\n".join(self.register.till.display_lines))
        self.refresh_sale()
        self.query_one("#entry", Input).focus()
        self._count_pending()

    def _count_pending(self) -> None:
        """Show F9 while wallet payments are still pending at the core, and say so when their number changes."""
        previous, self.pending = self.pending, self.register.till.pending_count()
        self.refresh_bindings()
        if self.pending and self.pending != previous:
            self.register.notify(
                f"{self.pending} wallet payment{'s are' if self.pending > 1 else ' is'} still pending at the payment "
                "service: F9 checks again (the shift cannot close until settled).",
                severity="warning",
                timeout=10,
            )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pending":
            return self.pending > 0
        return True

    def action_pending(self) -> None:
        if self.pending:
            self.app.push_screen(PendingScreen())

    # -- input -------------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.value = ""
        if text:
            self.handle_scan(text, Symbology.KEYED, "wedge" if self.register.options.wedge else "keyboard")

    def handle_scan(self, text: str, symbology: Symbology, source: str) -> None:
        quantity = 1
        if "*" in text:
            count, _, text = text.partition("*")
            if not count.isdigit() or not 1 <= int(count) <= MAX_QUANTITY:
                self.say(f"Quantity must be 1-{MAX_QUANTITY}: type it as 3*JAN.", error=True)
                return
            quantity = int(count)
        outcome = self.register.till.scan(text, quantity)
        if outcome.kind == ScanKind.PAYMENT:
            self.say("That is a payment code: press F2 (wallet pay) first, then show it.", error=True)
            return
        self.say(outcome.message, error=outcome.kind != ScanKind.PRODUCT)
        self.refresh_sale(select=outcome.line_index)
        if outcome.product is not None and outcome.product.age_restricted and not self.register.till.sale.age_confirmed:
            self.app.push_screen(AgeCheckDialog(outcome.product.name), self._age_answered)

    def _age_answered(self, yes: bool | None) -> None:
        sale = self.register.till.sale
        if yes:
            sale.age_confirmed = True
            self.say("年齢確認済み Age confirmed.")
        else:
            for index, line in enumerate(sale.lines):
                if line.product.age_restricted and not line.voided:
                    sale.void_line(index)
            self.say("年齢確認できません: age-restricted items removed.", error=True)
        self.register.till.refresh_display()
        self.refresh_sale()

    # -- actions -----------------------------------------------------------------------------------

    def action_cursor(self, step: int) -> None:
        table = self.query_one("#lines", DataTable)
        if table.row_count:
            table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + step)))

    def action_quantity(self) -> None:
        index = self._selected()
        if index is None:
            return
        line = self.register.till.sale.lines[index]
        question = f"[b]数量  Quantity[/b]\n\n{line.product.name}  (now {line.quantity})"

        if line.voided:
            self.say("That line is voided (取消): ring the item up again instead.", error=True)
            return

        def done(quantity: int | None) -> None:
            if quantity is None:
                return
            try:
                self.register.till.sale.set_quantity(index, quantity)
            except SaleError as error:
                self.say(str(error), error=True)
                return
            self.register.till.refresh_display()
            self.refresh_sale()

        self.app.push_screen(NumberDialog(question, minimum=1, maximum=MAX_QUANTITY, default=line.quantity), done)

    def action_void_line(self) -> None:
        index = self._selected()
        if index is None:
            return
        try:
            self.register.till.sale.void_line(index)
        except SaleError as error:
            self.say(str(error), error=True)
            return
        self.register.till.refresh_display()
        self.say(f"Line {index + 1} voided (取消).")
        self.refresh_sale()

    def action_void_sale(self) -> None:
        if self.register.till.sale.is_empty:
            return
        self.register.till.void_sale()
        self.say("Sale voided: nothing was charged.")
        self.refresh_sale()

    def action_pay_wallet(self) -> None:
        attempt = self._start_payment()
        if attempt is not None:
            self.app.push_screen(PaymentScreen(attempt), self._paid)

    def action_pay_cash(self) -> None:
        attempt = self._start_payment()
        if attempt is None:
            return

        def tendered(amount: int | None) -> None:
            if amount is None:
                self.register.till.refresh_display()
                self.say("Cash payment cancelled.")
                return
            try:
                completed = self.register.till.finish_cash(attempt, amount)
            except TillError as error:
                self.say(str(error), error=True)
                return
            except Exception as error:
                self.say(f"Could not record the cash sale ({type(error).__name__}: {error}); try again.", error=True)
                return
            self._paid(completed)

        dialog = NumberDialog(
            cash_question(attempt.amount), minimum=attempt.amount, maximum=10_000_000, default=attempt.amount
        )
        self.app.push_screen(dialog, tendered)

    def action_refund(self) -> None:
        self.app.push_screen(self.register.fresh("refund"))

    def action_report(self) -> None:
        self.app.push_screen(self.register.fresh("shift"))

    def _start_payment(self) -> PaymentAttempt | None:
        try:
            return self.register.till.start_payment()
        except TillError as error:
            self.say(str(error), error=True)
            return None

    def _paid(self, completed: Completed | None) -> None:
        self.refresh_sale()
        if completed is not None:
            self.app.push_screen(ReceiptScreen(completed))

    # -- drawing -----------------------------------------------------------------------------------

    def _selected(self) -> int | None:
        table = self.query_one("#lines", DataTable)
        if not table.row_count:
            self.say("No line selected.", error=True)
            return None
        return table.cursor_row

    def say(self, text: str, error: bool = False) -> None:
        message = self.query_one("#sale-message", Static)
        message.update(text)
        message.set_class(error, "error")

    def refresh_sale(self, select: int | None = None) -> None:
        """Redraw the lines and totals; the cursor stays on its line, or moves to ``select`` (a new scan)."""
        sale = self.register.till.sale
        table = self.query_one("#lines", DataTable)
        cursor = table.cursor_row if select is None else select
        table.clear()
        for number, line in enumerate(sale.lines, start=1):
            mark = "※" if line.product.tax_rate == 8 else ""
            name = f"[strike]{line.product.name}[/strike] 取消" if line.voided else f"{line.product.name}{mark}"
            table.add_row(
                str(number), name, format_yen(line.product.price), str(line.quantity), format_yen(line.amount)
            )
        if table.row_count:
            table.move_cursor(row=min(max(cursor, 0), table.row_count - 1))
        rows = [f"[b]合計  Total   {format_yen(sale.total):>12}[/b]", f"点数  Items   {sale.item_count:>12}"]
        for bucket in sale.tax_breakdown():
            label = RATE_LABELS.get(bucket.rate, f"{bucket.rate}%")
            tax = f" 内税 {format_yen(bucket.tax)}" if bucket.rate else ""
            rows.append(f"({label} {format_yen(bucket.taxable)}{tax})")
        rows.append("[dim]端数処理: 税率ごとに切捨て (tax rounded down per rate)[/dim]")
        if sale.needs_age_check:
            rows.append("年齢確認 " + ("済 confirmed" if sale.age_confirmed else "[b red]要 needed[/b red]"))
        self.query_one("#totals", Static).update("\n".join(rows))
