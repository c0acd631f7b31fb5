"""The phone's account screens against a real core on a manual clock: sign-up → the mailed code (and a new
one) → the authenticator key and the ten recovery codes, shown once → sign in with password and TOTP; a
recovery code from that screen signs a second phone in, once; "Forgot password?" → the mailed reset code →
a new password, the old phone's saved key dropped and the old password refused; every bad sign-in shows the
core's one message, then its wait.

The clock moves 30 s before each new TOTP code: the core takes a code once per step per account."""

from __future__ import annotations

import json
import re

import numpy as np
import pyotp
import pytest
import zxingcpp
from sqlalchemy import select
from textual.pilot import Pilot
from textual.widgets import Input, Static

from payment_core import accounts, recovery, resets
from payment_core.core import Core
from payment_core.models import Account, RecoveryCode
from protocol import ErrorCode, ProtocolError
from tests.register.pilot_helpers import wait_for
from tests.support import PASSWORD, mailbox, mailed_code, mailed_reset_token, sign_up_verified, totp_now
from tests.wallet.conftest import PhoneCore
from tests.wallet.test_phone_flows import SIZE, _click, _fill, ready
from wallet_app.client import WalletClient
from wallet_app.phone.app import WalletApp
from wallet_app.phone.cells import cells_to_image
from wallet_app.phone.screens.auth import AuthenticatorScreen, SignInScreen, VerifyEmailScreen, WelcomeScreen
from wallet_app.phone.screens.home import HomeScreen
from wallet_app.phone.screens.reset import ResetScreen
from wallet_app.phone.widgets import CellView
from wallet_app.state import load_state, save_state

REFUSED = ProtocolError(ErrorCode.CREDENTIALS_INVALID).message  # the one answer to every bad sign-in
NEW_PASSWORD = "a new passphrase for the wallet"
BREACHED_12 = "1qaz2wsx3edc"  # long enough, but on the common-password list
RECOVERY_CODE = re.compile(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b")


def _text(app: WalletApp, selector: str) -> str:
    """The widget's text, or "" while the screen's children are not mounted yet (a screen is pushed first)."""
    found = app.screen.query(selector)
    return str(found.first(Static).render()) if found else ""


def _account_id(core: Core, email: str) -> int:
    with core.transaction() as session:
        return session.scalars(select(Account.id).where(Account.email == email)).one()


def _unused_recovery_hashes(core: Core, account_id: int) -> set[str]:
    with core.transaction() as session:
        query = select(RecoveryCode.code_hash).where(
            RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None)
        )
        return set(session.scalars(query))


async def _press_and_read(pilot: Pilot[None], app: WalletApp, button: str, expected: str) -> None:
    """Clear the message line, press, and wait for ``expected`` there (the same words may come twice)."""
    app.screen.query_one("#message", Static).update("")
    await _click(pilot, button)
    await wait_for(pilot, lambda: expected in _text(app, "#message"), f"{expected!r} after {button}")


async def _sign_up_on_the_phone(
    pilot: Pilot[None], app: WalletApp, phones: PhoneCore, email: str
) -> AuthenticatorScreen:
    """Welcome → sign-up → the mailed code → the authenticator screen (left open)."""
    await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen), "the welcome screen")
    await _click(pilot, "#signup")
    await _fill(pilot, email=email, password=PASSWORD, **{"phone-number": "+81 90 1234 5678"})
    await _click(pilot, "#create")
    await wait_for(pilot, lambda: ready(app, VerifyEmailScreen), "check your e-mail")
    await _fill(pilot, code=mailed_code(phones.core, email))
    await _click(pilot, "#verify")
    await wait_for(pilot, lambda: ready(app, AuthenticatorScreen), "the authenticator key")
    screen = app.screen
    assert isinstance(screen, AuthenticatorScreen)
    return screen


async def _sign_in(pilot: Pilot[None], app: WalletApp, password: str, otp: str, device: str = "my phone") -> None:
    await wait_for(pilot, lambda: ready(app, SignInScreen), "the sign-in form")
    await _fill(pilot, password=password, otp=otp, **{"device-name": device})
    await _click(pilot, "#signin")


