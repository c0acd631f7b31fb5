"""Every way a payment can be refused gets its own error code, and nothing moves when it is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from payment_core import accounts, devices
from payment_core.core import Core
from payment_core.server import ServerThread
from protocol import ManualClock, OffsetClock, damm_digit, mint_code
from tests.support import SignedCaller, assert_books_balance, balance, error_code
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState


def test_a_good_code_moves_exactly_the_amount(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    response = terminal.pay("order-1", 1_280, minter.mint().qr)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["balance_after"] == funded - 1_280
    assert balance(core, wallet) == funded - 1_280
    assert_books_balance(core)


def test_replayed_code_is_refused_even_at_another_register(
    core: Core,
    terminal: SignedCaller,
    second_terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    funded: int,
) -> None:
    code = minter.mint()
    assert terminal.pay("order-1", 500, code.numeric).status_code == 200
    again = second_terminal.pay("order-2", 500, code.numeric)
    other_form = terminal.pay("order-3", 500, code.qr)
    assert (again.status_code, error_code(again)) == (402, "code_already_used")
    assert error_code(other_form) == "code_already_used"
    assert balance(core, wallet) == funded - 500


def test_expired_code_is_refused_without_sleeping(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int, clock: ManualClock
) -> None:
    code = minter.mint()
    clock.advance(60 + 30 + 1)  # the 60 s life plus the tolerated skew, plus one second
    response = terminal.pay("order-1", 500, code.numeric)
    assert (response.status_code, error_code(response)) == (402, "code_expired")
    assert balance(core, wallet) == funded


def test_code_still_valid_at_the_edge_of_its_life(
    terminal: SignedCaller, minter: CodeMinter, funded: int, clock: ManualClock
) -> None:
    code = minter.mint()
    clock.advance(60 + 30)
    assert terminal.pay("order-1", 500, code.qr).status_code == 200


def test_code_from_a_revoked_device_is_refused(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    code = minter.mint()
    devices.revoke_device(core, wallet.device_id, "test")
    response = terminal.pay("order-1", 500, code.qr)
    assert (response.status_code, error_code(response)) == (402, "device_revoked")
    assert balance(core, wallet) == funded


def test_tampered_code_is_refused_as_forged(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    code = minter.mint().numeric
    body = code[:-2] + str((int(code[-2]) + 1) % 10)  # change a MAC digit, then fix the check digit
    forged = body + damm_digit(body)
    response = terminal.pay("order-1", 500, forged)
    assert (response.status_code, error_code(response)) == (402, "code_forged")
    assert balance(core, wallet) == funded


def test_code_minted_with_another_secret_is_forged(
    terminal: SignedCaller, wallet: WalletState, funded: int, clock: ManualClock
) -> None:
    fake = mint_code(b"\x01" * 32, wallet.device_id, clock(), 0)
    assert error_code(terminal.pay("order-1", 500, fake.qr)) == "code_forged"


def test_misread_code_is_a_checksum_error(terminal: SignedCaller, minter: CodeMinter, funded: int) -> None:
    code = minter.mint().numeric
    misread = code[:5] + str((int(code[5]) + 3) % 10) + code[6:]
    response = terminal.pay("order-1", 500, misread)
    assert (response.status_code, error_code(response)) == (400, "code_checksum_failed")


def test_forged_terminal_signature_is_refused(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    response = terminal.call(
        "POST", "/v1/payments", {"order_id": "o-1", "amount": 500, "code": minter.mint().qr}, secret=b"\x00" * 32
    )
    assert (response.status_code, error_code(response)) == (401, "signature_invalid")
    assert balance(core, wallet) == funded


def test_body_changed_after_signing_is_refused(terminal: SignedCaller, minter: CodeMinter, funded: int) -> None:
    signed_for = b'{"order_id":"o-1","amount":1,"code":"x"}'
    body = {"order_id": "o-1", "amount": 9_000, "code": minter.mint().qr}
    response = terminal.call("POST", "/v1/payments", body, sign_body=signed_for)
    assert error_code(response) == "signature_invalid"


def test_stale_timestamp_is_refused(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int, clock: ManualClock
) -> None:
    code = minter.mint().qr
    terminal.clock = OffsetClock(-121, base=clock)  # the register's clock is two minutes behind the core's
    response = terminal.pay("order-1", 500, code)
    assert (response.status_code, error_code(response)) == (401, "timestamp_stale")
    assert balance(core, wallet) == funded


def test_replayed_terminal_nonce_is_refused(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    first = terminal.call(
        "POST", "/v1/payments", {"order_id": "o-1", "amount": 500, "code": minter.mint().qr}, nonce="n1"
    )
    assert first.status_code == 200
    replay = terminal.call(
        "POST", "/v1/payments", {"order_id": "o-2", "amount": 500, "code": minter.mint().qr}, nonce="n1"
    )
    assert (replay.status_code, error_code(replay)) == (401, "nonce_replayed")
    assert balance(core, wallet) == funded - 500


def test_unsigned_and_unknown_terminal_requests_are_refused(terminal: SignedCaller) -> None:
    unsigned = terminal.http.post("/v1/payments", json={"order_id": "o", "amount": 1, "code": "1"})
    assert (unsigned.status_code, error_code(unsigned)) == (401, "signature_missing")
    bogus = terminal.call("GET", "/v1/orders/o", headers={"X-Possim-Key-Id": "term_nobody"})
    assert (bogus.status_code, error_code(bogus)) == (401, "terminal_unknown")


def test_insufficient_funds_declines_and_uses_up_the_code(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    code = minter.mint().qr
    declined = terminal.pay("order-1", funded + 1, code)
    assert (declined.status_code, error_code(declined)) == (402, "insufficient_funds")
    assert declined.json()["error"]["payment_id"].startswith("pay_")
    again = terminal.pay("order-2", 1, code)
    assert error_code(again) == "code_already_used"  # single use even when the payment failed
    assert balance(core, wallet) == funded
    assert_books_balance(core)


def test_frozen_account_is_declined(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    accounts.set_account_status(core, wallet.account_id, "frozen", "test")
    response = terminal.pay("order-1", 100, minter.mint().qr)
    assert error_code(response) == "account_frozen"
    assert balance(core, wallet) == funded


def test_malformed_requests_get_clear_errors(terminal: SignedCaller, minter: CodeMinter) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"order_id": "o-1", "amount": "100", "code": "x"}, "amount"),
        ({"order_id": "o-1", "amount": 1.5, "code": "x"}, "amount"),
        ({"order_id": "bad id with spaces", "amount": 100, "code": "x"}, "order_id"),
        ({"order_id": "o-1", "amount": 100}, "code"),
        ({"order_id": "o-1", "amount": 100, "code": "x", "tip": 5}, "tip"),
    ]
    for body, param in cases:
        response = terminal.call("POST", "/v1/payments", body)
        assert response.status_code == 422, body
        assert response.json()["error"] | {"message": ""} == {
            "type": "invalid_request_error",
            "code": "parameter_invalid",
            "param": param,
            "message": "",
        }
    zero = terminal.pay("o-2", 0, minter.mint().qr)
    assert (zero.status_code, error_code(zero)) == (400, "amount_invalid")


def test_guessing_a_device_is_throttled_at_the_register(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    limit = core.config.limits.terminal_code_failures
    real = minter.mint().numeric
    for attempt in range(limit):
        body = real[:14] + f"{attempt:07d}"
        assert error_code(terminal.pay(f"guess-{attempt}", 100, body + damm_digit(body))) == "code_forged"
    body = real[:14] + "9999999"
    throttled = terminal.pay("guess-last", 100, body + damm_digit(body))
    assert (throttled.status_code, error_code(throttled)) == (429, "code_guessing_throttled")
    assert balance(core, wallet) == funded


def test_a_terminal_spraying_device_numbers_is_throttled(
    core: Core, terminal: SignedCaller, second_terminal: SignedCaller, minter: CodeMinter, funded: int
) -> None:
    """Guesses spread over many devices still count against the one register sending them; a device number
    no phone has answers like a forged code (issue 13: no answer tells which numbers exist)."""
    limit = core.config.limits.terminal_code_failures
    now = minter.mint().numeric  # a time field inside the window: the guesses reach the MAC check
    for attempt in range(limit):
        body = f"38{attempt + 500:07d}" + now[9:21]
        assert error_code(terminal.pay(f"spray-{attempt}", 100, body + damm_digit(body))) == "code_forged"
    paused = terminal.pay("spray-after", 100, minter.mint().qr)
    assert (paused.status_code, error_code(paused)) == (429, "code_guessing_throttled")
    assert second_terminal.pay("other-register", 100, minter.mint().qr).status_code == 200


def test_a_phone_clock_running_ahead_is_not_counted_as_guessing(
    core: Core, terminal: SignedCaller, wallet: WalletState, funded: int, clock: ManualClock
) -> None:
    """A numeric code dated 40 s ahead is not yet valid; it never counts as a failed MAC."""
    from payment_core.models import CodeFailure

    fast_phone = CodeMinter(wallet.device_id, wallet.secret, OffsetClock(40, base=clock))
    response = terminal.pay("fast-1", 100, fast_phone.mint().numeric)
    assert (response.status_code, error_code(response)) == (402, "code_not_yet_valid")
    with core.transaction() as session:
        assert session.query(CodeFailure).count() == 0


def test_a_body_over_64_kib_is_refused_with_413_before_it_is_read(server: ServerThread) -> None:
    """Declared too large, or streamed past the limit without a length: 413 with the error body; a length
    that is not a number is a 422."""
    big = b"{" + b" " * (64 * 1024) + b"}"

    def chunks() -> Iterator[bytes]:
        yield big

    with httpx.Client(base_url=server.url, timeout=30) as client:
        declared = client.post("/v1/payments", content=big, headers={"content-type": "application/json"})
        streamed = client.post("/v1/payments", content=chunks(), headers={"content-type": "application/json"})
    for answer in (declared, streamed):
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["code"] == "body_too_large"
        assert answer.json()["error"]["type"] == "invalid_request_error"
