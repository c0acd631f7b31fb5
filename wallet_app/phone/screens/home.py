"""The signed-in phone: its tabs (``wallet_app.phone.tabs``), one widget each: Pay (the rotating code),
History, Top up, Devices and Alerts.

The screen composes them and routes to them what happens outside: the app's online status and balance (the
screen's reactives, bound into the Pay tab), a tab being opened (History, Devices and Alerts fetch their rows),
and the keys (``r`` and ``b`` work from every tab: they are the Pay tab's actions). The tabs tell it, by
message, when the phone signed itself out and when cash is to be paid in at a register."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Static, TabbedContent

from protocol import PaymentCode
from wallet_app.phone.screens.barcode import BarcodeScreen
from wallet_app.phone.screens.base import phone_footer
from wallet_app.phone.tabs import AlertsTab, DevicesTab, HistoryTab, PayTab, RowsTab, TopUpTab

if TYPE_CHECKING:
    from wallet_app.phone.app import WalletApp

__all__ = ["BarcodeScreen", "HomeScreen"]


class HomeScreen(Screen[None]):
    CSS_PATH = "home.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "new_code", "New code", id="new_code"),
        Binding("b", "barcode", "Barcode", id="barcode", tooltip="Show the Code 128 across the screen"),
    ]

    online: reactive[bool | None] = reactive(None, init=False)
    balance: reactive[int | None] = reactive(None, init=False)

    @property
    def wallet(self) -> WalletApp:
        return cast("WalletApp", self.app)

    @property
    def code(self) -> PaymentCode | None:
        """The code on the Pay tab."""
        pay = self.query(PayTab)
        return pay.first().code if pay else None

    def compose(self) -> ComposeResult:
        self.show_status()
        with Vertical(id="phone"):
            yield Static(self.wallet.state.wallet_name if self.wallet.state else "possim wallet", classes="title")
            with TabbedContent(initial="pay"):
                yield PayTab().data_bind(HomeScreen.online, HomeScreen.balance)
                yield HistoryTab()
                yield TopUpTab()
                yield DevicesTab()
                yield AlertsTab()
        yield phone_footer()

    def show_status(self) -> None:
        """The app's online status and balance changed (or may have): the Pay tab shows them."""
        self.online, self.balance = self.wallet.online, self.wallet.balance

    def action_new_code(self) -> None:
        self.query_one(PayTab).action_new_code()

    def action_barcode(self) -> None:
        self.query_one(PayTab).action_barcode()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if isinstance(event.pane, RowsTab):
            event.pane.load()

    @on(TopUpTab.PayAtRegister)
    def show_pay(self) -> None:
        self.query_one(TabbedContent).active = "pay"

    @on(DevicesTab.SignedOut)
    def signed_out(self) -> None:
        from wallet_app.phone.screens.auth import WelcomeScreen

        self.wallet.forget_device()
        self.app.switch_screen(WelcomeScreen())
