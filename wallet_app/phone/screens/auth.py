"""Sign up (e-mail, phone, password), the e-mail code from the outbox, the authenticator set-up and the
recovery codes (shown once, after the code), and signing this phone in (password + authenticator code or
a recovery code), which enrolls it as a device. "Forgot password?" is in ``screens.reset``.

Each form opens with its first field focused; Enter goes from field to field and the last one submits; Esc
goes back (not from the welcome screen, nor from the authenticator key, which is shown only once): the e-mail
step back to the sign-up form as it was filled in (to use another address)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Button, Input, Static

from protocol import ProtocolError
from wallet_app.phone.cells import qr_cells
from wallet_app.phone.screens.base import Field, PhoneScreen, SubmitField, back_binding, phone_footer
from wallet_app.phone.widgets import CellView
from wallet_app.state import WalletState

TOTP_QR_MAX_VERSION = 6  # 41 modules + the quiet zone: fits the wide phone screen (58 columns)


class WelcomeScreen(PhoneScreen[None]):
    """The first screen of a signed-out phone: nothing under it to go back to."""

    AUTO_FOCUS = "#signup"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sign_up", "Sign up", id="welcome_sign_up"),
        Binding("i", "sign_in", "Sign in", id="welcome_sign_in"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="phone"):
            yield Static("possim wallet", classes="title")
            yield Static("\nPay at the register with a one-time code.\nCodes work offline.\n", classes="hint")
            yield Button("Sign up", id="signup", variant="primary")
            yield Button("Sign in on this phone", id="signin")
        yield phone_footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "signup":
            self.action_sign_up()
        else:
            self.action_sign_in()

    def action_sign_up(self) -> None:
        self.app.push_screen(SignUpScreen())

    def action_sign_in(self) -> None:
        self.app.push_screen(SignInScreen())


class SignUpScreen(PhoneScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [back_binding("signup")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="phone"):
            yield Static("Sign up", classes="title")
            yield Field(placeholder="E-mail", id="email")
            yield Field(placeholder="Phone (+81...)", id="phone-number")
            yield Field(placeholder="Password (12+ characters)", password=True, id="password")
            yield SubmitField(submits="create", placeholder="Your name (optional)", id="name")
            yield Button("Create account", id="create", variant="primary")
            yield Static("", id="message")
        yield phone_footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        values = [self.query_one(f"#{name}", Input).value.strip() for name in ("email", "phone-number", "name")]
        password = self.query_one("#password", Input).value
        self.say("Creating…", error=False)
        self._create(values[0], values[1], password, values[2] or None)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _create(self, email: str, phone: str, password: str, name: str | None) -> None:
        try:
            answer = self.wallet.client.sign_up(email, phone, password, name)
        except ProtocolError as error:
            self.app.call_from_thread(self.say, error.message)
            return
        self.app.call_from_thread(self._created, email, str(answer.get("message", "")))

    def _created(self, email: str, notice: str) -> None:
        if self.app.screen is self:  # not gone back meanwhile
            self.app.push_screen(VerifyEmailScreen(email, notice), self._verified)

    def _verified(self, kit: dict[str, Any] | None) -> None:
        """The e-mail is verified: the authenticator key takes this form's place (Esc never comes back here)."""
        if kit is not None and self.app.screen is self:
            self.app.switch_screen(AuthenticatorScreen(self.query_one("#email", Input).value.strip(), kit))


class VerifyEmailScreen(PhoneScreen[dict[str, Any] | None]):
    """The 6-digit code from the mail (the core's answer to a sign-up is the same for every address). Pushed
    over the sign-up form: Esc goes back to it (another address); dismissed with the authenticator kit."""

    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("verify"),
        Binding("ctrl+n", "resend", "New code", id="verify_resend"),
    ]

    def __init__(self, email: str, notice: str) -> None:
        super().__init__()
        self.email, self.notice = email, notice

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="phone"):
            yield Static("Check your e-mail", classes="title")
            yield Static(f"{self.notice}\n({self.email}; read it with: possim outbox)", id="notice", classes="hint")
            yield SubmitField(submits="verify", placeholder="E-mail code", id="code", restrict=r"[0-9]*", max_length=6)
            yield Button("Verify e-mail", id="verify", variant="primary")
            yield Button("Send a new code", id="resend")
            yield Static("", id="message")
        yield phone_footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "resend":
            self.action_resend()
        else:
            self.say("Checking…", error=False)
            self._verify(self.query_one("#code", Input).value.strip())

    def action_resend(self) -> None:
        self._resend()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _resend(self) -> None:
        try:
            self.wallet.client.resend_verification(self.email)
        except ProtocolError as error:
            self.app.call_from_thread(self.say, error.message)
            return
        self.app.call_from_thread(self.say, "A new code is on its way (at most one a minute).", False)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _verify(self, code: str) -> None:
        try:
            kit = self.wallet.client.verify_email(self.email, code)
        except ProtocolError as error:
            self.app.call_from_thread(self.say, error.message)
            return
        self.app.call_from_thread(self._verified, kit)

    def _verified(self, kit: dict[str, Any]) -> None:
        if self.app.screen is self:  # not gone back meanwhile
            self.dismiss(kit)


