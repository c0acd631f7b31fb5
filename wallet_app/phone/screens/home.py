"""The signed-in phone: Pay (the rotating code), History, Top up, Devices and Alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Input, Select, Static, TabbedContent, TabPane

from protocol import PaymentCode, epoch_seconds, format_yen
from protocol.payment_code import DEFAULT_TTL_SECONDS
from wallet_app.client import WalletError
from wallet_app.minter import CodesExhausted
from wallet_app.phone.cells import code128_cells, qr_cells
from wallet_app.phone.screens.base import phone_footer
from wallet_app.phone.widgets import CellView, ring
from wallet_app.render import group_digits

if TYPE_CHECKING:
    from wallet_app.phone.app import WalletApp

REFRESH_SECONDS = 30  # a new code well before the old one's 60 s are up
METHODS = [("Test card", "card"), ("Bank account", "bank"), ("Cash at a register", "cash")]

TOPUP_CODE_REFUSED = "The authenticator code is wrong or was used already: wait for the next one."


class HomeScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "new_code", "New code", id="new_code"),
        Binding("b", "barcode", "Barcode", id="barcode", tooltip="Show the Code 128 across the screen"),
    ]
    DEFAULT_CSS = """
    #pay-code { height: auto; }
    #digits { content-align: center middle; width: 100%; text-style: bold; }
    #countdown, #status { content-align: center middle; width: 100%; }
    #status.offline { color: $warning; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.code: PaymentCode | None = None

    @property
    def wallet(self) -> WalletApp:
        return cast("WalletApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="phone"):
            yield Static(self.wallet.state.wallet_name if self.wallet.state else "possim wallet", classes="title")
            with TabbedContent(initial="pay"):
                with TabPane("Pay", id="pay"), VerticalScroll():
                    yield CellView(id="pay-code")
                    yield Static("", id="digits")
                    yield Static("", id="countdown")
                    yield Static("", id="status")
                with TabPane("History", id="history"):
                    yield DataTable(id="history-table", cursor_type="row")
                with TabPane("Top up", id="topup"), VerticalScroll():
                    yield Select(METHODS, value="card", allow_blank=False, id="method")
                    yield Input(placeholder="Amount (yen)", id="amount", restrict=r"[0-9]*", max_length=7)
                    yield Input(placeholder="Card number / bank account", id="source")
                    yield Input(placeholder="Authenticator code (not your password)", id="otp", restrict=r"[0-9]*")
                    yield Button("Top up", id="do-topup", variant="primary")
                    yield Static("", id="topup-message")
                with TabPane("Devices", id="devices"), VerticalScroll():
                    yield DataTable(id="device-table", cursor_type="row")
                    yield Button("Revoke the selected phone", id="revoke")
                    yield Button("Sign out everywhere", id="everywhere", variant="error")
                    yield Static("", id="device-message")
                with TabPane("Alerts", id="alerts"):
                    yield DataTable(id="alert-table", cursor_type="row")
        yield phone_footer()

    def on_mount(self) -> None:
        self.query_one("#history-table", DataTable).add_columns("When", "What", "Amount", "Where")
        self.query_one("#device-table", DataTable).add_columns("Id", "Phone", "Status", "")
        self.query_one("#alert-table", DataTable).add_columns("When", "Alert")
        self.action_new_code()
        self.set_interval(1.0, self._tick, name="countdown")
        self.show_status()

    # -- the code ----------------------------------------------------------------------------------

    def action_new_code(self) -> None:
        minter = self.wallet.minter
        if minter is None:
            return
        try:
            self.code = minter.mint()
        except CodesExhausted:
            return  # ten this second already: the next tick brings one
        self.query_one("#pay-code", CellView).show(qr_cells(self.code.qr))
        self.query_one("#digits", Static).update(group_digits(self.code.numeric))
        self._tick()

    def seconds_left(self) -> int:
        if self.code is None:
            return 0
        return max(0, self.code.minted_at + DEFAULT_TTL_SECONDS - epoch_seconds(self.wallet.clock()))

    def _tick(self) -> None:
        left = self.seconds_left()
        if DEFAULT_TTL_SECONDS - left >= REFRESH_SECONDS or left <= 0:
            self.action_new_code()
            return
        self.query_one("#countdown", Static).update(f"{ring(left / DEFAULT_TTL_SECONDS)}  {left} s  (r: new code)")

    def action_barcode(self) -> None:
        if self.code is not None:
            self.app.push_screen(BarcodeScreen(self.code))

    def show_status(self) -> None:
        status = self.query_one("#status", Static)
        online, balance = self.wallet.online, self.wallet.balance
        if online is False:
            status.update("Offline: codes still work (minted on this phone)")
        else:
            status.update(f"Balance {format_yen(balance)}" if balance is not None else "Connecting…")
        status.set_class(online is False, "offline")

    # -- tabs ----------------------------------------------------------------------------------------

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        pane = event.pane.id
        if pane in ("history", "devices", "alerts"):
            self._load(pane or "")

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self, pane: str) -> None:
        app, state = self.wallet, self.wallet.state
        if state is None:
            return
        try:
            if pane == "history":
                rows = app.client.history(state)
            elif pane == "devices":
                rows = app.client.devices(state)
            else:
                rows = app.client.notifications(state)
        except WalletError as error:
            self.app.call_from_thread(self.app.notify, f"Offline: {error.message}", severity="warning")
            return
        self.app.call_from_thread(self._fill, pane, rows)

    def _fill(self, pane: str, rows: list[dict[str, Any]]) -> None:
        table = self.query_one(
            f"#{'history-table' if pane == 'history' else 'device-table' if pane == 'devices' else 'alert-table'}",
            DataTable,
        )
        table.clear()
        for row in rows:
            when = str(row.get("created") or row.get("enrolled_at") or "")[5:16].replace("T", " ")
            if pane == "history":
                amount = row.get("amount")
                sign = "-" if row.get("kind") == "payment" else "+"
                shown = f"{sign}{format_yen(amount)}" if isinstance(amount, int) else ""
                table.add_row(
                    when,
                    f"{row.get('kind')} {row.get('status') or ''}",
                    shown,
                    row.get("store") or row.get("source") or "",
                )
            elif pane == "devices":
                mark = "this phone" if row.get("this_device") else ""
                table.add_row(
                    str(row.get("id")), str(row.get("name")), str(row.get("status")), mark, key=str(row.get("id"))
                )
            else:
                table.add_row(when, str(row.get("message")))

    # -- top up, devices ---------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "do-topup":
            self._start_topup()
        elif event.button.id == "revoke":
            table = self.query_one("#device-table", DataTable)
            if table.row_count:
                key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
                self._devices("revoke", int(key or 0))
        elif event.button.id == "everywhere":
            self._devices("everywhere", 0)

    def _start_topup(self) -> None:
        method = str(self.query_one("#method", Select).value)
        amount_text = self.query_one("#amount", Input).value
        source, otp = self.query_one("#source", Input).value.strip(), self.query_one("#otp", Input).value.strip()
        message = self.query_one("#topup-message", Static)
        if method == "cash":
            message.update("Show the Pay code at a register and hand over the cash.")
            self.query_one(TabbedContent).active = "pay"
            return
        if not amount_text.isdigit() or not otp:
            message.update("Enter an amount and your authenticator code.")
            return
        message.update("Topping up…")
        self._topup(method, int(amount_text), source, otp)

    @work(thread=True, exclusive=True, group="topup", exit_on_error=False)
    def _topup(self, method: str, amount: int, source: str, otp: str) -> None:
        app, state = self.wallet, self.wallet.state
        if state is None:
            return
        try:
            if method == "card":
                app.client.topup_card(state, amount, source, otp)
            else:
                app.client.topup_bank(state, amount, source, otp)
        except WalletError as error:
            text = TOPUP_CODE_REFUSED if error.code == "credentials_invalid" else error.message
            self.app.call_from_thread(self.query_one("#topup-message", Static).update, text)
            return
        self.app.call_from_thread(self.query_one("#topup-message", Static).update, f"Topped up {format_yen(amount)}.")
        app.poll()

    @work(thread=True, exclusive=True, group="devices", exit_on_error=False)
    def _devices(self, what: str, device_id: int) -> None:
        app, state = self.wallet, self.wallet.state
        if state is None:
            return
        try:
            if what == "revoke":
                app.client.revoke_device(state, device_id)
            else:
                app.client.sign_out_everywhere(state)
        except WalletError as error:
            self.app.call_from_thread(self.query_one("#device-message", Static).update, error.message)
            return
        if what == "everywhere" or device_id == state.device_id:
            self.app.call_from_thread(self._signed_out)
        else:
            self.app.call_from_thread(self._load, "devices")

    def _signed_out(self) -> None:
        from wallet_app.phone.screens.auth import WelcomeScreen

        self.wallet.forget_device()
        self.app.switch_screen(WelcomeScreen())


class BarcodeScreen(Screen[None]):
    """The Code 128 of the numeric form, across the screen (turn the phone sideways)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,b", "dismiss_barcode", "Back", id="barcode_back")]

    def __init__(self, code: PaymentCode) -> None:
        super().__init__()
        self.code = code

    def compose(self) -> ComposeResult:
        yield CellView(id="barcode")
        yield Static(group_digits(self.code.numeric), id="barcode-digits")
        yield phone_footer()

    def on_mount(self) -> None:
        self.query_one("#barcode", CellView).show(code128_cells(self.code.numeric, height=6))

    def action_dismiss_barcode(self) -> None:
        self.dismiss(None)
