"""Wallet payment: wait for a code from any input, send it, and say plainly what happened.

States: waiting for a code → sending → approved | declined | waiting for the customer to confirm on
the phone (countdown; the client polls every 2-3 s and reverses after 30 s) | service unreachable, or
unavailable (the core answered 503: its database is down; the panel says when to try again) (banner; F5
retries with the same order id, so it can never charge twice; the sale and its lines stay as they are).

The order is written down as pending before it is sent (``Till.send_wallet``) and settled with its outcome,
so a register killed mid-payment finds it at its next start (``terminal.reconcile``).
"""

from __future__ import annotations

import contextlib
import threading
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from protocol import (
    ParsedCode,
    PaymentStatus,
    ProtocolError,
    Symbology,
    format_yen,
    looks_like_payment_code,
    parse_code,
)
from terminal.client import UNKNOWN, PaymentOutcome
from terminal.receipt import mask_balance
from terminal.register.entry import ScanEntry
from terminal.register.header import StoreHeader
from terminal.register.texts import UNREACHABLE, decline_reason, service_unavailable
from terminal.register.viewfinder import Viewfinder
from terminal.till import Completed, PaymentAttempt, TillError

if TYPE_CHECKING:
    from terminal.register.app import RegisterApp


class PayState(StrEnum):
    """Where the payment stands; the value is also the CSS class the state panel takes (``payment.tcss``)."""

    WAITING = "waiting"
    SENDING = "sending"
    AWAITING = "awaiting"
    APPROVED = "approved"
    DECLINED = "declined"
    UNREACHABLE = "unreachable"
    NOT_RECORDED = "not_recorded"


WAITING, SENDING, AWAITING, APPROVED = PayState.WAITING, PayState.SENDING, PayState.AWAITING, PayState.APPROVED
DECLINED, UNREACHABLE_STATE, NOT_RECORDED = PayState.DECLINED, PayState.UNREACHABLE, PayState.NOT_RECORDED
_PANEL_CLASSES = (APPROVED, DECLINED, AWAITING, UNREACHABLE_STATE, NOT_RECORDED)  # WAITING, SENDING: plain panel
OPEN_STATES = frozenset({SENDING, AWAITING, UNREACHABLE_STATE, NOT_RECORDED})  # the register may not quit now
NUMERIC_TIME_MODULUS = 10_000  # the numeric form carries the minting second mod 10,000; the QR form all of it


def _same_code(one: ParsedCode, other: ParsedCode) -> bool:
    """The same minted code, whichever form (numeric or QR) each was read in."""
    key = (one.device_id, one.time_field % NUMERIC_TIME_MODULUS, one.counter)
    return key == (other.device_id, other.time_field % NUMERIC_TIME_MODULUS, other.counter)


