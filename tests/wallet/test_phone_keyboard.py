"""The signed-out screens by keyboard alone, as a new customer uses them: each form takes the first keystrokes
(its first field has focus when it opens, with no click), Enter goes from field to field and the last field's
Enter submits the form, Esc goes back to the screen under it (never off the first screen, nor off the
authenticator key shown once), and every screen's footer shows its keys.

A screen is "open" once it is current and mounted (composed, its first field focused): under load a pushed
screen is current before its compose has run, so the tests wait for that, then type at once."""

from __future__ import annotations

from typing import Any, TypeVar

from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from payment_core import resets
from protocol import ErrorCode, ProtocolError
from tests.keys import send_keys
from tests.register.pilot_helpers import wait_for
from tests.support import PASSWORD, mailed_code, mailed_reset_token, sign_up_verified, totp_now
from tests.wallet.conftest import PhoneCore
from tests.wallet.test_phone_flows import SIZE
from wallet_app.client import WalletClient
from wallet_app.phone.screens.auth import (
    AuthenticatorScreen,
    SignInScreen,
    SignUpScreen,
    VerifyEmailScreen,
    WelcomeScreen,
)
from wallet_app.phone.screens.home import HomeScreen
from wallet_app.phone.screens.reset import ResetScreen

EMAIL = "hanako@example.jp"
PHONE_NUMBER = "+81 90 1234 5678"
NEW_PASSWORD = "a new passphrase for the wallet"
QUIT = "^q Quit"
REFUSED = ProtocolError(ErrorCode.CREDENTIALS_INVALID).message  # the one answer to every bad sign-in
S = TypeVar("S", bound=Screen[Any])


def opened(app: App[None], screen_type: type[Screen[Any]]) -> bool:
    """``app`` shows a ``screen_type`` that is mounted: composed, and its first field focused if it has one."""
    return isinstance(app.screen, screen_type) and app.screen.is_mounted


async def wait_open(pilot: Pilot[None], screen_type: type[S]) -> S:
    await wait_for(pilot, lambda: opened(pilot.app, screen_type), f"{screen_type.__name__} open")
    screen = pilot.app.screen
    assert isinstance(screen, screen_type)
    return screen


def value(app: App[None], field: str) -> str:
    return app.screen.query_one(f"#{field}", Input).value


def focused_id(app: App[None]) -> str | None:
    return app.focused.id if app.focused is not None else None


async def type_into(pilot: Pilot[None], field: str, text: str) -> None:
    """Type ``text`` key by key into whatever has focus (no click first) and wait until it is all in the empty
    field ``field``: the keys are handled in order, but the last may still be on its way."""
    app = pilot.app
    await send_keys(pilot, *text)
    await wait_for(pilot, lambda: value(app, field) == text, f"{text!r} in #{field}")


async def enter_to(pilot: Pilot[None], field: str) -> None:
    """Enter, and wait for the focus to move to ``field`` (the form handles Enter after the key has gone)."""
    app = pilot.app
    await pilot.press("enter")
    await wait_for(pilot, lambda: focused_id(app) == field, f"Enter to #{field}")


def footer_keys(app: App[None]) -> list[str]:
    """What the screen's footer reads, key by key ("esc Back"), as drawn."""
    footers = app.screen.query(Footer)
    if not footers:
        return []
    return [" ".join(str(key.render()).split()) for key in footers.first().query("FooterKey")]


async def footer_shows(pilot: Pilot[None], *keys: str) -> None:
    """The footer is redrawn after the focus or the screen changes: wait for it to read ``keys``."""
    app = pilot.app
    await wait_for(pilot, lambda: footer_keys(app) == list(keys), f"the footer to read {keys}")


def message(app: App[None]) -> str:
    found = app.screen.query("#message")
    return str(found.first(Static).render()) if found else ""


