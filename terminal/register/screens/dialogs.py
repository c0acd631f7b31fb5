"""Small modal questions: age check, quantity, cash tendered, yes/no."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from protocol import format_yen


class AgeCheckDialog(ModalScreen[bool]):
    """年齢確認: the customer confirms being 20 or over (alcohol, tobacco)."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes, 20 or over", id="age_yes", priority=True),
        Binding("n,escape", "answer(False)", "No", id="age_no", priority=True),
    ]

    def __init__(self, product_name: str) -> None:
        super().__init__()
        self.product_name = product_name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                f"[b]年齢確認  Age check[/b]\n\n{self.product_name}\n\n"
                "お客様は20歳以上ですか？  Is the customer 20 or over?\n"
                "[b]Y[/b] はい Yes    [b]N[/b] いいえ No (the item is removed)",
                classes="question",
            )

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class NumberDialog(ModalScreen[int | None]):
    """Asks for a whole number (a quantity, yen tendered); Escape cancels."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="number_cancel")]

    def __init__(self, question: str, *, minimum: int, maximum: int, default: int | None = None) -> None:
        super().__init__()
        self.question, self.minimum, self.maximum, self.default = question, minimum, maximum, default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, classes="question")
            yield Input(
                value="" if self.default is None else str(self.default), restrict=r"[0-9]*", max_length=9, id="number"
            )
            yield Static("", classes="error", id="number-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text.isdigit() or not self.minimum <= int(text) <= self.maximum:
            low, high = self.minimum, self.maximum
            self.query_one("#number-error", Static).update(f"Enter a whole number from {low:,} to {high:,}.")
            return
        self.dismiss(int(text))

    def action_cancel(self) -> None:
        self.dismiss(None)


def cash_question(due: int) -> str:
    return f"[b]現金  Cash[/b]\n\nお支払い Due  {format_yen(due)}\nお預り Amount tendered (yen), Enter:"
