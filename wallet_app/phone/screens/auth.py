"""Sign up (e-mail, phone, password; the e-mail code arrives in the outbox), the authenticator set-up,
and signing this phone in (password + authenticator code), which enrolls it as a device."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Input, Static

from wallet_app.client import WalletError
from wallet_app.phone.cells import qr_cells
from wallet_app.phone.widgets import CellView

if TYPE_CHECKING:
    from wallet_app.phone.app import WalletApp


class _PhoneScreen(Screen[None]):
    @property
    def wallet(self) -> WalletApp:
        return cast("WalletApp", self.app)

    def say(self, text: str, error: bool = True) -> None:
        message = self.query_one("#message", Static)
        message.update(text)
        message.set_class(error, "error")


class WelcomeScreen(_PhoneScreen):
    def compose(self) -> ComposeResult:
        with Vertical(id="phone"):
            yield Static("possim wallet", classes="title")
            yield Static("\nPay at the register with a one-time code.\nCodes work offline.\n", classes="hint")
            yield Button("Sign up", id="signup", variant="primary")
            yield Button("Sign in on this phone", id="signin")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.app.push_screen(SignUpScreen() if event.button.id == "signup" else SignInScreen())


class SignUpScreen(_PhoneScreen):
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="phone"):
            yield Static("Sign up", classes="title")
            yield Input(placeholder="E-mail", id="email")
            yield Input(placeholder="Phone (+81...)", id="phone-number")
            yield Input(placeholder="Password (12+ characters)", password=True, id="password")
            yield Input(placeholder="Your name (optional)", id="name")
            yield Button("Create account", id="create", variant="primary")
            yield Static("", id="message")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        values = [self.query_one(f"#{name}", Input).value.strip() for name in ("email", "phone-number", "name")]
        password = self.query_one("#password", Input).value
        self.say("Creating…", error=False)
        self._create(values[0], values[1], password, values[2] or None)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _create(self, email: str, phone: str, password: str, name: str | None) -> None:
        try:
            made = self.wallet.client.sign_up(email, phone, password, name)
        except WalletError as error:
            self.app.call_from_thread(self.say, error.message)
            return
        self.app.call_from_thread(self.app.switch_screen, AuthenticatorScreen(email, made))


class AuthenticatorScreen(_PhoneScreen):
    """Shown once: the authenticator key (QR of the otpauth URI and the base32 text), then the e-mail code."""

    def __init__(self, email: str, made: dict[str, Any]) -> None:
        super().__init__()
        self.email, self.secret, self.uri = email, str(made.get("totp_secret", "")), str(made.get("totp_uri", ""))

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="phone"):
            yield Static("Second factor", classes="title")
            yield Static("Add this key to your authenticator app (shown once):", classes="hint")
            yield CellView(id="totp-qr")
            yield Static(self.secret, id="totp-secret")
            yield Static("\nWe sent a 6-digit code to your e-mail (possim outbox).", classes="hint")
            yield Input(placeholder="E-mail code", id="code", restrict=r"[0-9]*", max_length=6)
            yield Button("Verify e-mail", id="verify", variant="primary")
            yield Static("", id="message")

    def on_mount(self) -> None:
        try:
            self.query_one("#totp-qr", CellView).show(qr_cells(self.uri))
        except ValueError:  # a URI too long for QR version 3: the key text is there to type in
            self.query_one("#totp-qr", CellView).display = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self._verify(self.query_one("#code", Input).value.strip())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._verify(event.value.strip())

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _verify(self, code: str) -> None:
        try:
            self.wallet.client.verify_email(self.email, code)
        except WalletError as error:
            self.app.call_from_thread(self.say, error.message)
            return
        self.app.call_from_thread(self.app.switch_screen, SignInScreen(self.email))


class SignInScreen(_PhoneScreen):
    """Password and the authenticator's code: a new phone never signs in on a password alone."""

    def __init__(self, email: str = "") -> None:
        super().__init__()
        self.email = email

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="phone"):
            yield Static("Sign in on this phone", classes="title")
            yield Input(value=self.email, placeholder="E-mail", id="email")
            yield Input(placeholder="Password", password=True, id="password")
            yield Input(placeholder="Authenticator code", id="otp", restrict=r"[0-9]*", max_length=6)
            yield Input(value="my phone", placeholder="Name of this phone", id="device-name")
            yield Button("Sign in", id="signin", variant="primary")
            yield Static("", id="message")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        email, otp, name = (self.query_one(f"#{n}", Input).value.strip() for n in ("email", "otp", "device-name"))
        password = self.query_one("#password", Input).value
        self.query_one("#password", Input).value = ""
        self.say("Signing in…", error=False)
        self._enroll(email, password, otp, name or "my phone")

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _enroll(self, email: str, password: str, otp: str, name: str) -> None:
        try:
            state = self.wallet.client.enroll(email, password, otp, name)
        except WalletError as error:
            self.app.call_from_thread(self.say, error.message)
            return
        self.app.call_from_thread(self._enrolled, state)

    def _enrolled(self, state: object) -> None:
        from wallet_app.phone.screens.home import HomeScreen
        from wallet_app.state import WalletState

        assert isinstance(state, WalletState)
        self.wallet.use_state(state, save=True)
        while len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        self.app.push_screen(HomeScreen())
