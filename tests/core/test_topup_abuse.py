"""Issue 13, part 2: what a stranger can do with payment codes seen on the owner's screen.

A code is good for about 90 s to anyone who sees it. Before: two 1-yen cash top-ups with seen codes used
up two of the owner's three top-ups of the day. Now every top-up is at least ``topup_min_yen``, cash at a
register does not count against the owner's card and bank top-ups, and a code alone pays no more than
``confirm_above_yen``. Each test plays the stranger, then the owner.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from payment_core.core import Core
from payment_core.models import AuditEvent, Topup
from protocol import ManualClock, ProtocolError, format_yen
from tests.support import SignedCaller, balance, error_code, fresh_otp, fund_wallet
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

CARD = "4242424242424242"


@pytest.fixture
def phone(wallet: WalletState, clock: ManualClock) -> Any:
    with WalletClient(wallet.core_url, clock=clock) as client:
        yield client


def cash(terminal: SignedCaller, topup_id: str, amount: int, code: str) -> Any:
    return terminal.call("POST", "/v1/topups/cash", {"topup_id": topup_id, "amount": amount, "code": code})


def test_a_top_up_below_the_minimum_is_refused_and_spends_nothing(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, phone: WalletClient, clock: ManualClock
) -> None:
    """1 yen in cash, or 999 by card: refused with the minimum in words, before the code or the TOTP is used."""
    least = core.config.limits.topup_min_yen
    seen = minter.mint().numeric
    tiny = cash(terminal, "tiny", 1, seen)
    assert (tiny.status_code, error_code(tiny)) == (400, "amount_invalid")
    assert tiny.json()["error"]["message"] == f"A top-up is at least {format_yen(least)}."
    assert tiny.json()["error"]["param"] == "amount"
    with core.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Topup)) == 0  # nothing stored, nothing to replay
    assert cash(terminal, "enough", least, seen).status_code == 200  # the same code still works

    otp = fresh_otp(core, clock, wallet.account_id)
    with pytest.raises(ProtocolError) as card:
        phone.topup_card(wallet, least - 1, CARD, otp)
    assert (card.value.status, card.value.code) == (400, "amount_invalid")
    assert phone.topup_card(wallet, least, CARD, otp)["status"] == "succeeded"  # the TOTP code was not burned
    assert balance(core, wallet) == 2 * least


def test_strangers_with_seen_codes_cannot_use_up_the_owners_top_ups(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, phone: WalletClient, clock: ManualClock
) -> None:
    """More cash top-ups with seen codes than the owner's daily count: each costs the stranger the minimum,
    paid to the owner, and the owner's card top-ups of the day are all still there."""
    limits = core.config.limits
    strangers = limits.topup_daily_count + 2
    for n in range(strangers):
        answer = cash(terminal, f"stranger-{n}", limits.topup_min_yen, minter.mint().numeric)
        assert answer.status_code == 200, answer.text
        clock.advance(61)  # a minute apart: the top-up velocity rule (per minute) is not what this is about
    for n in range(limits.topup_daily_count):
        made = phone.topup_card(wallet, 5_000, CARD, fresh_otp(core, clock, wallet.account_id), topup_id=f"own-{n}")
        assert made["status"] == "succeeded"
    with pytest.raises(ProtocolError) as fourth:
        phone.topup_card(wallet, 5_000, CARD, fresh_otp(core, clock, wallet.account_id), topup_id="own-more")
    assert (fourth.value.code, fourth.value.status) == ("limit_exceeded", 402)
    assert f"{limits.topup_daily_count} top-ups a day by card or bank" in fourth.value.message
    assert balance(core, wallet) == strangers * limits.topup_min_yen + limits.topup_daily_count * 5_000
    with core.transaction() as session:
        by_register = session.scalar(
            select(func.count()).where(AuditEvent.action == "topup.cash", AuditEvent.actor == terminal.key_id)
        )
    assert by_register == strangers  # every one of them audited, against the register that took the cash


def test_filling_the_owners_daily_sum_with_cash_costs_the_whole_sum(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, phone: WalletClient, clock: ManualClock
) -> None:
    """The daily sum still counts cash (it bounds what reaches a wallet however it comes): a stranger can only
    fill it by handing the owner all of it."""
    limits = core.config.limits
    left = limits.topup_daily_sum_yen
    n = 0
    while left:
        part = min(left, limits.topup_max_yen)
        assert cash(terminal, f"fill-{n}", part, minter.mint().numeric).status_code == 200
        left, n = left - part, n + 1
    over = cash(terminal, "one-more", limits.topup_min_yen, minter.mint().numeric)
    assert (over.status_code, error_code(over)) == (402, "limit_exceeded")
    assert balance(core, wallet) == limits.topup_daily_sum_yen  # all of it the stranger's cash, now the owner's

    clock.advance(24 * 3600)  # a day later the owner tops up as usual
    assert phone.topup_card(wallet, 5_000, CARD, fresh_otp(core, clock, wallet.account_id))["status"] == "succeeded"


def test_a_seen_code_alone_pays_at_most_the_confirmation_threshold(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, clock: ManualClock
) -> None:
    """What a code is worth to whoever sees it: one payment up to ``confirm_above_yen``; above it the phone must
    approve, and nothing moves until it does."""
    fund_wallet(terminal, minter, 50_000)
    clock.advance(1)
    threshold = core.config.limits.confirm_above_yen
    big = terminal.pay("stranger-big", threshold + 1, minter.mint().numeric)
    assert (big.status_code, big.json()["status"]) == (202, "awaiting_customer")
    assert balance(core, wallet) == 50_000
    small = terminal.pay("stranger-small", threshold, minter.mint().numeric)
    assert (small.status_code, small.json()["status"]) == (200, "succeeded")
    assert balance(core, wallet) == 50_000 - threshold