async def test_sign_up_shows_the_key_and_ten_recovery_codes_once_then_totp_signs_in(phone_core: PhoneCore) -> None:
    core, clock, email = phone_core.core, phone_core.clock, "taro@example.jp"
    app = phone_core.phone()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen), "the welcome screen")
        await _click(pilot, "#signup")
        await _fill(pilot, email=email, password="too short", **{"phone-number": "+81 90 1234 5678"})
        await _press_and_read(pilot, app, "#create", "at least 12 characters")  # the policy's reason, as sent
        await _fill(pilot, password=PASSWORD)
        await _click(pilot, "#create")
        await wait_for(pilot, lambda: ready(app, VerifyEmailScreen), "check your e-mail")
        assert accounts.SIGNUP_ANSWER in _text(app, "#notice")  # the same answer for any address
        first = mailed_code(core, email)
        await _fill(pilot, code="000000" if first != "000000" else "111111")
        await _press_and_read(pilot, app, "#verify", REFUSED)
        clock.advance(61)  # one new code a minute
        await _press_and_read(pilot, app, "#resend", "on its way")
        assert len([body for body in mailbox(core, email) if "verification code" in body]) == 2
        await _fill(pilot, code=mailed_code(core, email))  # the newest
        await _click(pilot, "#verify")
        await wait_for(pilot, lambda: ready(app, AuthenticatorScreen), "the authenticator key")
        screen = app.screen
        assert isinstance(screen, AuthenticatorScreen)

        drawn = screen.query_one("#totp-qr", CellView).cell_rows()  # what the authenticator app scans
        uris = [
            found.text
            for found in zxingcpp.read_barcodes(
                np.asarray(cells_to_image(drawn)), formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
            )
        ]
        assert len(uris) == 1
        scanned = pyotp.parse_uri(uris[0])
        assert isinstance(scanned, pyotp.TOTP) and scanned.issuer == "possim" and scanned.name == email
        assert scanned.secret == _text(app, "#totp-secret").strip() == screen.secret
        codes = RECOVERY_CODE.findall(_text(app, "#recovery-codes"))
        assert len(set(codes)) == 10 and codes == screen.recovery_codes
        account_id = _account_id(core, email)
        assert {recovery._hash(core, account_id, code) for code in codes} == _unused_recovery_hashes(core, account_id)
        assert "shown only this once" in _text(app, "#write-down")

        await _click(pilot, "#continue")
        await wait_for(pilot, lambda: ready(app, SignInScreen), "the sign-in form")
        assert app.screen.query_one("#email", Input).value == email
        assert app.screen.query_one("#otp", Input).placeholder == "Authenticator code or recovery code"
        clock.advance(30)
        await _sign_in(pilot, app, PASSWORD, totp_now(scanned.secret, clock), "Taro's phone")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.online is True, "the Pay screen")
    state_path = phone_core.tmp / "wallet.json"
    assert state_path.stat().st_mode & 0o077 == 0
    assert json.loads(state_path.read_text())["refresh_token"]  # the session is kept with the device key


async def test_a_recovery_code_from_the_screen_signs_a_second_phone_in_once(phone_core: PhoneCore) -> None:
    core, clock, email = phone_core.core, phone_core.clock, "jiro@example.jp"
    first = phone_core.phone("first.json")
    async with first.run_test(size=SIZE) as pilot:
        shown = await _sign_up_on_the_phone(pilot, first, phone_core, email)
        secret, codes = shown.secret, RECOVERY_CODE.findall(_text(first, "#recovery-codes"))
        await _click(pilot, "#continue")
        clock.advance(30)
        await _sign_in(pilot, first, PASSWORD, totp_now(secret, clock), "Jiro's phone")
        await wait_for(pilot, lambda: isinstance(first.screen, HomeScreen) and first.online is True, "the Pay screen")

    second = phone_core.phone("second.json")  # the authenticator is on the first phone, which is not at hand
    async with second.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(second.screen, WelcomeScreen), "the welcome screen")
        await _click(pilot, "#signin")
        await _fill(pilot, email=email)
        await _sign_in(pilot, second, PASSWORD, codes[3], "Jiro's tablet")
        await wait_for(pilot, lambda: isinstance(second.screen, HomeScreen) and second.online is True, "the Pay screen")
    state = load_state(phone_core.tmp / "second.json")
    assert state.refresh_token
    account_id = _account_id(core, email)
    assert recovery.remaining(core, account_id) == 9
    with WalletClient(phone_core.server.url, clock=clock) as client:
        assert sorted(str(device["name"]) for device in client.devices(state)) == ["Jiro's phone", "Jiro's tablet"]
        with pytest.raises(ProtocolError) as again:
            client.enroll(email, PASSWORD, codes[3], "a third phone")
    assert (again.value.code, again.value.status, again.value.message) == ("credentials_invalid", 401, REFUSED)


