"""The phone wallet against a real core: sign up → verify the mailed code → sign in with password and
authenticator → show the code → the register's client pays with the code read from the phone's own
terminal rendering → history shows it; confirm and deny prompts; sign out everywhere kills the codes."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import zxingcpp
from sqlalchemy import select
from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Button, DataTable, Input, Static

from payment_core.models import Payment
from protocol import system_clock
from terminal.client import PaymentClient
from tests.register.conftest import World
from tests.register.pilot_helpers import wait_for
from tests.support import PASSWORD, mailed_code, totp_now
from wallet_app.phone.app import WalletApp, make_wallet_app
from wallet_app.phone.cells import cells_to_image
from wallet_app.phone.screens.auth import AuthenticatorScreen, SignInScreen, VerifyEmailScreen, WelcomeScreen
from wallet_app.phone.screens.confirm import ConfirmDialog
from wallet_app.phone.screens.home import HomeScreen
from wallet_app.phone.widgets import CellView
from wallet_app.state import save_state

SIZE = (60, 50)


def _code_drawn(app: WalletApp) -> bool:
    found = app.screen.query("#pay-code")
    return bool(found) and bool(found.first(CellView).cell_rows())


def _code_on_screen(app: WalletApp) -> str:
    screen = app.screen
    assert isinstance(screen, HomeScreen)
    rows = screen.query_one("#pay-code", CellView).cell_rows()
    found = [
        result.text
        for result in zxingcpp.read_barcodes(
            np.asarray(cells_to_image(rows)), formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        )
    ]
    assert len(found) == 1, found
    return found[0]


def _mounted(pilot: Pilot[None], selector: str) -> bool:
    return bool(pilot.app.screen.query(selector))


def ready(app: App[None], screen_type: type[Screen[Any]]) -> bool:
    """``app`` shows a ``screen_type`` whose children are mounted (its ``#message`` line is there; the
    authenticator's QR is drawn): a pushed screen is current before its compose has run."""
    screen = app.screen
    if not isinstance(screen, screen_type) or not screen.query("#message"):
        return False
    qr = screen.query("#totp-qr")
    return not qr or bool(qr.first(CellView).cell_rows())


async def _click(pilot: Pilot[None], selector: str) -> None:
    """Press a button once it is mounted (a screen is pushed before its children are composed). The button's
    own press, not a mouse click at its coordinates: under load the layout may not be placed yet."""
    await wait_for(pilot, partial(_mounted, pilot, selector), f"{selector} on screen")
    pilot.app.screen.query_one(selector, Button).press()
    await pilot.pause()


async def _fill(pilot: Pilot[None], **values: str) -> None:
    for widget_id, value in values.items():
        await wait_for(pilot, partial(_mounted, pilot, f"#{widget_id}"), widget_id)
        pilot.app.screen.query_one(f"#{widget_id}", Input).value = value


async def test_sign_up_enroll_pay_with_the_drawn_code_and_see_it_in_history(world: World, tmp_path: Path) -> None:
    email = "taro@example.jp"
    app = make_wallet_app(world.server.url, tmp_path / "wallet.json", poll_seconds=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen), "the welcome screen")
        await _click(pilot, "#signup")
        await wait_for(pilot, lambda: bool(app.screen.query("#phone-number")), "the sign-up form")
        await wait_for(pilot, lambda: bool(app.screen.query("#create")), "the sign-up form's button")
        await _fill(pilot, email=email, **{"phone-number": "+81 90 1234 5678", "password": PASSWORD})
        await _click(pilot, "#create")
        await wait_for(pilot, lambda: ready(app, VerifyEmailScreen), "check your e-mail")
        await _fill(pilot, code=mailed_code(world.core, email))  # read from the simulated mailbox
        await _click(pilot, "#verify")
        await wait_for(pilot, lambda: ready(app, AuthenticatorScreen), "the authenticator key")
        secret = app.screen.secret  # type: ignore[attr-defined]
        assert len(secret) >= 16
        drawn = app.screen.query_one("#totp-qr", CellView).cell_rows()  # the authenticator app scans this
        uris = [
            result.text
            for result in zxingcpp.read_barcodes(
                np.asarray(cells_to_image(drawn)), formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
            )
        ]
        assert len(uris) == 1 and uris[0].startswith("otpauth://totp/") and f"secret={secret}" in uris[0]
        shown = str(app.screen.query_one("#recovery-codes", Static).render())
        assert len(re.findall(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b", shown)) == 10  # the ten recovery codes, shown once
        await _click(pilot, "#continue")
        await wait_for(pilot, lambda: ready(app, SignInScreen), "the sign-in form")
        await _fill(pilot, password=PASSWORD, otp=totp_now(secret, system_clock), **{"device-name": "Taro's phone"})
        await _click(pilot, "#signin")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.online is True, "the Pay screen")
        await wait_for(pilot, lambda: _code_drawn(app), "the code drawn on the Pay screen")
        assert (tmp_path / "wallet.json").stat().st_mode & 0o077 == 0

        with PaymentClient(world.server.url, world.terminal_id, world.terminal_secret) as register:
            funded = register.topup_cash("cash-1", 5_000, _code_on_screen(app))  # cash at the register
            assert funded.status == "succeeded", funded
            await pilot.press("r")
            await pilot.pause()
            paid = register.pay("R9-000001-1", 1_234, _code_on_screen(app))
        assert paid.status == "succeeded" and paid.balance_after == 5_000 - 1_234

        await wait_for(pilot, lambda: app.balance == 5_000 - 1_234, "the new balance")
        app.screen.query_one("TabbedContent").active = "history"  # type: ignore[attr-defined]
        table = app.screen.query_one("#history-table", DataTable)
        await wait_for(pilot, lambda: table.row_count >= 2, "the history")
        rows = [" ".join(str(cell) for cell in table.get_row_at(i)) for i in range(table.row_count)]
        assert any("payment" in row and "1,234" in row and "渋谷" in row for row in rows), rows
        assert any("topup" in row and "5,000" in row for row in rows), rows


async def test_the_phone_is_asked_to_approve_or_deny(world: World, tmp_path: Path) -> None:
    state_path = tmp_path / "wallet.json"
    save_state(world.wallet, state_path)
    app = make_wallet_app(world.server.url, state_path, poll_seconds=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), "the Pay screen")
        with PaymentClient(world.server.url, world.terminal_id, world.terminal_secret) as register:
            asked = register.pay("R9-000002-1", 12_000, world.minter.mint().numeric)
            assert asked.status == "awaiting_customer"
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the approval prompt")
            await wait_for(pilot, partial(_mounted, pilot, "#confirm-text"), "the prompt's text")
            assert "12,000" in str(app.screen.query_one("#confirm-text").render())
            await _click(pilot, "#approve")
            await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), "the prompt to close")
            assert register.query("R9-000002-1").status == "succeeded"

            register.pay("R9-000003-1", 11_000, world.minter.mint().numeric)
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the second prompt")
            await wait_for(pilot, lambda: bool(app.screen.query("#deny")), "the prompt's buttons")
            prompt = app.screen
            assert isinstance(prompt, ConfirmDialog) and app.focused is None
            await pilot.press("enter")  # a stray Enter answers nothing
            assert prompt.answered is None and app.screen is prompt
            assert register.query("R9-000003-1").status == "awaiting_customer"
            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), "the prompt to close")
            denied = register.query("R9-000003-1")
        assert (denied.status, denied.decline_code) == ("declined", "customer_declined")