class PaymentScreen(Screen[Completed | None]):
    CSS_PATH = "payment.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="pay_cancel"),
        Binding("f5", "retry", "Retry", id="pay_retry", tooltip="Send again with the same order id"),
        Binding("enter", "done", "Receipt", id="pay_done", show=True),
    ]
    state: reactive[PayState] = reactive(PayState.WAITING, bindings=True, init=False)
    """Changing it restyles the state panel (:meth:`watch_state`) and re-checks which keys apply."""

    def __init__(self, attempt: PaymentAttempt) -> None:
        super().__init__()
        self.attempt = attempt
        self.code: str | None = None
        self.completed: Completed | None = None
        self.outcome: PaymentOutcome | None = None
        self._cancel = threading.Event()

    @property
    def register(self) -> RegisterApp:
        return cast("RegisterApp", self.app)

    def compose(self) -> ComposeResult:
        yield StoreHeader(show_clock=self.register.options.show_clock)
        yield Static(f"お支払い  Amount due  {format_yen(self.attempt.amount)}", id="pay-amount")
        with Horizontal(id="pay-main"):
            with Vertical(id="pay-camera"):
                yield Viewfinder(id="viewfinder")
                yield Static(self.register.status_line(), id="camera-status")
            with Vertical(id="pay-side"):
                yield Static("", id="pay-state")
                yield Static("", id="pay-read")
                yield ScanEntry("…or scan / type the 22-digit code", id="pay-entry")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"Receipt {self.attempt.receipt_no}  order {self.attempt.order_id}"
        if self.register.last_preview is not None:
            self.query_one(Viewfinder).show(self.register.last_preview)
        self._set_state(WAITING, "[b]コードをかざしてください[/b]\n\nShow the payment code to the camera,\nor scan it.")
        self.query_one("#pay-entry", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            return self.state in (UNREACHABLE_STATE, NOT_RECORDED)
        if action == "done":
            return self.state == APPROVED
        if action == "cancel":
            return self.state not in (APPROVED, NOT_RECORDED, SENDING)
        return True

    # -- input -------------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.replace(" ", "")
        event.input.value = ""
        if self.state == APPROVED:  # the entry line keeps focus (a wedge scanner types there): Enter goes on
            self.action_done()
        elif text:
            self.handle_scan(text, Symbology.KEYED, "keyboard")

    def handle_scan(self, text: str, symbology: Symbology, source: str) -> None:
        if self.state not in (WAITING, DECLINED):
            return
        if not looks_like_payment_code(text):
            self.query_one("#pay-read", Static).update(f"Read {text[:24]} ({symbology}): not a payment code.")
            return
        try:
            parsed = parse_code(text)
        except ProtocolError:  # a misread (bad check digit): nothing to send, the screen keeps what it says
            self.query_one("#pay-read", Static).update(f"Read {text[:24]} ({symbology}): misread, scan it again.")
            return
        if self.state == DECLINED and self.code and _same_code(parse_code(self.code), parsed):
            # the camera still sees it (in either form), or it was typed again: it would only be declined again
            self.query_one("#pay-read", Static).update("That code was just declined: ask for a new code.")
            return
        if self.state == DECLINED:
            self.attempt.next_try()  # a declined order id is closed: a new code needs a new order
            self.sub_title = f"Receipt {self.attempt.receipt_no}  order {self.attempt.order_id}"
        self.code = text
        form = "QR form" if len(text) > 22 else "numeric form"
        self.query_one("#pay-read", Static).update(f"Payment code read from the {source} ({form}).")
        self._send()

    # -- the payment call --------------------------------------------------------------------------

    def _send(self) -> None:
        self._set_state(SENDING, "[b]送信中…[/b]\n\nSending to the payment service…")
        self._pay(str(self.code))

    @work(thread=True, exclusive=True, group="payment", exit_on_error=False)
    def _pay(self, code: str) -> None:
        till, options = self.register.till, self.register.options

        def on_awaiting() -> None:
            self.app.call_from_thread(self._awaiting, options.confirm_timeout)

        def on_tick(seconds_left: float) -> bool:
            try:
                self.app.call_from_thread(self._awaiting, seconds_left)
            except RuntimeError:  # the app is closing: stop waiting, the client reverses the order
                return True
            return self._cancel.is_set()

        try:  # the order is written down as pending before it is sent (what a restart reconciles)
            outcome = till.send_wallet(
                self.attempt,
                code,
                confirm_timeout=options.confirm_timeout,
                confirm_poll=options.confirm_poll,
                on_awaiting=on_awaiting,
                on_tick=on_tick,
            )
        except TillError as error:
            with contextlib.suppress(RuntimeError):  # the app is closing: nothing was sent
                self.app.call_from_thread(self._not_sent, str(error))
            return
        try:
            self.app.call_from_thread(self._show_outcome, outcome)
        except RuntimeError:  # closing mid-payment: an approval nobody will record is given back
            if outcome.status == PaymentStatus.SUCCEEDED:
                outcome = till.client.reverse(outcome.order_id)
            till.settle_wallet(outcome)  # an unknown outcome stays pending: the next start asks the core

    def _not_sent(self, message: str) -> None:
        self._set_state(WAITING, f"[b]✘ 未送信  NOT SENT[/b]\n\n{message}\n\nShow the code again, or Esc.")

    def _awaiting(self, seconds_left: float) -> None:
        bar = "█" * int(seconds_left // 2) + "░" * int((self.register.options.confirm_timeout - seconds_left) // 2)
        hint = self.register.options.awaiting_hint
        self._set_state(
            AWAITING,
            "[b]お客様の承認待ち[/b]\nWaiting for the customer to approve on the phone\n\n"
            f"{bar}\n{seconds_left:4.0f} s left  (Esc cancels and reverses)" + (f"\n\n[b]{hint}[/b]" if hint else ""),
        )

    def _show_outcome(self, outcome: PaymentOutcome) -> None:
        self.outcome = outcome
        if outcome.status == PaymentStatus.SUCCEEDED:
            try:
                self.completed = self.register.till.finish_wallet(self.attempt, outcome)
            except Exception as error:
                self._set_state(
                    NOT_RECORDED,
                    "[b]承認済み・未記録  APPROVED, NOT RECORDED[/b]\n\nThe customer has paid, but the register "
                    f"could not record the sale:\n{type(error).__name__}: {error}\n\n"
                    "F5 records it again. Do not take another payment.",
                )
                return
            balance = mask_balance(outcome.balance_after) if outcome.balance_after is not None else "—"
            self.set_focus(None)  # Enter now belongs to the screen: on to the receipt
            self._set_state(
                APPROVED,
                f"[b]✔ 承認  APPROVED[/b]\n\n{format_yen(self.attempt.amount)}\n残高 Balance {balance}\n\n"
                "Enter: receipt",
            )
        elif outcome.status == UNKNOWN:  # the order stays pending: F5 sends it again, a restart asks the core
            unavailable = service_unavailable(outcome)
            if unavailable is not None:
                self._set_state(UNREACHABLE_STATE, f"[b]⚠ 決済サービス停止中  SERVICE UNAVAILABLE[/b]\n\n{unavailable}")
            else:
                self._set_state(UNREACHABLE_STATE, f"[b]⚠ 接続エラー  SERVICE UNREACHABLE[/b]\n\n{UNREACHABLE}")
        elif outcome.status == PaymentStatus.REVERSED:
            self.register.till.settle_wallet(outcome)
            self._set_state(DECLINED, f"[b]取消  REVERSED[/b]\n\n{outcome.message}\nShow a new code to try again.")
        else:
            self.register.till.settle_wallet(outcome)  # declined or refused: nothing charged
            code = outcome.decline_code or outcome.error_code
            reason = decline_reason(code, outcome.message)
            self._set_state(DECLINED, f"[b]✘ 不承認  DECLINED[/b]\n\n{reason}\n\nShow a new code, or Esc.")

    # -- actions -----------------------------------------------------------------------------------

    def action_retry(self) -> None:
        if self.state == UNREACHABLE_STATE and self.code:
            self._send()
        elif self.state == NOT_RECORDED and self.outcome is not None:
            self._show_outcome(self.outcome)

    def action_done(self) -> None:
        if self.state == APPROVED:
            self.dismiss(self.completed)

    def action_cancel(self) -> None:
        if self.state == AWAITING:
            self._cancel.set()
            self._set_state(SENDING, "[b]取消中…[/b]\n\nCancelling: reversing the order…")
        elif self.state == UNREACHABLE_STATE:
            self._set_state(SENDING, "[b]取消中…[/b]\n\nReversing the order before leaving…")
            self._reverse_then_leave()
        elif self.state in (WAITING, DECLINED):
            self.register.till.refresh_display()
            self.dismiss(None)

    @work(thread=True, exclusive=True, group="payment", exit_on_error=False)
    def _reverse_then_leave(self) -> None:
        outcome = self.register.till.client.reverse(self.attempt.order_id)
        if outcome.final and outcome.status != PaymentStatus.SUCCEEDED:
            self.register.till.settle_wallet(outcome)  # closed at the core: nothing charged, nothing pending
            self.app.call_from_thread(self.dismiss, None)
        else:
            self.app.call_from_thread(self._show_outcome, outcome)

    def _set_state(self, state: PayState, text: str) -> None:
        self.state = state
        if self.is_attached:  # else a worker's answer after the screen was closed (the app is quitting)
            self.query_one("#pay-state", Static).update(text)

    def watch_state(self, state: PayState) -> None:
        if not self.is_attached:
            return
        panel = self.query_one("#pay-state", Static)
        for name in _PANEL_CLASSES:
            panel.set_class(state == name, name)
