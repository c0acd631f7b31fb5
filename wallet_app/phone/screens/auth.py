"""Sign up (e-mail, phone, password), the e-mail code from the outbox, the authenticator set-up and the
recovery codes (shown once, after the code), and signing this phone in (password + authenticator code or
a recovery code), which enrolls it as a device. "Forgot password?" is in ``screens.reset``."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Button, Input, Static

from wallet_app.client import WalletError
from wallet_app.phone.cells import qr_cells
from wallet_app.phone.screens.base import PhoneScreen
from wallet_app.phone.widgets import CellView
from wallet_app.state import WalletState

TOTP_QR_MAX_VERSION = 6  # 41 modules + the quiet zone: fits the wide phone screen (58 columns)


class WelcomeScreen(PhoneScreen[None]):
    def compose(self) -> ComposeResult:
        with Vertical(id="phone"):
            yield Static("possim wallet", classes="title")
            yield Static("\nPay at the register with a one-time code.\nCodes work offline.\n", classes="hint")
            yield Button("Sign up", id="signup", variant="primary")
            yield Button("Sign in on this phone", id="signin")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.app.push_screen(SignUpScreen() if event.button.id == "signup" else SignInScreen())


class SignUpScreen(PhoneScreen[None]):
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
            answer = self.wallet.client.sign_up(email, phone, password, name)
        except WalletError as error:
            self.app.call_from_thread(self.say, error.message)
            return
        self.app.call_from_thread(self.app.switch_screen, VerifyEmailScreen(email, str(answer.get("message", ""))))


class VerifyEmailScreen(PhoneScreen[None]):
    """The 6-digit code from the mail (the core's answer to a sign-up is the same for every address)."""

    def __init__(self, email: str, notice: str) -> None:
        super().__init__()
        self.email, self.notice = email, notice

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="phone"):
            yield Static("Check your e-mail", classes="title")
            yield Static(f"{self.notice}\n({self.email}; read it with: possim outbox)", id="notice", classes="hint")
            yield Input(placeholder="E-mail code", id="code", restrict=r"[0-9]*", max_length=6)
            yield Button("Verify e-mail", id="verify", variant="primary")
            yield Button("Send a new code", id="resend")
            yield Static("", id="message")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "resend":
            self._resend()
        else:
            self._verify(self.query_one("#code", Input).value.strip())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._verify(event.value.strip())

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _resend(self) -> None:
        try:
            self.wallet.client.resend_verification(self.email)
        except WalletError as error:
            self.app.call_from_thread(self.say, error.message)
            return
        self.app.call_from_thread(self.say, "A new code is on its way (at most one a minute).", False)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _verify(self, code: str) -> None:
        try:
            kit = self.wallet.client.verify_email(self.email, code)
        except WalletError as error:
            self.app.call_from_thread(self.say, error.message)
            return
        self.app.call_from_thread(self.app.switch_screen, AuthenticatorScreen(self.email, kit))


def _two_columns(codes: list[str]) -> str:
    return "\n".join("   ".join(codes[i : i + 2]) for i in range(0, len(codes), 2))


class AuthenticatorScreen(PhoneScreen[None]):
    """Shown once: the authenticator key (QR of the otpauth URI and the base32 text) and the recovery codes."""

    DEFAULT_CSS = """
    AuthenticatorScreen #totp-secret, AuthenticatorScreen #recovery-codes { text-style: bold; }
    AuthenticatorScreen #write-down { color: $warning; text-style: bold; }
    """

    def __init__(self, email: str, kit: dict[str, Any]) -> None:
        super().__init__()
        self.email, self.secret, self.uri = email, str(kit.get("totp_secret", "")), str(kit.get("totp_uri", ""))
        self.recovery_codes = [str(code) for code in kit.get("recovery_codes", [])]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="phone", classes="wide"):
            yield Static("Second factor", classes="title")
            yield Static("Scan this with your authenticator app, or type the key (shown once):", classes="hint")
            yield CellView(id="totp-qr")
            yield Static(self.secret, id="totp-secret")
            yield Static("\nRecovery codes (each signs you in once without the authenticator):", classes="hint")
            yield Static(_two_columns(self.recovery_codes), id="recovery-codes")
            yield Static("Write them down now and keep them apart from this phone: they are shown only this "
                         "once.", id="write-down")  # fmt: skip
            yield Button("I have saved them: sign in", id="continue", variant="primary")
            yield Static("", id="message")

    def on_mount(self) -> None:
        try:
            self.query_one("#totp-qr", CellView).show(qr_cells(self.uri, max_version=TOTP_QR_MAX_VERSION))
        except ValueError:  # a URI too long for the screen: the key text is there to type in
            self.query_one("#totp-qr", CellView).display = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.app.switch_screen(SignInScreen(self.email))


class SignInScreen(PhoneScreen[None]):
    """Password and a second factor (the authenticator's code or a recovery code): a new phone never signs in
    on a password alone. ``notice`` is a first line under the form (why the phone is signed out)."""

    def __init__(self, email: str = "", notice: str = "") -> None:
        super().__init__()
        self.email, self.notice = email, notice

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="phone"):
            yield Static("Sign in on this phone", classes="title")
            yield Input(value=self.email, placeholder="E-mail", id="email")
            yield Input(placeholder="Password", password=True, id="password")
            yield Input(placeholder="Authenticator code or recovery code", id="otp", max_length=11)
            yield Input(value="my phone", placeholder="Name of this phone", id="device-name")
            yield Button("Sign in", id="signin", variant="primary")
            yield Button("Forgot password?", id="forgot")
            yield Static(self.notice, id="message")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "forgot":
            from wallet_app.phone.screens.reset import ResetScreen

            self.app.push_screen(ResetScreen(self.query_one("#email", Input).value.strip()), self._after_reset)
            return
        email, otp, name = (self.query_one(f"#{n}", Input).value.strip() for n in ("email", "otp", "device-name"))
        password = self.query_one("#password", Input).value
        self.query_one("#password", Input).value = ""
        self.say("Signing in…", error=False)
        self._enroll(email, password, otp, name or "my phone")

    def _after_reset(self, email: str | None) -> None:
        """Back from "Forgot password?": with the account's e-mail once the new password is set."""
        if not email:
            return
        self.query_one("#email", Input).value = email
        self.query_one("#otp", Input).value = ""
        self.say("Your new password is set and every phone was signed out. Sign in with the new password "
                 "and your authenticator.", error=False)  # fmt: skip

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _enroll(self, email: str, password: str, otp: str, name: str) -> None:
        try:
            state = self.wallet.client.enroll(email, password, otp, name)
        except WalletError as error:  # the core's words: one for every bad sign-in (401), a wait (429)
            self.app.call_from_thread(self.say, error.message)
            return
        self.app.call_from_thread(self._enrolled, state)

    def _enrolled(self, state: WalletState) -> None:
        from wallet_app.phone.screens.home import HomeScreen

        self.wallet.use_state(state, save=True)  # the device secret and the session's refresh token
        while len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        self.app.push_screen(HomeScreen())
