"""The receipt as printed, on paper-white, with where it went."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from terminal.register.header import StoreHeader
from terminal.till import Completed

if TYPE_CHECKING:
    from terminal.register.app import RegisterApp


class ReceiptScreen(Screen[None]):
    CSS_PATH = "receipt.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,escape", "next_customer", "Next customer", id="receipt_done"),
    ]

    def __init__(self, completed: Completed) -> None:
        super().__init__()
        self.completed = completed

    @property
    def register(self) -> RegisterApp:
        return cast("RegisterApp", self.app)

    def compose(self) -> ComposeResult:
        yield StoreHeader(show_clock=self.register.options.show_clock)
        with VerticalScroll(), Center():
            yield Static("\n".join(self.completed.lines), id="paper", markup=False)
        options = self.register.options
        where = options.receipt_label or Path(options.receipt_path).name or "the printer"
        text = f"Printed to {where}" if self.completed.printed else f"Not printed: {self.completed.printer_message}"
        yield Static(text, id="printed", classes="" if self.completed.printed else "error")
        yield Footer()

    def on_mount(self) -> None:
        receipt = self.completed.receipt
        self.sub_title = f"Receipt {receipt.receipt_no}" if receipt else "Report"

    def action_next_customer(self) -> None:
        self.register.till.refresh_display()
        self.dismiss(None)
