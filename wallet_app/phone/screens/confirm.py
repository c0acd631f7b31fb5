"""The core asks the phone to approve a payment (amount, store): approve or deny."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from protocol import PaymentStatus, ProtocolError, format_yen
from wallet_app.phone.screens.base import phone_footer

if TYPE_CHECKING:
    from wallet_app.phone.app import WalletApp


class ConfirmDialog(ModalScreen[None]):
    CSS_PATH = "confirm.tcss"
    # Nothing focused: a stray Enter (from the previous screen, or a pocket) must not approve a payment;
    # approving is a deliberate `a` or a press on the button.
    AUTO_FOCUS = ""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "answer(True)", "Approve", id="confirm_approve"),
        Binding("d", "answer(False)", "Deny", id="confirm_deny"),
    ]

    def __init__(self, payment: dict[str, object]) -> None:
        super().__init__()
        self.payment = payment
        self.answered: str | None = None

    def compose(self) -> ComposeResult:
        amount = self.payment.get("amount")
        with Vertical():
            yield Static(
                "[b]Approve this payment?[/b]\n\n"
                f"{format_yen(amount) if isinstance(amount, int) else '?'}\nat {self.payment.get('store') or '?'}\n\n"
                "Only approve a payment you are making now.",
                id="confirm-text",
            )
            with Horizontal():
                yield Button("Approve", id="approve", variant="success")
                yield Button("Deny", id="deny", variant="error")
            yield Static("", id="confirm-message")
        yield phone_footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_answer(event.button.id == "approve")

    def action_answer(self, approve: bool) -> None:
        if self.answered is None:
            self.answered = "approve" if approve else "deny"
            self._send(approve)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _send(self, approve: bool) -> None:
        app = cast("WalletApp", self.app)
        state = app.state
        if state is None:
            return
        try:
            result = app.client.confirm(state, str(self.payment.get("id")), approve)
        except ProtocolError as error:
            self.app.call_from_thread(self._failed, error.message)
            return
        status = str(result.get("status"))
        self.app.call_from_thread(self._done, "Paid." if status == PaymentStatus.SUCCEEDED else f"Not paid ({status}).")

    def _failed(self, message: str) -> None:
        self.query_one("#confirm-message", Static).update(message)
        self.answered = None

    def _done(self, message: str) -> None:
        self.app.notify(message)
        self.dismiss(None)
