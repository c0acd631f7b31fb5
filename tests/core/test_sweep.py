"""Payments nobody answered are closed by a sweep, so none stays ``awaiting_customer``: by the operator
(``sweep_unanswered``) or by the server's own ``Sweeper`` thread. Nothing moves; each closing is audited;
an approval after the sweep is refused. Real cores on both stores and a real server; the clock is moved."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text

from payment_core.core import Core
from payment_core.models import AWAITING_CUSTOMER_ROWS, AuditEvent, Payment
from payment_core.sweep import _WAITING, ACTION, Sweeper, sweep_unanswered
from protocol import ErrorCode, ManualClock, PaymentStatus, ProtocolError
from tests.support import SignedCaller, assert_books_balance, balance, fund_wallet
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

BIG = 12_000  # above confirm_above_yen: the payment waits for the phone


@pytest.fixture
def rich(terminal: SignedCaller, minter: CodeMinter, clock: ManualClock) -> int:
    fund_wallet(terminal, minter, 50_000)
    clock.advance(1)
    return 50_000


def _waiting(terminal: SignedCaller, minter: CodeMinter, order_id: str) -> str:
    response = terminal.pay(order_id, BIG, minter.mint().numeric)
    assert response.status_code == 202 and response.json()["status"] == "awaiting_customer"
    payment_id: str = response.json()["id"]
    return payment_id


def _status(core: Core, payment_id: str) -> tuple[str, str | None]:
    with core.transaction() as session:
        payment = session.get_one(Payment, payment_id)
        return payment.status, payment.decline_code


def _audited(core: Core, action: str) -> list[dict[str, Any]]:
    with core.transaction() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        return [{"actor": e.actor, "target": e.target, "result": e.result, **json.loads(e.detail)} for e in events]


def test_a_sweep_closes_every_payment_past_its_window_and_no_other(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, rich: int, clock: ManualClock
) -> None:
    window = core.config.limits.confirm_window_seconds
    old = _waiting(terminal, minter, "sweep-old")
    clock.advance(window - 5)
    young = _waiting(terminal, minter, "sweep-young")
    clock.advance(5)  # the old one's window is over; the young one has window - 5 seconds left
    assert sweep_unanswered(core, actor="admin:kato") == [old]
    assert _status(core, old) == ("declined", "confirmation_expired")
    assert _status(core, young) == ("awaiting_customer", None)
    assert sweep_unanswered(core) == []  # nothing more is due, and nothing is closed twice
    clock.advance(window)
    assert sweep_unanswered(core) == [young]
    assert _status(core, young) == ("declined", "confirmation_expired")
    closings = [event for event in _audited(core, "confirm") if event["result"] == "expired_unanswered"]
    assert [event["target"] for event in closings] == [old, young]
    assert _audited(core, ACTION) == [
        {"actor": "admin:kato", "target": "payments", "result": "succeeded", "closed": 1}
    ]  # the operator's sweep is audited; the unattended ones are audited by the payments they close
    assert balance(core, wallet) == rich  # nothing moved
    assert_books_balance(core)
    with WalletClient(wallet.core_url, clock=clock) as phone, pytest.raises(ProtocolError) as late:
        phone.confirm(wallet, old, approve=True)
    assert late.value.code == ErrorCode.PAYMENT_NOT_PENDING
    assert balance(core, wallet) == rich


def test_the_servers_sweeper_closes_them_on_its_own_and_stops_cleanly(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, rich: int, clock: ManualClock
) -> None:
    sweeper = Sweeper(core, every_seconds=3600).start()  # woken by the test rather than waited for
    try:
        payment_id = _waiting(terminal, minter, "sweep-thread")
        sweeper.sweep_now()
        assert _status(core, payment_id) == ("awaiting_customer", None) and sweeper.closed == 0
        clock.advance(core.config.limits.confirm_window_seconds)
        runs = sweeper.sweep_now()
        assert runs >= 2 and sweeper.closed == 1
        assert _status(core, payment_id) == ("declined", "confirmation_expired")
    finally:
        sweeper.stop()
    assert not sweeper.alive
    assert balance(core, wallet) == rich


def test_the_sweep_reads_the_waiting_payments_from_their_own_index(core: Core) -> None:
    """The sweep runs every few seconds, on SQLite holding the one writer: it must read the few waiting
    payments, not scan every payment ever made (a 1M-entry ledger had the registers' p99 at 2.2 s)."""
    assert f"status = '{PaymentStatus.AWAITING_CUSTOMER.value}'" == AWAITING_CUSTOMER_ROWS
    cutoff = datetime(2026, 11, 29, tzinfo=UTC)
    with core.transaction() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SET LOCAL enable_seqscan = off"))  # a small table: ask whether the index can serve
            explain = "EXPLAIN "
        else:
            explain = "EXPLAIN QUERY PLAN "
        dialect = session.get_bind().dialect
        compiled = _WAITING.compile(dialect=dialect)
        values = compiled.params | {"cutoff": cutoff.replace(tzinfo=None)}  # stored as naive UTC
        if dialect.positional:
            values = {**values, "cutoff": str(values["cutoff"])}
            arguments: Any = tuple(values[name] for name in compiled.positiontup or ())
        else:
            arguments = values
        plan = session.connection().exec_driver_sql(explain + compiled.string, arguments).all()
    described = " ".join(str(part) for row in plan for part in row)
    assert "ix_payments_awaiting" in described
    assert "SCAN payments" not in described and "Seq Scan" not in described
