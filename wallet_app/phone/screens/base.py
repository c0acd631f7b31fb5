"""What the signed-out screens share: the wallet app they run in and a one-line message under the form."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, cast

from textual.screen import Screen
from textual.widgets import Static

if TYPE_CHECKING:
    from wallet_app.phone.app import WalletApp

ResultT = TypeVar("ResultT")


class PhoneScreen(Screen[ResultT]):
    """A screen of the phone: ``#message`` (a Static in its compose) shows progress, errors and notices."""

    @property
    def wallet(self) -> WalletApp:
        return cast("WalletApp", self.app)

    def say(self, text: str, error: bool = True) -> None:
        message = self.query_one("#message", Static)
        message.update(text)
        message.set_class(error, "error")
