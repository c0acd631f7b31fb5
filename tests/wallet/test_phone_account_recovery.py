"""The phone's account-recovery paths against a real core: signing in on a new phone with a recovery
code instead of the authenticator (once), and "Forgot password?" → the mailed reset code → a new password
→ signing in with it (the old one refused)."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from textual.widgets import Static

from protocol import system_clock
from tests.register.conftest import World
from tests.register.pilot_helpers import wait_for
from tests.support import PASSWORD, mailed_reset_token, sign_up_verified
from tests.wallet.test_phone_flows import SIZE, _click, _fill
from wallet_app.client import WalletClient, WalletError
from wallet_app.phone.app import make_wallet_app
from wallet_app.phone.screens.auth import SignInScreen, WelcomeScreen
from wallet_app.phone.screens.home import HomeScreen
from wallet_app.phone.screens.reset import ResetScreen

NEW_PASSWORD = "a new passphrase for jiro"


async def test_a_recovery_code_signs_a_new_phone_in_once(world: World, tmp_path: Path) -> None:
    email = "jiro@example.jp"
    with WalletClient(world.server.url) as client:
        kit = sign_up_verified(client, world.core, email)
    code = str(kit["recovery_codes"][0])
    app = make_wallet_app(world.server.url, tmp_path / "wallet.json", poll_seconds=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen), "the welcome screen")
        await _click(pilot, "#signin")
        await _fill(pilot, email=email, password=PASSWORD, otp=code, **{"device-name": "replacement phone"})
        await _click(pilot, "#signin")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.online is True, "the Pay screen")
        assert app.state is not None and app.state.refresh_token
    with WalletClient(world.server.url) as client, pytest.raises(WalletError) as again:
        client.enroll(email, PASSWORD, code, "a second try with the same code")
    assert again.value.code == "credentials_invalid"


async def test_forgot_password_mails_a_code_and_the_new_password_signs_in(world: World, tmp_path: Path) -> None:
    email = "saburo@example.jp"
    with WalletClient(world.server.url) as client:
        totp = pyotp.TOTP(str(sign_up_verified(client, world.core, email)["totp_secret"]))
    app = make_wallet_app(world.server.url, tmp_path / "wallet.json", poll_seconds=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen), "the welcome screen")
        await _click(pilot, "#signin")
        await _fill(pilot, email=email)
        await _click(pilot, "#forgot")
        await wait_for(pilot, lambda: isinstance(app.screen, ResetScreen), "the reset screen")
        await _click(pilot, "#send")
        message = app.screen.query_one("#message", Static)
        await wait_for(pilot, lambda: "reset code is on its way" in str(message.render()), "the core's answer")
        token = mailed_reset_token(world.core, email)
        await _fill(pilot, token=token, **{"new-password": NEW_PASSWORD, "repeat": NEW_PASSWORD + "x"})
        await _click(pilot, "#set")
        await wait_for(pilot, lambda: "differ" in str(message.render()), "the mismatch")
        await _fill(pilot, repeat=NEW_PASSWORD)
        await _click(pilot, "#set")
        await wait_for(pilot, lambda: isinstance(app.screen, SignInScreen), "the sign-in form again")
        await _fill(pilot, password=PASSWORD, otp=totp.at(system_clock()))
        await _click(pilot, "#signin")
        refused = app.screen.query_one("#message", Static)
        await wait_for(pilot, lambda: "did not work" in str(refused.render()), "the old password refused")
        # A code is taken once per 30 s step, and the refusal above may have used this step's: the next one.
        await _fill(pilot, password=NEW_PASSWORD, otp=totp.at(system_clock().timestamp() + 30))
        await _click(pilot, "#signin")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.online is True, "the Pay screen")
