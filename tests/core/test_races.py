"""Concurrency: one code, many registers; many payments, one balance. Real server, real databases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from payment_core.core import Core
from tests.support import SignedCaller, assert_books_balance, balance, error_code
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

RACE_ROUNDS = 50
pytestmark = pytest.mark.load_risk  # one phone pays dozens of times a second: no customer's pace


def test_two_registers_one_code_exactly_one_wins(
    core: Core,
    terminal: SignedCaller,
    second_terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    funded: int,
    clock: object,
) -> None:
    wins = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        for round_ in range(RACE_ROUNDS):
            code = minter.mint().qr
            first = pool.submit(terminal.pay, f"a-{round_}", 10, code)
            second = pool.submit(second_terminal.pay, f"b-{round_}", 10, code)
            answers = [first.result(timeout=30), second.result(timeout=30)]
            statuses = sorted(response.status_code for response in answers)
            assert statuses == [200, 402], [response.text for response in answers]
            assert error_code(next(r for r in answers if r.status_code == 402)) == "code_already_used"
            wins += 1
            if round_ % 9 == 8:
                clock.advance(1)  # type: ignore[attr-defined]  # ten codes a second at most
    assert wins == RACE_ROUNDS
    assert balance(core, wallet) == funded - 10 * RACE_ROUNDS
    assert_books_balance(core)


def test_concurrent_payments_never_overdraw(
    core: Core,
    terminal: SignedCaller,
    second_terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    funded: int,
    clock: object,
) -> None:
    """20 payments of 700 yen against 10,000 yen: 14 succeed, 6 are declined, the balance ends at 200."""
    codes = []
    for index in range(20):
        codes.append(minter.mint().qr)
        if index % 10 == 9:
            clock.advance(1)  # type: ignore[attr-defined]
    callers = [terminal, second_terminal]
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(callers[i % 2].pay, f"c-{i}", 700, code) for i, code in enumerate(codes)]
        answers = [future.result(timeout=60) for future in futures]
    succeeded = [r for r in answers if r.status_code == 200]
    declined = [r for r in answers if r.status_code == 402]
    assert len(succeeded) == funded // 700
    assert len(declined) == 20 - funded // 700
    assert {error_code(r) for r in declined} == {"insufficient_funds"}
    assert balance(core, wallet) == funded % 700
    assert_books_balance(core)


def test_payments_and_refunds_between_the_same_books_never_deadlock(
    core: Core,
    terminal: SignedCaller,
    second_terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    funded: int,
    clock: object,
) -> None:
    """A refund moves merchant→wallet while payments move wallet→merchant: both lock in book-id order."""
    first = [terminal.pay(f"p-{i}", 300, minter.mint().qr).json()["id"] for i in range(8)]
    clock.advance(1)  # type: ignore[attr-defined]
    codes = [minter.mint().qr for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        refunds = [
            pool.submit(terminal.call, "POST", f"/v1/payments/{pid}/refunds", {"refund_id": "r"}) for pid in first
        ]
        payments = [pool.submit(second_terminal.pay, f"q-{i}", 200, code) for i, code in enumerate(codes)]
        answers = [future.result(timeout=60) for future in refunds + payments]
    assert [response.status_code for response in answers] == [200] * 16, [
        r.text for r in answers if r.status_code != 200
    ]
    assert balance(core, wallet) == funded - 8 * 200
    assert_books_balance(core)
