"""Clock skew end to end, against a served core: the phone's, the register's and the core's clocks (a
ManualClock each) off by just under their tolerance still pay; beyond it the answer says whose clock is off,
by how much and the core's time, in the register's and the wallet's words; a forged or replayed code is
refused as before, and a forged one learns no clock. A code refused for its time carries the phone's clock as
the core measured it in the 402 answer, the same on a replay of the request, in the clerk's words."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from payment_core import terminals
from payment_core.codes import redeem_code
from payment_core.core import Core
from payment_core.models import CodeFailure
from payment_core.server import ServerThread
from protocol import ErrorCode, ManualClock, PaymentStatus, ProtocolError, damm_digit, mint_code
from protocol.errors import ClockSkew, SkewedClock
from terminal.client import ERROR, PaymentClient
from terminal.receipt import store_time
from tests.support import SignedCaller, balance, error_code
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

CLOCK_FIELDS = {"clock", "clock_offset_seconds", "server_time", "tolerance_seconds"}


@pytest.fixture
def register_key(core: Core, server: ServerThread) -> tuple[str, bytes]:
    made = terminals.provision_terminal(core, "Ikebukuro 2-chome", "register-skew", "test")
    return made.terminal.id, made.secret


def register_at(server: ServerThread, register_key: tuple[str, bytes], clock: ManualClock) -> PaymentClient:
    terminal_id, secret = register_key
    return PaymentClient(server.url, terminal_id, secret, clock=clock, retries=0)


def failures(core: Core) -> int:
    with core.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(CodeFailure)) or 0)


def with_wrong_mac(text: str) -> str:
    """The same device, time and counter with another MAC and a good check digit: what a forger sends."""
    body = text[:-1]
    mac_start = 14 if len(text) == 22 else 20
    mac = body[mac_start:]
    wrong = str((int(mac) + 1) % 10 ** len(mac)).zfill(len(mac))
    changed = body[:mac_start] + wrong
    return changed + damm_digit(changed)


def test_every_clock_off_by_just_under_its_tolerance_still_pays(
    core: Core,
    server: ServerThread,
    register_key: tuple[str, bytes],
    wallet: WalletState,
    funded: int,
    clock: ManualClock,
) -> None:
    """The register's clock off by 119 s (signatures allow 120), the phone's by 29 s (codes allow 30 s ahead),
    the core's by 29 s against both, each ahead and behind: the payment succeeds and the wallet's own signed
    request (its balance) goes through on the phone's clock."""
    signature, skew = core.config.signature_tolerance_seconds, core.config.clock_skew_seconds
    cases = [("register", -(signature - 1)), ("register", signature - 1)]
    cases += [("phone", -(skew - 1)), ("phone", skew - 1), ("core", -(skew - 1)), ("core", skew - 1)]
    start, spent = clock(), 0
    for index, (who, offset) in enumerate(cases):
        true_time = start + timedelta(seconds=100 * index)  # time goes on between cases, never back
        off = {name: timedelta(seconds=offset if name == who else 0) for name in ("register", "phone", "core")}
        clock.set(true_time + off["core"])
        phone_clock = ManualClock(true_time + off["phone"])
        with register_at(server, register_key, ManualClock(true_time + off["register"])) as register:
            code = CodeMinter(wallet.device_id, wallet.secret, phone_clock).mint().numeric
            outcome = register.pay(f"skew-{index}", 100 + index, code)
        assert outcome.status == PaymentStatus.SUCCEEDED, (who, offset, outcome)
        spent += 100 + index
        with WalletClient(server.url, clock=phone_clock) as phone:
            assert phone.balance(wallet) == funded - spent, (who, offset)


