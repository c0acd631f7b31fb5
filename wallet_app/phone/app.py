"""The phone wallet: a Textual app shaped like a phone. Built by :func:`make_wallet_app` so tests inject parts.

Codes are minted on the phone from the device secret (offline, no signal needed); the core is asked only
for the balance, the history, the alerts and the payments waiting for approval. When the core cannot be
reached the wallet says so and keeps minting. When the core no longer knows this phone's key (a password
reset or "sign out everywhere" elsewhere revoked it, and its session is over too) the phone drops its saved
key and asks to sign in again with the password and the authenticator.
"""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.timer import Timer

from protocol import Clock, ErrorCode, ProtocolError, system_clock
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState, WalletStateError, load_state, save_state


class WalletApp(App[None]):
    TITLE = "possim wallet"
    CSS_PATH = "app.tcss"
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
        self._poll_timer: Timer | None = None

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
        if self._poll_timer is None:
            self._poll_timer = self.set_interval(self.poll_seconds, self.poll, name="poll")
        self.poll()

    def forget_device(self) -> None:
        """This phone was signed out (revoked): drop its secret from the disk and memory."""
        self.state, self.minter = None, None
        self.state_path.unlink(missing_ok=True)
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None

    def discard_account(self, email: str) -> None:
        """A password reset for ``email`` revoked every device of its account: forget this phone's key if it
        is one of them (held in memory, or saved and not loaded)."""
        held = self.state
        if held is None:
            try:
                held = load_state(self.state_path)
            except WalletStateError:
                return
        if held.email.strip().casefold() == email.strip().casefold():
            self.forget_device()

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
            except ProtocolError as error:
                if error.code is ErrorCode.SIGNATURE_INVALID and self._session_ended(state):
                    self.call_from_thread(self._signed_out_elsewhere, state)
                    return
                self.call_from_thread(self._status, None, error)
                return
            self.call_from_thread(self._status, balance, None)
            for payment in waiting:
                if str(payment.get("id")) not in self.asked:
                    self.asked.add(str(payment.get("id")))
                    self.call_from_thread(self._ask, payment)
        finally:
            self._poll_lock.release()

    def _session_ended(self, state: WalletState) -> bool:
        """The core refused this phone's key: is its session over too (401 on a refresh)? Then it was signed
        out, not merely confused. A live session's rotated refresh token is saved (the old one is spent)."""
        if not state.refresh_token:
            return True  # a phone enrolled before sessions existed: the key was all it had
        try:
            _access, renewed = self.client.refresh(state)
        except ProtocolError as error:
            return error.status == 401
        self.call_from_thread(self._keep_session, renewed)
        return False

    def _keep_session(self, renewed: WalletState) -> None:
        if self.state is not None and self.state.device_id == renewed.device_id:
            self.state = renewed
            save_state(renewed, self.state_path)

    def _signed_out_elsewhere(self, state: WalletState) -> None:
        from wallet_app.phone.screens.auth import SignInScreen, WelcomeScreen

        if self.state is None or self.state.device_id != state.device_id:
            return  # already handled, or signed in again meanwhile
        if not all(screen.is_mounted for screen in self.screen_stack):
            self.set_timer(0.1, partial(self._signed_out_elsewhere, state))  # a screen still mounting: not yet
            return
        self.forget_device()
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(WelcomeScreen())
        notice = (
            "This phone was signed out (a password reset, or signed out from another phone). Sign in "
            "again with your password and your authenticator."
        )
        self.push_screen(SignInScreen(state.email, notice))

    def _status(self, balance: int | None, error: ProtocolError | None) -> None:
        from wallet_app.phone.screens.home import HomeScreen

        if error is not None and error.code is ErrorCode.DEVICE_REVOKED:
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
