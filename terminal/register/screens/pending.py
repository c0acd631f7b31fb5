"""Unfinished wallet payments: checked with the core before the clerk sells (at start, and on F9 from the sale).

A register stopped mid-payment (killed, a power cut, a core that never answered) has orders whose outcome it
never learnt (``terminal.wallet_orders``). At start the app puts this screen over the sign-in screen while a
worker asks the core about each (``Till.reconcile_pending``): a paid one is recorded as a sale (its receipt
printed), the others are written down or reversed. The screen then lists what became of each, the app
notifies the summary, and Enter goes on. Orders the core could not be asked about stay pending: the clerk may
sell (cash needs no core, and a wallet payment fails plainly while the core is down), F5 here or F9 on the sale
screen asks again, and the shift cannot close until none is left.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, ClassVar, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from terminal.reconcile import Reconciliation
from terminal.register.header import StoreHeader

if TYPE_CHECKING:
    from terminal.register.app import RegisterApp


class PendingScreen(Screen[Reconciliation | None]):
    CSS_PATH = "pending.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "done", "Continue", id="pending_done"),
        Binding("f5", "check", "Check again", id="pending_check", tooltip="Ask the payment service again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.checking = False
        self.result: Reconciliation | None = None

    @property
    def register(self) -> RegisterApp:
        return cast("RegisterApp", self.app)

    def compose(self) -> ComposeResult:
        yield StoreHeader(show_clock=self.register.options.show_clock)
        with Center(), Vertical(id="pending"):
            yield Static("[b]未完了の支払い  Unfinished wallet payments[/b]\n", id="pending-title")
            yield Static("", id="pending-summary")
            yield Static("", id="pending-lines")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Checking payments left open when the register stopped"
        self.action_check()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "done":
            return not self.checking
        if action == "check":
            return not self.checking and self.result is not None and bool(self.result.still_pending)
        return True

    def action_check(self) -> None:
        if self.checking:
            return
        count = self.register.till.pending_count()
        self._set_checking(True)
        self.query_one("#pending-summary", Static).update(
            f"確認中… Checking {count} unfinished payment{'s' if count != 1 else ''} with the payment service…"
        )
        self._reconcile()

    @work(thread=True, exclusive=True, group="reconcile", exit_on_error=False)
    def _reconcile(self) -> None:
        try:
            result = self.register.till.reconcile_pending()
        except Exception as error:  # the register's own file failed: say so, keep the orders pending
            with contextlib.suppress(RuntimeError):  # the app is closing
                self.app.call_from_thread(self._failed, f"{type(error).__name__}: {error}")
            return
        with contextlib.suppress(RuntimeError):  # the app is closing: what was settled is written down already
            self.app.call_from_thread(self._show, result)

    def _show(self, result: Reconciliation) -> None:
        self.result = result
        summary = result.summary() or "No unfinished payments: nothing to do."
        pending = bool(result.still_pending)
        after = "F5 checks again; Enter goes on (you may sell: the shift cannot close until they are settled)."
        self.query_one("#pending-summary", Static).update(f"{summary}\n\n{after if pending else 'Enter goes on.'}")
        self.query_one("#pending-lines", Static).update("\n".join(s.line() for s in result.settlements))
        self.register.notify(summary, severity="warning" if pending else "information", timeout=15)
        self._set_checking(False)

    def _failed(self, message: str) -> None:
        self.query_one("#pending-summary", Static).update(
            f"The register could not check its unfinished payments: {message}\nEnter goes on; F9 on the sale "
            "screen checks again."
        )
        self.result = Reconciliation()
        self._set_checking(False)

    def _set_checking(self, checking: bool) -> None:
        self.checking = checking
        self.refresh_bindings()

    def action_done(self) -> None:
        if not self.checking:
            self.dismiss(self.result)
