"""A code refused for its time, as the register hears it from a served core: the phone's clock measured in
the 402 answer (the first time and on a replay of the same request), and the clerk's words for it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from payment_core import terminals
from payment_core.core import Core
from payment_core.server import ServerThread
from protocol import ManualClock, PaymentStatus
from terminal.client import PaymentClient
from tests.support import SignedCaller, balance
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState


@pytest.fixture
def register_key(core: Core, server: ServerThread) -> tuple[str, bytes]:
    made = terminals.provision_terminal(core, "Ikebukuro 2-chome", "register-skew", "test")
    return made.terminal.id, made.secret


def phone_off_by(wallet: WalletState, clock: ManualClock, seconds: int) -> CodeMinter:
    return CodeMinter(wallet.device_id, wallet.secret, ManualClock(clock() + timedelta(seconds=seconds)))


def test_the_register_reads_that_the_customers_phone_clock_is_off_and_by_how_much(
    core: Core,
    server: ServerThread,
    register_key: tuple[str, bytes],
    wallet: WalletState,
    funded: int,
    clock: ManualClock,
) -> None:
    """A code from a phone 3 min ahead, one 95 s behind, and a cash top-up with a code 3 min ahead: each is
    declined with the core's measurement, and the clerk is told it is the customer's phone, not the register."""
    terminal_id, secret = register_key
    with PaymentClient(server.url, terminal_id, secret, clock=clock, retries=0) as register:
        ahead = register.pay("phone-ahead", 500, phone_off_by(wallet, clock, 180).mint().numeric)
        behind = register.pay("phone-behind", 500, phone_off_by(wallet, clock, -95).mint().qr)
        topup = register.topup_cash("cash-ahead", 1_000, phone_off_by(wallet, clock, 181).mint().qr)
    assert (ahead.status, ahead.decline_code, ahead.http_status) == (PaymentStatus.DECLINED, "code_not_yet_valid", 402)
    assert ahead.message == (
        "The customer's phone clock is 3 min ahead — ask them to set the time automatically, then show a new code."
    )
    error = (ahead.data or {})["error"]
    assert (error["clock"], error["clock_offset_seconds"], error["tolerance_seconds"]) == ("phone", 180, 30)
    assert datetime.fromisoformat(error["server_time"]) == clock()
    assert ahead.payment_id == error["payment_id"]  # the decline is stored, as before

    assert (behind.decline_code, (behind.data or {})["error"]["clock_offset_seconds"]) == ("code_expired", -95)
    assert behind.message.startswith("This code was made 95 s ago (a code is taken for 90 s) — ask for a new code.")
    assert "the customer's phone clock is about 95 s behind" in behind.message

    assert (topup.status, topup.decline_code) == (PaymentStatus.DECLINED, "code_not_yet_valid")
    assert topup.message.startswith("The customer's phone clock is 3 min 1 s ahead")
    assert balance(core, wallet) == funded


def test_a_replayed_request_gets_the_same_measured_answer(
    core: Core, terminal: SignedCaller, wallet: WalletState, funded: int, clock: ManualClock
) -> None:
    """The register's retry of a lost answer (the same order, the same code) is answered from the stored decline
    with the same measurement, even later: it is the decision's, not the replay's."""
    code = phone_off_by(wallet, clock, 240).mint().numeric
    first = terminal.pay("ahead-once", 500, code)
    clock.advance(20)
    again = terminal.pay("ahead-once", 500, code)
    assert first.status_code == again.status_code == 402
    assert first.json() == again.json()
    assert first.json()["error"]["clock_offset_seconds"] == 240
