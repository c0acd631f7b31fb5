"""Forgot password: the reset code goes only to the account's registered address (the form takes nothing
else), and setting the new password signs every device out, this one included."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Input, Static

from wallet_app.client import WalletError

if TYPE_CHECKING:
    from wallet_app.phone.app import WalletApp


class ResetScreen(Screen[None]):
    def __init__(self, email: str = "") -> None:
        super().__init__()
        self.email = email

    @property
    def wallet(self) -> WalletApp:
        return cast("WalletApp", self.app)

    def say(self, text: str, error: bool = True) -> None:
        message = self.query_one("#message", Static)
        message.update(text)
        message.set_class(error, "error")

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="phone"):
            yield Static("Reset your password", classes="title")
            yield Input(value=self.email, placeholder="E-mail of the account", id="email")
            yield Button("Send reset code", id="send")
            yield Static("\nThen enter the code from the mail and a new password:", classes="hint")
            yield Input(placeholder="Reset code", id="token")
            yield Input(placeholder="New password (12+ characters)", password=True, id="new-password")
            yield Input(placeholder="New password again", password=True, id="repeat")
            yield Button("Set password", id="set", variant="primary")
            yield Button("Back", id="back")
            yield Static("", id="message")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "back":
            self.app.pop_screen()
        elif event.button.id == "send":
            self.say("Sending…", error=False)
            self._send(self.query_one("#email", Input).value.strip())
        else:
            new, repeat = (self.query_one(f"#{name}", Input).value for name in ("new-password", "repeat"))
            if new != repeat:
                self.say("The two new passwords differ.")
                return
            self.say("Setting…", error=False)
            self._set(self.query_one("#token", Input).value.strip(), new)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _send(self, email: str) -> None:
        try:
            message = self.wallet.client.request_password_reset(email)
        except WalletError as error:
            self.app.call_from_thread(self.say, error.message)
            return
        self.app.call_from_thread(self.say, message, False)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _set(self, token: str, new_password: str) -> None:
        try:
            done = self.wallet.client.reset_password(token, new_password)
        except WalletError as error:
            self.app.call_from_thread(self.say, error.message)
            return
        self.app.call_from_thread(self._done, str(done.get("email", "")))

    def _done(self, email: str) -> None:
        from wallet_app.phone.screens.auth import SignInScreen

        self.wallet.forget_device()
        self.app.switch_screen(SignInScreen(email))
        self.app.notify("Password changed; every device was signed out. Sign in with the new password.")
