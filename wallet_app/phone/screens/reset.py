"""Forgot password: the reset code goes only to the account's registered address (the form takes nothing
else), and setting the new password signs every device out, this one included: its saved key is dropped.
The screen is dismissed with the account's e-mail once the password is set (None on Back), and the sign-in
screen under it says so.

Enter in the e-mail field sends the code and moves on to the code field; Enter in the last field sets the
password; Esc goes back to the sign-in form."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.widgets import Button, Input, Static

from protocol import ProtocolError
from wallet_app.phone.screens.base import Field, PhoneScreen, SubmitField, back_binding, phone_footer


class ResetScreen(PhoneScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [back_binding("reset")]

    def __init__(self, email: str = "") -> None:
        super().__init__()
        self.email = email

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="phone"):
            yield Static("Reset your password", classes="title")
            yield SubmitField(submits="send", value=self.email, placeholder="E-mail of the account", id="email")
            yield Button("Send reset code", id="send")
            yield Static("\nThen enter the code from the mail and a new password:", classes="hint")
            yield Field(placeholder="Reset code", id="token")
            yield Field(placeholder="New password (12+ characters)", password=True, id="new-password")
            yield SubmitField(submits="set", placeholder="New password again", password=True, id="repeat")
            yield Button("Set password", id="set", variant="primary")
            yield Static("", id="message")
            yield Button("Back", id="back")
        yield phone_footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "back":
            self.action_back()
        elif event.button.id == "send":
            self.say("Sending…", error=False)
            self._send(self.query_one("#email", Input).value.strip())
        else:
            new, repeat = (self.query_one(f"#{name}", Input).value for name in ("new-password", "repeat"))
            if new != repeat:
                self.say("The two new passwords differ.")
                return
            if not self.query_one("#token", Input).value.strip():
                self.say("Enter the reset code from the mail.")
                return
            self.say("Setting…", error=False)
            self._set(self.query_one("#token", Input).value.strip(), new)

    @work(thread=True, exclusive=True, group="send", exit_on_error=False)
    def _send(self, email: str) -> None:
        try:
            message = self.wallet.client.request_password_reset(email)
        except ProtocolError as error:
            self.app.call_from_thread(self.say, error.message)
            return
        self.app.call_from_thread(self.say, message, False)

    @work(thread=True, exclusive=True, group="set", exit_on_error=False)
    def _set(self, token: str, new_password: str) -> None:
        try:
            done = self.wallet.client.reset_password(token, new_password)
        except ProtocolError as error:
            self.app.call_from_thread(self.say, error.message)
            return
        self.app.call_from_thread(self._done, str(done.get("email") or ""))

    def _done(self, email: str) -> None:
        email = email or self.query_one("#email", Input).value.strip()
        self.wallet.discard_account(email)  # the reset revoked every device of the account
        if self.app.screen is self:  # not gone back meanwhile
            self.dismiss(email)
