"""The Code 128 of the numeric form, across the screen (turn the phone sideways)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static

from protocol import PaymentCode
from wallet_app.phone.cells import code128_cells
from wallet_app.phone.screens.base import phone_footer
from wallet_app.phone.widgets import CellView
from wallet_app.render import group_digits


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