def _two_columns(codes: list[str]) -> str:
    return "\n".join("   ".join(codes[i : i + 2]) for i in range(0, len(codes), 2))


class AuthenticatorScreen(PhoneScreen[None]):
    """Shown once: the authenticator key (QR of the otpauth URI and the base32 text) and the recovery codes.
    No Esc (there is no going back to a key shown once) and no Enter (an Enter pressed twice in the code field
    must not skip it): the button, or ``c``. The scrolling container has focus, so the arrow keys scroll."""

    AUTO_FOCUS = "#phone"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "saved", "Codes saved: sign in", id="authenticator_saved"),
    ]
    CSS_PATH = "auth.tcss"

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
            yield Static(
                "Write them down now and keep them apart from this phone: they are shown only this once.",
                id="write-down",
            )
            yield Button("I have saved them: sign in", id="continue", variant="primary")
            yield Static("", id="message")
        yield phone_footer()

    def on_mount(self) -> None:
        try:
            self.query_one("#totp-qr", CellView).show(qr_cells(self.uri, max_version=TOTP_QR_MAX_VERSION))
        except ValueError:  # a URI too long for the screen: the key text is there to type in
            self.query_one("#totp-qr", CellView).display = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_saved()

    def action_saved(self) -> None:
        self.app.switch_screen(SignInScreen(self.email))


class SignInScreen(PhoneScreen[None]):
    """Password and a second factor (the authenticator's code or a recovery code): a new phone never signs in
    on a password alone. ``notice`` is a first line under the form (why the phone is signed out).

    The code comes last (it changes every 30 s) and Enter there signs in. With the e-mail already filled in,
    the password field has focus (``.start``)."""

    AUTO_FOCUS = ".start"
    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("signin"),
        Binding("ctrl+r", "forgot", "Forgot password", id="signin_forgot"),
    ]

    def __init__(self, email: str = "", notice: str = "") -> None:
        super().__init__()
        self.email, self.notice = email, notice

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="phone"):
            yield Static("Sign in on this phone", classes="title")
            yield Field(value=self.email, placeholder="E-mail", id="email", classes="" if self.email else "start")
            yield Field(placeholder="Password", password=True, id="password", classes="start" if self.email else "")
            yield Field(value="my phone", placeholder="Name of this phone", id="device-name")
            yield SubmitField(
                submits="signin", placeholder="Authenticator code or recovery code", id="otp", max_length=11
            )
            yield Button("Sign in", id="signin", variant="primary")
            yield Button("Forgot password?", id="forgot")
            yield Static(self.notice, id="message")
        yield phone_footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "forgot":
            self.action_forgot()
            return
        email, otp, name = (self.query_one(f"#{n}", Input).value.strip() for n in ("email", "otp", "device-name"))
        password = self.query_one("#password", Input).value
        self.query_one("#password", Input).value = ""
        self.say("Signing in…", error=False)
        self._enroll(email, password, otp, name or "my phone")

    def action_forgot(self) -> None:
        from wallet_app.phone.screens.reset import ResetScreen

        self.app.push_screen(ResetScreen(self.query_one("#email", Input).value.strip()), self._after_reset)

    def _after_reset(self, email: str | None) -> None:
        """Back from "Forgot password?": with the account's e-mail once the new password is set."""
        if not email:
            return
        self.query_one("#email", Input).value = email
        self.query_one("#otp", Input).value = ""
        self.set_focus(self.query_one("#password", Input))
        self.say(
            "Your new password is set and every phone was signed out. Sign in with the new password "
            "and your authenticator.",
            error=False,
        )

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _enroll(self, email: str, password: str, otp: str, name: str) -> None:
        try:
            state = self.wallet.client.enroll(email, password, otp, name)
        except ProtocolError as error:  # the core's words: one for every bad sign-in (401), a wait (429)
            self.app.call_from_thread(self._refused, error.message)
            return
        self.app.call_from_thread(self._enrolled, state)

    def _refused(self, message: str) -> None:
        """The password field was emptied on the way out: it has focus again, for the next try."""
        self.say(message)
        if self.app.screen is self:
            self.set_focus(self.query_one("#password", Input))

    def _enrolled(self, state: WalletState) -> None:
        from wallet_app.phone.screens.home import HomeScreen

        self.wallet.use_state(state, save=True)  # the device secret and the session's refresh token
        while len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        self.app.push_screen(HomeScreen())