async def test_forgot_password_sets_a_new_one_and_the_old_phone_signs_in_again(phone_core: PhoneCore) -> None:
    core, clock, email = phone_core.core, phone_core.clock, "saburo@example.jp"
    with WalletClient(phone_core.server.url, clock=clock) as client:
        secret = str(sign_up_verified(client, core, email)["totp_secret"])
        clock.advance(30)
        old_state = client.enroll(email, PASSWORD, totp_now(secret, clock), "Saburo's old phone")
    save_state(old_state, phone_core.tmp / "old.json")

    app = phone_core.phone("borrowed.json")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen), "the welcome screen")
        await _click(pilot, "#signin")
        await _fill(pilot, email=email)
        sign_in = app.screen
        await _click(pilot, "#forgot")
        await wait_for(pilot, lambda: ready(app, ResetScreen), "the reset screen")
        assert app.screen.query_one("#email", Input).value == email
        await _press_and_read(pilot, app, "#send", resets.RESET_ANSWER)  # the same for any address
        token = mailed_reset_token(core, email)
        await _fill(pilot, token=token, **{"new-password": NEW_PASSWORD, "repeat": NEW_PASSWORD + "x"})
        await _press_and_read(pilot, app, "#set", "differ")  # checked on the phone
        await _fill(pilot, **{"new-password": BREACHED_12, "repeat": BREACHED_12})
        await _press_and_read(pilot, app, "#set", "exposed in data breaches")  # the core's 422, as sent
        await _fill(pilot, **{"new-password": NEW_PASSWORD, "repeat": NEW_PASSWORD})
        await _click(pilot, "#set")
        await wait_for(pilot, lambda: app.screen is sign_in, "the same sign-in form again")
        await wait_for(pilot, lambda: "new password is set" in _text(app, "#message"), "the confirmation line")
        assert app.screen.query_one("#email", Input).value == email

    old = phone_core.phone("old.json")  # the phone enrolled before the reset, its key still saved
    async with old.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: ready(old, SignInScreen), "the signed-out phone")
        await wait_for(pilot, lambda: "signed out" in _text(old, "#message"), "the signed-out line")
        assert old.state is None and not (phone_core.tmp / "old.json").exists()
        assert old.screen.query_one("#email", Input).value == email
        clock.advance(30)
        await _fill(pilot, password=PASSWORD, otp=totp_now(secret, clock))
        await _press_and_read(pilot, old, "#signin", REFUSED)  # the old password
        clock.advance(30)
        await _sign_in(pilot, old, NEW_PASSWORD, totp_now(secret, clock), "Saburo's old phone")
        await wait_for(pilot, lambda: isinstance(old.screen, HomeScreen) and old.online is True, "the Pay screen")
    assert load_state(phone_core.tmp / "old.json").refresh_token


async def test_every_bad_sign_in_shows_one_message_then_the_wait(phone_core: PhoneCore) -> None:
    core, clock, email = phone_core.core, phone_core.clock, "shiro@example.jp"
    with WalletClient(phone_core.server.url, clock=clock) as client:
        kit = sign_up_verified(client, core, email)
    secret = str(kit["totp_secret"])
    app = phone_core.phone()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen), "the welcome screen")
        await _click(pilot, "#signin")
        wrong_otp = "000000" if totp_now(secret, clock) != "000000" else "111111"
        tries = [
            ("nobody@example.jp", PASSWORD, wrong_otp),  # no such account
            (email, "not the password at all", wrong_otp),  # wrong password
            (email, PASSWORD, wrong_otp),  # right password, wrong authenticator code
            (email, PASSWORD, "abcde-fgh23"),  # right password, a made-up recovery code
            (email, "not the password at all", str(kit["recovery_codes"][0])),  # a real code, wrong password
        ]
        for address, password, otp in tries:
            await _fill(pilot, email=address, password=password, otp=otp)
            await _press_and_read(pilot, app, "#signin", REFUSED)
        await _fill(pilot, email=email, password=PASSWORD, otp=wrong_otp)
        await _press_and_read(pilot, app, "#signin", "wait before trying again")  # 429 after five failures
        clock.advance(30)  # past the backoff, and a new TOTP step
        await _sign_in(pilot, app, PASSWORD, totp_now(secret, clock))
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.online is True, "the Pay screen")
    assert recovery.remaining(core, _account_id(core, email)) == 10  # the code tried with a wrong password is unused