async def test_sign_up_and_the_email_code_by_keyboard_alone(phone_core: PhoneCore) -> None:
    core, clock = phone_core.core, phone_core.clock
    app = phone_core.phone()
    async with app.run_test(size=SIZE) as pilot:
        await wait_open(pilot, WelcomeScreen)
        await footer_shows(pilot, "s Sign up", "i Sign in", QUIT)
        await pilot.press("escape")  # the first screen: nothing to go back to
        assert opened(app, WelcomeScreen) and len(app.screen_stack) == 2
        await pilot.press("s")

        await wait_open(pilot, SignUpScreen)
        await type_into(pilot, "email", EMAIL)  # the first keystrokes land in the first field
        await footer_shows(pilot, "⏎ Next field", "esc Back", QUIT)
        await enter_to(pilot, "phone-number")
        await type_into(pilot, "phone-number", PHONE_NUMBER)
        await enter_to(pilot, "password")
        await type_into(pilot, "password", PASSWORD)
        await enter_to(pilot, "name")  # the last field (optional): its Enter submits
        await footer_shows(pilot, "⏎ Submit", "esc Back", QUIT)
        await pilot.press("enter")

        await wait_open(pilot, VerifyEmailScreen)
        code = mailed_code(core, EMAIL)  # the core took the sign-up and mailed the code
        await type_into(pilot, "code", code)
        await footer_shows(pilot, "⏎ Submit", "esc Back", "^n New code", QUIT)
        await pilot.press("enter")  # Enter in the code field verifies the address

        shown = await wait_open(pilot, AuthenticatorScreen)
        await footer_shows(pilot, "c Codes saved: sign in", QUIT)
        await pilot.press("escape", "enter")  # shown once: no Esc, and no Enter (one pressed twice) skips it
        assert app.screen is shown
        await pilot.press("c")

        await wait_open(pilot, SignInScreen)
        assert value(app, "email") == EMAIL
        assert focused_id(app) == "password"  # the address is filled in: the password is next
        await footer_shows(pilot, "⏎ Next field", "esc Back", "^r Forgot password", QUIT)
        await type_into(pilot, "password", PASSWORD)
        await enter_to(pilot, "device-name")  # "my phone" will do
        await enter_to(pilot, "otp")  # the code is the last field: it changes every 30 s
        await footer_shows(pilot, "⏎ Submit", "esc Back", "^r Forgot password", QUIT)
        clock.advance(30)  # a new TOTP step
        await type_into(pilot, "otp", totp_now(shown.secret, clock))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.online is True, "the Pay screen")
    assert app.state is not None and app.state.email == EMAIL


async def test_esc_from_the_email_step_goes_back_to_the_sign_up_form_as_filled_in(phone_core: PhoneCore) -> None:
    app = phone_core.phone()
    async with app.run_test(size=SIZE) as pilot:
        welcome = await wait_open(pilot, WelcomeScreen)
        await pilot.press("enter")  # "Sign up" has focus on the first screen
        form = await wait_open(pilot, SignUpScreen)
        await type_into(pilot, "email", EMAIL)
        await enter_to(pilot, "phone-number")
        await type_into(pilot, "phone-number", PHONE_NUMBER)
        await enter_to(pilot, "password")
        await type_into(pilot, "password", PASSWORD)
        await enter_to(pilot, "name")
        await pilot.press("enter")

        await wait_open(pilot, VerifyEmailScreen)
        assert mailed_code(phone_core.core, EMAIL)
        await type_into(pilot, "code", "12")
        await pilot.press("escape")  # a wrong address? back to the form, still filled in
        await wait_for(pilot, lambda: app.screen is form, "the sign-up form again")
        assert value(app, "email") == EMAIL and value(app, "password") == PASSWORD
        await footer_shows(pilot, "⏎ Submit", "esc Back", QUIT)  # the name field still has focus
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is welcome, "the welcome screen")
        await footer_shows(pilot, "s Sign up", "i Sign in", QUIT)