async def test_sign_out_everywhere_kills_the_phones_codes(world: World, tmp_path: Path) -> None:
    state_path = tmp_path / "wallet.json"
    save_state(world.wallet, state_path)
    app = make_wallet_app(world.server.url, state_path, poll_seconds=0.3)
    minted_before = world.minter.mint().numeric
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), "the Pay screen")
        app.screen.query_one("TabbedContent").active = "devices"  # type: ignore[attr-defined]
        table = app.screen.query_one("#device-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, "the device list")
        assert "this phone" in " ".join(str(cell) for cell in table.get_row_at(0))
        app.screen.query_one("#everywhere", Button).press()
        await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen), "the signed-out phone")
    assert not state_path.exists()  # the secret is gone from this phone
    with PaymentClient(world.server.url, world.terminal_id, world.terminal_secret) as register:
        refused = register.pay("R9-000004-1", 100, minted_before)
    assert refused.decline_code == "device_revoked"
    with world.core.transaction() as session:
        assert session.scalars(select(Payment).where(Payment.order_id == "R9-000004-1")).one().status == "declined"


async def test_a_card_top_up_needs_the_authenticator_and_shows_in_the_alerts(world: World, tmp_path: Path) -> None:
    import time

    import pyotp
    from textual.widgets import Static

    from payment_core import otp
    from payment_core.models import Account

    state_path = tmp_path / "wallet.json"
    save_state(world.wallet, state_path)
    with world.core.transaction() as session:
        account = session.get(Account, world.wallet.account_id)
        assert account is not None
        totp = pyotp.TOTP(otp.account_totp_secret(world.core, account))
    app = make_wallet_app(world.server.url, state_path, poll_seconds=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.balance == 30_000, "the Pay screen")
        app.screen.query_one("TabbedContent").active = "topup"  # type: ignore[attr-defined]
        await pilot.pause()
        message = app.screen.query_one("#topup-message", Static)
        await _fill(pilot, amount="2000", source="4242424242424242", otp="123456")  # a guess, or the password: refused
        app.screen.query_one("#do-topup", Button).press()
        await wait_for(pilot, lambda: "wrong" in str(message.render()).lower(), "the refusal")
        assert app.balance == 30_000
        # The enrollment used this 30 s step's code; the authenticator's next code is accepted once.
        await _fill(pilot, otp=totp.at(time.time() + 30))
        app.screen.query_one("#do-topup", Button).press()
        await wait_for(pilot, lambda: "Topped up" in str(message.render()), "the top-up")
        await wait_for(pilot, lambda: app.balance == 32_000, "the new balance")
        app.screen.query_one("TabbedContent").active = "alerts"  # type: ignore[attr-defined]
        table = app.screen.query_one("#alert-table", DataTable)
        await wait_for(pilot, lambda: table.row_count >= 1, "the alerts")
        alerts = " ".join(str(table.get_row_at(i)[1]) for i in range(table.row_count))
        assert "2,000" in alerts, alerts
