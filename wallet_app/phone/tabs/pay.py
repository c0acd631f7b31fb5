"""Pay: the rotating one-time code (QR and digits, minted on the phone), its countdown, and the balance or
the offline notice. A new code comes every 30 s (well before the old one's 60 s are up) or on demand."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from protocol import PaymentCode, epoch_seconds, format_yen
from protocol.payment_code import DEFAULT_TTL_SECONDS
from wallet_app.minter import CodesExhausted
from wallet_app.phone.cells import qr_cells
from wallet_app.phone.screens.barcode import BarcodeScreen
from wallet_app.phone.tabs.base import WalletTab
from wallet_app.phone.widgets import CellView, ring
from wallet_app.render import group_digits

REFRESH_SECONDS = 30  # a new code well before the old one's 60 s are up


class PayTab(WalletTab):
    """``online`` and ``balance`` are the app's, bound from the home screen (``data_bind``)."""

    TAB_TITLE, TAB_ID = "Pay", "pay"

    online: reactive[bool | None] = reactive(None, init=False)
    balance: reactive[int | None] = reactive(None, init=False)

    def __init__(self) -> None:
        super().__init__()
        self.code: PaymentCode | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield CellView(id="pay-code")
            yield Static("", id="digits")
            yield Static("", id="countdown")
            yield Static("", id="status")

    def on_mount(self) -> None:
        self.action_new_code()
        self.set_interval(1.0, self._tick, name="countdown")
        self.show_status()

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

    def action_barcode(self) -> None:
        if self.code is not None:
            self.app.push_screen(BarcodeScreen(self.code))

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

    def watch_online(self) -> None:
        self.show_status()

    def watch_balance(self) -> None:
        self.show_status()

    def show_status(self) -> None:
        status = self.query_one("#status", Static)
        online, balance = self.online, self.balance
        if online is False:
            status.update("Offline: codes still work (minted on this phone)")
        else:
            status.update(f"Balance {format_yen(balance)}" if balance is not None else "Connecting…")
        status.set_class(online is False, "offline")
