"""The phone wallet: a Textual app shaped like a phone. Built by :func:`make_wallet_app` so tests inject parts.

Codes are minted on the phone from the device secret (offline, no signal needed); the core is asked only
for the balance, the history, the alerts and the payments waiting for approval. When the core cannot be
reached the wallet says so and keeps minting.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType

from protocol import Clock, system_clock
from wallet_app.client import WalletClient, WalletError
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState, WalletStateError, load_state, save_state

PHONE_CSS = """
Screen { align: center middle; background: $background; }
#phone { width: 46; height: 100%; max-height: 50; border: heavy #555; background: $surface; padding: 0 1; }
#phone.wide { width: 58; }
#phone .title { text-style: bold; content-align: center middle; width: 100%; height: 1; background: $primary; }
#phone .hint { color: $text-muted; }
#phone .error { color: $error; }
#phone Input { margin: 0; }
#phone Button { width: 100%; margin-top: 1; }
"""


class WalletApp(App[None]):
    TITLE = "possim wallet"
    CSS = PHONE_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "quit", "Quit", id="quit")]

    def __init__(
        self,
        client: WalletClient,
        state_path: Path,
        *,
        clock: Clock = system_clock,
        poll_seconds: float = 3.0,
    ) -> None:
        super().__init__()
        self.client, self.state_path, self.clock, self.poll_seconds = client, state_path, clock, poll_seconds
        self.state: WalletState | None = None
        self.minter: CodeMinter | None = None
        self.online: bool | None = None
        self.balance: int | None = None
        self.asked: set[str] = set()  # payments already put to the user
        self._poll_lock = threading.Lock()

    def on_mount(self) -> None:
        from wallet_app.phone.screens.auth import WelcomeScreen
        from wallet_app.phone.screens.home import HomeScreen

        try:
            self.use_state(load_state(self.state_path))
        except WalletStateError:
            self.push_screen(WelcomeScreen())
            return
        self.push_screen(HomeScreen())

    def use_state(self, state: WalletState, save: bool = False) -> None:
        if save:
            save_state(state, self.state_path)
        self.state = state
        self.minter = CodeMinter(state.device_id, state.secret, self.clock)
        self.set_interval(self.poll_seconds, self.poll, name="poll")
        self.poll()

    def forget_device(self) -> None:
        """This phone was signed out (revoked): drop its secret from the disk and memory."""
        self.state, self.minter = None, None
        self.state_path.unlink(missing_ok=True)

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll(self) -> None:
        """Balance (tells online from offline) and payments waiting for this account's approval."""
        state = self.state
        if state is None or not self._poll_lock.acquire(blocking=False):
            return
        try:
            try:
                balance = self.client.balance(state)
                waiting = self.client.awaiting(state)
            except WalletError as error:
                self.call_from_thread(self._status, None, error)
                return
            self.call_from_thread(self._status, balance, None)
            for payment in waiting:
                if str(payment.get("id")) not in self.asked:
                    self.asked.add(str(payment.get("id")))
                    self.call_from_thread(self._ask, payment)
        finally:
            self._poll_lock.release()

    def _status(self, balance: int | None, error: WalletError | None) -> None:
        from wallet_app.phone.screens.home import HomeScreen

        if error is not None and error.code == "device_revoked":
            self.notify("This phone was signed out (its device is revoked).", severity="error")
        self.online = error is None
        if balance is not None:
            self.balance = balance
        for screen in self.screen_stack:
            if isinstance(screen, HomeScreen):
                screen.show_status()

    def _ask(self, payment: dict[str, object]) -> None:
        from wallet_app.phone.screens.confirm import ConfirmDialog

        self.push_screen(ConfirmDialog(payment))


def make_wallet_app(
    core_url: str, state_path: Path, *, clock: Clock = system_clock, poll_seconds: float = 3.0
) -> WalletApp:
    return WalletApp(
        WalletClient(core_url, clock=clock, timeout=5.0), state_path, clock=clock, poll_seconds=poll_seconds
    )
