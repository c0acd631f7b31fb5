"""Payments above the threshold wait for the customer's approval on the phone (WeChat's USERPAYING).

Whatever order approval, denial, expiry and the register's reverse come in, the payment ends final and
no money is lost or taken twice.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from payment_core.core import Core
from protocol import ManualClock, ProtocolError
from terminal.client import PaymentClient
from tests.support import SignedCaller, assert_books_balance, balance, fund_wallet
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

BIG = 12_000  # above the default confirm_above_yen of 10,000


@pytest.fixture
def rich(terminal: SignedCaller, minter: CodeMinter, clock: ManualClock) -> int:
    fund_wallet(terminal, minter, 50_000)
    clock.advance(1)
    return 50_000


@pytest.fixture
def phone(wallet: WalletState, clock: ManualClock) -> Any:
    with WalletClient(wallet.core_url, clock=clock) as client:
        yield client


def _start_big_payment(terminal: SignedCaller, minter: CodeMinter, order_id: str = "ord-big") -> dict[str, Any]:
    response = terminal.pay(order_id, BIG, minter.mint().numeric)
    assert response.status_code == 202, response.text
    data: dict[str, Any] = response.json()
    assert data["status"] == "awaiting_customer"
    return data


def test_a_big_payment_waits_and_moves_nothing_until_approved(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, phone: WalletClient, rich: int
) -> None:
    started = _start_big_payment(terminal, minter)
    assert balance(core, wallet) == rich
    waiting = phone.awaiting(wallet)
    assert [item["id"] for item in waiting] == [started["id"]]
    assert waiting[0]["amount"] == BIG and waiting[0]["store"] == "Shibuya 1-chome"
    assert "confirm_before" in waiting[0]

    approved = phone.confirm(wallet, started["id"], approve=True)
    assert approved["status"] == "succeeded" and approved["balance_after"] == rich - BIG
    assert balance(core, wallet) == rich - BIG
    assert terminal.call("GET", "/v1/orders/ord-big").json()["status"] == "succeeded"
    assert phone.confirm(wallet, started["id"], approve=True)["status"] == "succeeded"  # a repeat replays
    assert phone.awaiting(wallet) == []
    assert_books_balance(core)


def test_a_small_payment_does_not_ask(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, rich: int
) -> None:
    response = terminal.pay("ord-small", 10_000, minter.mint().numeric)
    assert response.status_code == 200 and response.json()["status"] == "succeeded"
    assert balance(core, wallet) == rich - 10_000


def test_the_customer_denies(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, phone: WalletClient, rich: int
) -> None:
    started = _start_big_payment(terminal, minter)
    denied = phone.confirm(wallet, started["id"], approve=False)
    assert (denied["status"], denied["decline_code"]) == ("declined", "customer_declined")
    assert balance(core, wallet) == rich
    with pytest.raises(ProtocolError) as refused:
        phone.confirm(wallet, started["id"], approve=True)
    assert refused.value.code == "payment_not_pending"
    assert balance(core, wallet) == rich


def test_an_approval_after_the_window_is_refused(
    core: Core,
    terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    phone: WalletClient,
    clock: ManualClock,
    rich: int,
) -> None:
    started = _start_big_payment(terminal, minter)
    clock.advance(36)
    assert phone.awaiting(wallet) == []
    with pytest.raises(ProtocolError) as refused:
        phone.confirm(wallet, started["id"], approve=True)
    assert refused.value.code == "payment_not_pending"
    order = terminal.call("GET", "/v1/orders/ord-big").json()
    assert (order["status"], order["decline_code"]) == ("declined", "confirmation_expired")
    assert balance(core, wallet) == rich
    assert {"expired_unanswered", "refused_not_pending"} <= _audit_results(core, started["id"])


def test_an_unanswered_payment_ends_declined_when_the_register_looks_it_up(
    core: Core, terminal: SignedCaller, minter: CodeMinter, clock: ManualClock, rich: int
) -> None:
    """Nobody answers and the register went away: the next lookup closes it (a final state, audited)."""
    _start_big_payment(terminal, minter)
    clock.advance(20)
    assert terminal.call("GET", "/v1/orders/ord-big").json()["status"] == "awaiting_customer"
    clock.advance(16)
    order = terminal.call("GET", "/v1/orders/ord-big").json()
    assert (order["status"], order["decline_code"]) == ("declined", "confirmation_expired")
    again = terminal.call("POST", "/v1/orders/ord-big/reverse", {}).json()
    assert again["status"] == "declined"  # closed already: the reverse has nothing to undo


def test_an_account_frozen_while_waiting_cannot_approve(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, phone: WalletClient, rich: int
) -> None:
    from payment_core import accounts

    started = _start_big_payment(terminal, minter)
    accounts.set_account_status(core, wallet.account_id, "frozen", "test")
    answered = phone.confirm(wallet, started["id"], approve=True)
    assert (answered["status"], answered["decline_code"]) == ("declined", "account_frozen")
    assert balance(core, wallet) == rich


def _audit_results(core: Core, target: str) -> set[str]:
    from sqlalchemy import select

    from payment_core.models import AuditEvent

    with core.transaction() as session:
        return set(session.scalars(select(AuditEvent.result).where(AuditEvent.target == target)))


def test_a_reverse_before_approval_closes_it_and_the_late_approval_is_refused(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, phone: WalletClient, rich: int
) -> None:
    started = _start_big_payment(terminal, minter)
    reversed_ = terminal.call("POST", "/v1/orders/ord-big/reverse", {})
    assert reversed_.json()["status"] == "reversed"
    with pytest.raises(ProtocolError) as refused:
        phone.confirm(wallet, started["id"], approve=True)
    assert refused.value.code == "payment_not_pending"
    assert balance(core, wallet) == rich
    assert_books_balance(core)


def test_a_reverse_after_approval_refunds_in_full(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, phone: WalletClient, rich: int
) -> None:
    started = _start_big_payment(terminal, minter)
    phone.confirm(wallet, started["id"], approve=True)
    reversed_ = terminal.call("POST", "/v1/orders/ord-big/reverse", {}).json()
    assert (reversed_["status"], reversed_["amount_refunded"]) == ("reversed", BIG)
    assert balance(core, wallet) == rich
    assert_books_balance(core)


def test_approval_racing_the_reverse_never_loses_or_doubles_money(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, clock: ManualClock, rich: int
) -> None:
    """Both orders of events end reversed with the wallet whole, on both backends, 10 times."""
    for round_ in range(10):
        order_id = f"ord-race-{round_}"
        started = _start_big_payment(terminal, minter, order_id)
        barrier = threading.Barrier(2)
        answers: dict[str, Any] = {}

        def approve(payment_id: str = started["id"]) -> None:
            with WalletClient(wallet.core_url, clock=clock) as client:
                barrier.wait(timeout=10)
                try:
                    answers["approve"] = client.confirm(wallet, payment_id, approve=True)["status"]
                except ProtocolError as error:
                    answers["approve"] = error.code

        def reverse(order: str = order_id) -> None:
            barrier.wait(timeout=10)
            answers["reverse"] = terminal.call("POST", f"/v1/orders/{order}/reverse", {}).json()["status"]

        threads = [threading.Thread(target=approve), threading.Thread(target=reverse)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert answers["reverse"] == "reversed"
        assert answers["approve"] in {"succeeded", "payment_not_pending"}
        assert balance(core, wallet) == rich
        clock.advance(1)
    assert_books_balance(core)


def test_another_account_cannot_answer(
    core: Core, server: Any, terminal: SignedCaller, minter: CodeMinter, clock: ManualClock, rich: int
) -> None:
    from tests.support import enroll_wallet

    started = _start_big_payment(terminal, minter)
    stranger = enroll_wallet(server.url, clock, "taro@example.jp", core)
    with WalletClient(server.url, clock=clock) as client, pytest.raises(ProtocolError) as refused:
        client.confirm(stranger, started["id"], approve=True)
    assert refused.value.code == "resource_missing"


def test_a_malformed_answer_is_refused(
    terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, phone: WalletClient, rich: int
) -> None:
    started = _start_big_payment(terminal, minter)
    with pytest.raises(ProtocolError) as refused:
        phone.signed(wallet, "POST", f"/v1/wallet/payments/{started['id']}/confirm", {"decision": "maybe"})
    assert refused.value.code == "parameter_invalid"


def test_the_register_client_waits_then_gets_the_approval(
    core: Core,
    server: Any,
    terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    phone: WalletClient,
    clock: ManualClock,
    rich: int,
) -> None:
    ticks: list[float] = []
    with PaymentClient(server.url, terminal.key_id, terminal.secret, clock=clock, sleep=clock.advance) as client:
        outcome = client.pay("ord-wait", BIG, minter.mint().numeric)
        assert outcome.status == "awaiting_customer" and not outcome.final

        def on_tick(seconds_left: float) -> bool:
            ticks.append(seconds_left)
            if len(ticks) == 3:
                phone.confirm(wallet, str(outcome.payment_id), approve=True)
            return False

        final = client.wait_for_customer("ord-wait", on_tick=on_tick)
    assert final.status == "succeeded" and final.amount == BIG
    assert ticks == [30.0, 27.5, 25.0]
    assert balance(core, wallet) == rich - BIG


def test_the_register_client_reverses_after_30_seconds(
    core: Core,
    server: Any,
    terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    phone: WalletClient,
    clock: ManualClock,
    rich: int,
) -> None:
    with PaymentClient(server.url, terminal.key_id, terminal.secret, clock=clock, sleep=clock.advance) as client:
        outcome = client.pay("ord-timeout", BIG, minter.mint().numeric)
        started = clock()
        final = client.wait_for_customer("ord-timeout")
    assert final.status == "reversed" and "did not approve in time" in final.message
    assert (clock() - started).total_seconds() == pytest.approx(30.0)
    with pytest.raises(ProtocolError) as refused:
        phone.confirm(wallet, str(outcome.payment_id), approve=True)
    assert refused.value.code == "payment_not_pending"
    assert balance(core, wallet) == rich
