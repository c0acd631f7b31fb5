"""Holes found in review, each pinned: guessing through top-ups, racing duplicates, reserved keys, limits."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from payment_core import accounts, terminals
from payment_core.auth import RequestAuthenticator
from payment_core.config import CoreConfig
from payment_core.core import Core
from payment_core.models import CodeFailure
from payment_core.server import ServerThread
from protocol import ManualClock, ProtocolError, damm_digit
from tests.support import SignedCaller, assert_books_balance, balance, error_code, fresh_otp
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState


def forged_numeric(real: str, guess: int) -> str:
    body = real[:14] + f"{guess:07d}"
    return body + damm_digit(body)


def test_guessing_through_cash_topups_is_recorded_and_throttled(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState
) -> None:
    real = minter.mint().numeric
    limit = core.config.limits.terminal_code_failures  # counted against the register sending them
    for guess in range(limit):
        body = {"topup_id": f"g-{guess}", "amount": 1_000, "code": forged_numeric(real, guess)}
        answer = terminal.call("POST", "/v1/topups/cash", body)
        assert (answer.status_code, error_code(answer)) == (402, "code_forged")
    last = terminal.call("POST", "/v1/topups/cash", {"topup_id": "g-last", "amount": 1_000, "code": real})
    assert (last.status_code, error_code(last)) == (429, "code_guessing_throttled")
    with core.transaction() as session:
        assert session.query(CodeFailure).count() == limit
    assert balance(core, wallet) == 0


def test_concurrent_guesses_never_pass_the_limit(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    real = minter.mint().numeric
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda g: terminal.pay(f"burst-{g}", 100, forged_numeric(real, g)), range(32)))
    codes = [error_code(answer) for answer in answers]
    assert codes.count("code_forged") == core.config.limits.terminal_code_failures
    assert codes.count("code_guessing_throttled") == 32 - core.config.limits.terminal_code_failures


def test_a_refund_named_reversal_does_not_block_the_reverse(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int
) -> None:
    paid = terminal.pay("o-rev", 1_000, minter.mint().qr).json()
    part = terminal.call("POST", f"/v1/payments/{paid['id']}/refunds", {"refund_id": "reversal", "amount": 100})
    assert part.status_code == 200
    reversed_ = terminal.call("POST", "/v1/orders/o-rev/reverse", {})
    assert (reversed_.status_code, reversed_.json()["status"], reversed_.json()["amount_refunded"]) == (
        200,
        "reversed",
        1_000,
    )
    assert balance(core, wallet) == funded
    assert_books_balance(core)


def test_duplicate_cash_topups_racing_each_other_credit_once_and_all_succeed(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState
) -> None:
    body = {"topup_id": "cash-dup", "amount": 3_000, "code": minter.mint().numeric}
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _i: terminal.call("POST", "/v1/topups/cash", body), range(8)))
    assert [answer.status_code for answer in answers] == [200] * 8, [a.text for a in answers]
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert balance(core, wallet) == 3_000


@pytest.mark.load_risk  # eight top-ups at once into one wallet: a race, not a customer's pace
def test_first_topups_on_a_new_database_do_not_collide(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, clock: ManualClock
) -> None:
    codes = [minter.mint().numeric for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda i: terminal.call(
                    "POST", "/v1/topups/cash", {"topup_id": f"first-{i}", "amount": 50_000, "code": codes[i]}
                ),
                range(8),
            )
        )
    # Eight at once on an empty database: none collides on a book or a key, and the daily sum (200,000 yen)
    # holds under the race (the account's row lock): exactly four go through, four are declined.
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 4 + [402] * 4, [a.text for a in answers]
    assert {error_code(a) for a in answers if a.status_code != 200} == {"limit_exceeded"}
    assert balance(core, wallet) == core.config.limits.topup_daily_sum_yen == 200_000


def test_a_frozen_account_takes_no_topups(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, clock: ManualClock
) -> None:
    accounts.set_account_status(core, wallet.account_id, "frozen", "test")
    cash = terminal.call("POST", "/v1/topups/cash", {"topup_id": "f-1", "amount": 1_000, "code": minter.mint().numeric})
    assert (cash.status_code, error_code(cash)) == (402, "account_frozen")
    with WalletClient(wallet.core_url, clock=clock) as client, pytest.raises(ProtocolError) as card:
        client.topup_card(wallet, 1_000, "4242424242424242", fresh_otp(core, clock, wallet.account_id), topup_id="f-2")
    assert (card.value.status, card.value.code) == (402, "account_frozen")
    assert balance(core, wallet) == 0


def test_nonces_outlive_any_configured_tolerance(core: Core) -> None:
    config = CoreConfig(db_url="sqlite://", server_key=secrets.token_bytes(32), signature_tolerance_seconds=600)
    assert RequestAuthenticator(Core(config, engine=core.engine))._retention_seconds >= 2 * 600 + 60


def test_oversized_bodies_and_unknown_routes_get_stripe_shaped_errors(
    server: ServerThread, terminal: SignedCaller
) -> None:
    big = httpx.post(f"{server.url}/v1/accounts", content=b"x" * (65 * 1024), timeout=30)
    assert (big.status_code, big.json()["error"]["code"]) == (413, "body_too_large")
    missing = httpx.get(f"{server.url}/v1/nope", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"
    wrong = httpx.delete(f"{server.url}/v1/payments", timeout=30)
    assert wrong.status_code == 405 and wrong.json()["error"]["type"] == "invalid_request_error"
    long_order = terminal.call("POST", "/v1/orders/" + "a" * 80 + "/reverse", {})
    assert (long_order.status_code, error_code(long_order)) == (422, "parameter_invalid")


def test_provisioned_secrets_stay_out_of_reprs(core: Core) -> None:
    made = terminals.provision_terminal(core, "Store", "reg", "test")
    assert made.secret.hex() not in repr(made) and repr(made.secret) not in repr(made)