def test_a_register_clock_beyond_the_tolerance_is_told_its_own_clock_is_off_and_the_core_time(
    core: Core, server: ServerThread, register_key: tuple[str, bytes], clock: ManualClock
) -> None:
    """The register's request is refused (401 timestamp_stale, as before) and the clerk reads that this
    register's clock is wrong, by how much, and the core's time in the store's zone. Without the register's
    key, a far-off timestamp is signature_invalid: no offset, no core time."""
    core_time = store_time(clock()).strftime("%H:%M:%S")
    for offset, words in ((-200, "3 min 20 s behind the core's"), (150, "2 min 30 s ahead of the core's")):
        with register_at(server, register_key, ManualClock(clock() + timedelta(seconds=offset))) as register:
            outcome = register.pay(f"late-register-{offset}", 500, mint_code(b"k" * 32, 1, clock(), 0).numeric)
        assert (outcome.status, outcome.error_code, outcome.http_status) == (ERROR, "timestamp_stale", 401)
        assert outcome.message == (
            f"This register's clock is {words} (the core's time is {core_time}) — fix the register's time."
        )
        error = (outcome.data or {})["error"]
        assert error["clock"] == "register" and error["clock_offset_seconds"] == offset
        assert error["tolerance_seconds"] == core.config.signature_tolerance_seconds
        assert datetime.fromisoformat(error["server_time"]) == clock()

    terminal_id, _secret = register_key
    with SignedCaller(server.url, terminal_id, b"x" * 32, ManualClock(clock() - timedelta(hours=3))) as forger:
        answer = forger.pay("forged-1", 500, mint_code(b"k" * 32, 1, clock(), 0).numeric)
    assert (answer.status_code, error_code(answer)) == (401, "signature_invalid")
    assert not CLOCK_FIELDS & set(answer.json()["error"])


def test_a_phone_clock_far_off_is_told_by_the_wallet_and_measured_on_its_codes(
    core: Core, server: ServerThread, terminal: SignedCaller, wallet: WalletState, funded: int, clock: ManualClock
) -> None:
    """The phone's own signed request: the wallet says this phone's clock is off, by how much. Its codes, 3 min
    ahead and 95 s old: the core decides code_not_yet_valid and code_expired (the register's status and code,
    unchanged) with the phone's clock measured; neither counts as a guess, and no money moves."""
    for offset, words in ((300, "5 min ahead of"), (-150, "2 min 30 s behind")):
        phone = WalletClient(server.url, clock=ManualClock(clock() + timedelta(seconds=offset)))
        with phone, pytest.raises(ProtocolError) as refused:
            phone.balance(wallet)
        error = refused.value
        assert (error.code, error.status) == (ErrorCode.TIMESTAMP_STALE, 401)
        assert error.message.startswith(f"This phone's clock is {words} the payment service's — set the date and")
        tolerance = core.config.signature_tolerance_seconds
        assert ClockSkew.of(error) == ClockSkew(SkewedClock.PHONE, offset, clock(), tolerance)

    for offset, expected in ((180, ErrorCode.CODE_NOT_YET_VALID), (-95, ErrorCode.CODE_EXPIRED)):
        phone_clock = ManualClock(clock() + timedelta(seconds=offset))
        text = CodeMinter(wallet.device_id, wallet.secret, phone_clock).mint().qr
        with pytest.raises(ProtocolError) as caught, core.transaction() as session:
            redeem_code(session, core.config, terminal.key_id, text, clock())
        assert caught.value.code is expected
        skew = ClockSkew.of(caught.value)
        assert skew is not None and (skew.clock, skew.offset_seconds) == (SkewedClock.PHONE, offset)
        answer = terminal.pay(f"far-{offset}", 100, text)
        assert (answer.status_code, error_code(answer)) == (402, expected.value)
    assert failures(core) == 0
    assert balance(core, wallet) == funded


def test_forged_and_replayed_codes_are_refused_as_before(
    core: Core, terminal: SignedCaller, wallet: WalletState, minter: CodeMinter, funded: int, clock: ManualClock
) -> None:
    """A forged code dated 3 minutes ahead is code_forged with nothing measured, and counts as a guess (the
    MAC comes first); a used code is code_already_used, and once old, code_expired: never paid twice."""
    ahead = CodeMinter(wallet.device_id, wallet.secret, ManualClock(clock() + timedelta(seconds=180))).mint()
    for index, text in enumerate((ahead.numeric, ahead.qr)):
        forged = terminal.pay(f"forged-ahead-{index}", 100, with_wrong_mac(text))
        assert (forged.status_code, error_code(forged)) == (402, "code_forged")
        assert not CLOCK_FIELDS & set(forged.json()["error"])
    assert failures(core) == 2

    code = minter.mint().numeric
    assert terminal.pay("first", 300, code).status_code == 200
    again = terminal.pay("again", 300, code)
    assert (again.status_code, error_code(again)) == (402, "code_already_used")
    clock.advance(core.config.code_ttl_seconds + core.config.clock_skew_seconds + 5)
    late = terminal.pay("late", 300, code)
    assert (late.status_code, error_code(late)) == (402, "code_expired")
    assert balance(core, wallet) == funded - 300
    assert failures(core) == 2


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
