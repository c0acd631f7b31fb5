"""The home screen's tabs, offline: the screen routes to them what happens outside (the app's status and
balance, the keys from any tab) and acts on what they tell it (cash is paid in at a register: the Pay tab)."""

from __future__ import annotations

import socket
from pathlib import Path

from textual.widgets import Button, Select, Static, TabbedContent

from tests.register.pilot_helpers import wait_for
from wallet_app.phone.app import WalletApp, make_wallet_app
from wallet_app.phone.screens.home import HomeScreen
from wallet_app.phone.tabs import PayTab
from wallet_app.state import WalletState, save_state

SECRET = bytes(range(32))


def _offline_phone(tmp_path: Path) -> WalletApp:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        core_url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once closed
    state_path = tmp_path / "wallet.json"
    save_state(WalletState(core_url, "hanako@example.jp", 1, 4242, SECRET, "Hanako's wallet"), state_path)
    return make_wallet_app(core_url, state_path, poll_seconds=0.2)


def _status(app: WalletApp) -> str:
    return str(app.screen.query_one("#status", Static).render())


async def test_the_home_screen_routes_status_keys_and_the_cash_top_up(tmp_path: Path) -> None:
    app = _offline_phone(tmp_path)
    async with app.run_test(size=(60, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.online is False, "offline status")
        screen = app.screen
        assert isinstance(screen, HomeScreen)
        assert "Offline" in _status(app)
        pay = screen.query_one(PayTab)
        assert (pay.online, pay.balance) == (False, None)  # bound from the screen's reactives

        tabs = screen.query_one(TabbedContent)
        tabs.active = "history"
        await pilot.pause()
        first = screen.code
        assert first is not None
        await pilot.press("r")  # the Pay tab's action, from another tab
        await wait_for(pilot, lambda: screen.code is not None and screen.code.qr != first.qr, "a new code")

        tabs.active = "topup"
        await wait_for(pilot, lambda: screen.query_one("#method", Select).is_mounted, "the Top up tab")
        screen.query_one("#method", Select).value = "cash"
        screen.query_one("#do-topup", Button).press()
        await wait_for(pilot, lambda: tabs.active == "pay", "the Pay tab for the cash")
        message = str(screen.query_one("#topup-message", Static).render())
        assert message == "Show the Pay code at a register and hand over the cash."
