"""The shift report (X while open) and closing the shift (Z-report printed, clerk signed out)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center
from textual.screen import Screen
from textual.widgets import Footer, Static

from terminal.register.header import StoreHeader
from terminal.register.screens.receipt import ReceiptScreen

if TYPE_CHECKING:
    from terminal.register.app import RegisterApp


class ShiftScreen(Screen[None]):
    CSS_PATH = "shift.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="shift_back"),
        Binding("f9", "close_shift", "Close shift", id="close_shift", tooltip="Print the Z-report and sign out"),
    ]

    @property
    def register(self) -> RegisterApp:
        return cast("RegisterApp", self.app)

    def compose(self) -> ComposeResult:
        yield StoreHeader(show_clock=self.register.options.show_clock)
        with Center():
            yield Static("\n".join(self.register.till.shift_report().lines()), id="report")
        yield Static("", id="shift-message")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "X-report (shift open)"

    def action_back(self) -> None:
        self.dismiss(None)

    def action_close_shift(self) -> None:
        try:
            printed = self.register.till.close_shift()
        except Exception as error:
            self.query_one("#shift-message", Static).update(str(error))
            return
        app = self.app
        while len(app.screen_stack) > 1:
            app.pop_screen()
        app.push_screen(self.register.fresh("signin"))
        app.push_screen(ReceiptScreen(printed))
