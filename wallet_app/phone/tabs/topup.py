"""Top up: from a test card or a bank account (with the authenticator's code), or cash at a register (the Pay
code is shown for it)."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Select, Static

from protocol import ErrorCode, ProtocolError, format_yen
from wallet_app.phone.tabs.base import WalletTab

METHODS = [("Test card", "card"), ("Bank account", "bank"), ("Cash at a register", "cash")]
TOPUP_CODE_REFUSED = "The authenticator code is wrong or was used already: wait for the next one."


class TopUpTab(WalletTab):
    TAB_TITLE, TAB_ID = "Top up", "topup"

    class PayAtRegister(Message):
        """Cash is topped up at a register, by showing the Pay code: the home screen opens the Pay tab."""

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Select(METHODS, value="card", allow_blank=False, id="method")
            yield Input(placeholder="Amount (yen)", id="amount", restrict=r"[0-9]*", max_length=7)
            yield Input(placeholder="Card number / bank account", id="source")
            yield Input(placeholder="Authenticator code (not your password)", id="otp", restrict=r"[0-9]*")
            yield Button("Top up", id="do-topup", variant="primary")
            yield Static("", id="topup-message")

    def say(self, text: str) -> None:
        self.query_one("#topup-message", Static).update(text)

    @on(Button.Pressed, "#do-topup")
    def start(self, event: Button.Pressed) -> None:
        event.stop()
        method = str(self.query_one("#method", Select).value)
        amount_text = self.query_one("#amount", Input).value
        source, otp = self.query_one("#source", Input).value.strip(), self.query_one("#otp", Input).value.strip()
        if method == "cash":
            self.say("Show the Pay code at a register and hand over the cash.")
            self.post_message(self.PayAtRegister())
            return
        if not amount_text.isdigit() or not otp:
            self.say("Enter an amount and your authenticator code.")
            return
        self.say("Topping up…")
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
        except ProtocolError as error:
            text = TOPUP_CODE_REFUSED if error.code is ErrorCode.CREDENTIALS_INVALID else error.message
            self.app.call_from_thread(self.say, text)
            return
        self.app.call_from_thread(self.say, f"Topped up {format_yen(amount)}.")
        app.poll()