async def test_sign_in_takes_the_first_keystrokes_and_esc_goes_back(phone_core: PhoneCore) -> None:
    app = phone_core.phone()
    async with app.run_test(size=SIZE) as pilot:
        welcome = await wait_open(pilot, WelcomeScreen)
        await pilot.press("i")
        await wait_open(pilot, SignInScreen)
        await type_into(pilot, "email", EMAIL)
        assert value(app, "password") == ""
        await footer_shows(pilot, "⏎ Next field", "esc Back", "^r Forgot password", QUIT)
        await enter_to(pilot, "password")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is welcome, "the welcome screen")


async def test_a_refused_sign_in_puts_the_cursor_back_in_the_emptied_password(phone_core: PhoneCore) -> None:
    app = phone_core.phone()
    async with app.run_test(size=SIZE) as pilot:
        await wait_open(pilot, WelcomeScreen)
        await pilot.press("i")
        await wait_open(pilot, SignInScreen)
        await type_into(pilot, "email", EMAIL)
        await enter_to(pilot, "password")
        await type_into(pilot, "password", "not the password at all")
        await enter_to(pilot, "device-name")
        await enter_to(pilot, "otp")
        await type_into(pilot, "otp", "123456")
        await pilot.press("enter")  # submitted: the core answers its one message for every bad sign-in
        await wait_for(pilot, lambda: REFUSED in message(app), "the refusal")
        assert value(app, "password") == "" and focused_id(app) == "password"


async def test_forgot_password_by_keyboard_alone(phone_core: PhoneCore) -> None:
    core, clock = phone_core.core, phone_core.clock
    with WalletClient(phone_core.server.url, clock=clock) as client:
        secret = str(sign_up_verified(client, core, EMAIL)["totp_secret"])
    app = phone_core.phone()
    async with app.run_test(size=SIZE) as pilot:
        await wait_open(pilot, WelcomeScreen)
        await pilot.press("i")
        sign_in = await wait_open(pilot, SignInScreen)
        await pilot.press("ctrl+r")  # "Forgot password?" before typing anything

        await wait_open(pilot, ResetScreen)
        await type_into(pilot, "email", EMAIL)
        await footer_shows(pilot, "⏎ Submit", "esc Back", QUIT)
        await enter_to(pilot, "token")  # sends the code, and moves on to the code field
        await wait_for(pilot, lambda: resets.RESET_ANSWER in message(app), "the reset answer")
        await footer_shows(pilot, "⏎ Next field", "esc Back", QUIT)
        token = mailed_reset_token(core, EMAIL)  # the core took the request and mailed the code
        await type_into(pilot, "token", token)
        await enter_to(pilot, "new-password")
        await type_into(pilot, "new-password", NEW_PASSWORD)
        await enter_to(pilot, "repeat")
        await type_into(pilot, "repeat", NEW_PASSWORD)
        await footer_shows(pilot, "⏎ Submit", "esc Back", QUIT)
        await pilot.press("enter")  # Enter in the last field sets the password

        await wait_for(pilot, lambda: app.screen is sign_in, "the sign-in form again")
        await wait_for(pilot, lambda: "new password is set" in message(app), "the confirmation line")
        assert value(app, "email") == EMAIL and focused_id(app) == "password"
        await type_into(pilot, "password", NEW_PASSWORD)
        await enter_to(pilot, "device-name")
        await enter_to(pilot, "otp")
        clock.advance(30)
        await type_into(pilot, "otp", totp_now(secret, clock))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.online is True, "the Pay screen")


async def test_esc_from_forgot_password_goes_back_to_sign_in_as_it_was(phone_core: PhoneCore) -> None:
    app = phone_core.phone()
    async with app.run_test(size=SIZE) as pilot:
        await wait_open(pilot, WelcomeScreen)
        await pilot.press("i")
        sign_in = await wait_open(pilot, SignInScreen)
        await type_into(pilot, "email", EMAIL)
        await pilot.press("ctrl+r")
        await wait_open(pilot, ResetScreen)
        assert value(app, "email") == EMAIL and focused_id(app) == "email"  # the first field, filled in
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is sign_in, "the sign-in form again")
        assert value(app, "email") == EMAIL and message(app) == ""
        await footer_shows(pilot, "⏎ Next field", "esc Back", "^r Forgot password", QUIT)
