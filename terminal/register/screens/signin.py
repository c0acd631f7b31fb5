"""Operator sign-in: clerk id and PIN, throttled by the register store."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import work
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from terminal.register.header import StoreHeader
from terminal.register_store import RegisterStoreError, SignInRefused
from terminal.till import TillError

if TYPE_CHECKING:
    from terminal.register.app import RegisterApp


class SignInScreen(Screen[None]):
    CSS_PATH = "signin.tcss"

    def compose(self) -> ComposeResult:
        yield StoreHeader(show_clock=self.register.options.show_clock)
        with Center(), Vertical(id="signin"):
            yield Static("[b]サインイン  Clerk sign-in[/b]\n")
            yield Input(placeholder="Clerk id 担当者コード", id="clerk-id")
            yield Input(placeholder="PIN", password=True, id="pin", restrict=r"[0-9]*", max_length=8)
            yield Static("", id="signin-message")
            yield Static(self.register.options.signin_hint, id="signin-hint")
        yield Footer()

    @property
    def register(self) -> RegisterApp:
        return cast("RegisterApp", self.app)

    def on_mount(self) -> None:
        self.sub_title = self.register.till.store_name
        self.query_one("#clerk-id", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "clerk-id":
            self.query_one("#pin", Input).focus()
            return
        clerk_id = self.query_one("#clerk-id", Input).value.strip()
        pin = self.query_one("#pin", Input).value
        self.query_one("#pin", Input).value = ""
        self.query_one("#signin-message", Static).update("Checking…")
        self._sign_in(clerk_id, pin)

    @work(thread=True, exclusive=True, group="signin", exit_on_error=False)
    def _sign_in(self, clerk_id: str, pin: str) -> None:
        try:
            self.register.till.sign_in(clerk_id, pin)
        except SignInRefused as refused:
            wait = f" Try again in {refused.retry_after // 60 + 1} min." if refused.reason == "locked" else ""
            self.app.call_from_thread(self._refused, f"{refused}{wait}")
            return
        except (TillError, RegisterStoreError) as error:
            self.app.call_from_thread(self._refused, str(error))
            return
        self.app.call_from_thread(self._signed_in)

    def _refused(self, message: str) -> None:
        self.query_one("#signin-message", Static).update(message)
        self.query_one("#pin", Input).focus()

    def _signed_in(self) -> None:
        self.app.switch_screen(self.register.fresh("sale"))
