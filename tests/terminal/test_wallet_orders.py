"""Wallet orders in the register's file: written down before sending, settled with the outcome (the sale and
its order in one transaction), a shift not closed over a pending one, an older file migrated on open; what
the clerk reads of a reconciliation and of a 503."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hardware.customer_display import MemoryDisplay
from hardware.printer import dummy_printer
from protocol import ManualClock, PaymentStatus
from terminal.catalog import Catalog
from terminal.client import ERROR, UNKNOWN, PaymentClient, PaymentOutcome
from terminal.reconcile import Reconciliation, Settlement
from terminal.register.texts import retry_after_seconds, service_unavailable
from terminal.register_store import RegisterStore, RegisterStoreError
from terminal.till import Till
from terminal.wallet_orders import WalletOrder

CLERK_ID, CLERK_PIN = "1001", "2580"
NOW = datetime(2026, 11, 22, 3, 15, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RegisterStore]:
    with RegisterStore(tmp_path / "register.db", ManualClock(NOW), terminal_id="R1") as opened:
        opened.clerks.add_clerk(CLERK_ID, "Sato", CLERK_PIN)
        yield opened


def _begin(store: RegisterStore, shift_id: int, order_id: str = "R1-000001-1", amount: int = 300) -> WalletOrder:
    return store.wallet_orders.begin(
        order_id=order_id, receipt_no=order_id.rsplit("-", 1)[0], shift_id=shift_id, amount=amount, lines_json="[]"
    )


def _record(store: RegisterStore, shift_id: int, order_id: str = "R1-000001-1", amount: int = 300) -> None:
    store.journal.record_sale(
        receipt_no=order_id.rsplit("-", 1)[0],
        shift_id=shift_id,
        order_id=order_id,
        total=amount,
        tender="wallet",
        wallet_amount=amount,
        cash_amount=0,
        payment_id="pay_1",
        lines_json="[]",
    )


def test_an_order_is_pending_until_settled_and_a_retry_is_the_same_order(store: RegisterStore) -> None:
    shift = store.clerks.open_shift(CLERK_ID)
    first = _begin(store, shift.shift_id)
    assert first.pending and store.wallet_orders.pending() == [first]
    assert _begin(store, shift.shift_id) == first  # F5: the same order id again
    with pytest.raises(RegisterStoreError, match="another receipt or amount"):
        _begin(store, shift.shift_id, amount=301)

    assert store.wallet_orders.settle(first.order_id, "declined", payment_id="pay_9", note="insufficient_funds")
    settled = store.wallet_orders.get(first.order_id)
    assert settled is not None and (settled.state, settled.payment_id, settled.note) == (
        "declined",
        "pay_9",
        "insufficient_funds",
    )
    assert settled.settled_at == NOW
    assert not store.wallet_orders.settle(first.order_id, "reversed")  # only a pending order is settled
    with pytest.raises(RegisterStoreError, match="already declined"):
        _begin(store, shift.shift_id)  # a new try needs a new order id
    with pytest.raises(RegisterStoreError):
        store.wallet_orders.settle(first.order_id, "paid")  # paid only with its sale
    assert store.wallet_orders.pending_count() == 0


def test_the_sale_and_its_order_are_written_in_one_transaction(store: RegisterStore) -> None:
    shift = store.clerks.open_shift(CLERK_ID)
    _begin(store, shift.shift_id)
    # The order's update fails inside the sale's transaction (as a full disk would): the sale is not kept either.
    store._conn.execute(
        "CREATE TEMP TRIGGER no_update BEFORE UPDATE ON wallet_orders BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    with pytest.raises(sqlite3.DatabaseError, match="disk full"):
        _record(store, shift.shift_id)
    assert store.journal.get_sale("R1-000001") is None
    assert store.wallet_orders.pending_count() == 1

    store._conn.execute("DROP TRIGGER no_update")
    _record(store, shift.shift_id)
    order = store.wallet_orders.get("R1-000001-1")
    assert order is not None and (order.state, order.payment_id) == ("paid", "pay_1")
    assert store.journal.get_sale("R1-000001") is not None


def test_a_shift_with_a_pending_order_cannot_close(store: RegisterStore) -> None:
    shift = store.clerks.open_shift(CLERK_ID)
    _begin(store, shift.shift_id)
    with pytest.raises(RegisterStoreError, match="1 wallet payment of this shift is still pending"):
        store.journal.close_shift(shift.shift_id)
    store.wallet_orders.settle("R1-000001-1", "reversed")
    assert store.journal.close_shift(shift.shift_id).closed_at == NOW


def test_a_register_file_from_before_wallet_orders_gains_the_table_and_keeps_its_sales(tmp_path: Path) -> None:
    path = tmp_path / "old-register.db"
    with RegisterStore(path, ManualClock(NOW), terminal_id="R1") as old:
        old.clerks.add_clerk(CLERK_ID, "Sato", CLERK_PIN)
        shift = old.clerks.open_shift(CLERK_ID)
        old.journal.record_sale(
            receipt_no="R1-000001",
            shift_id=shift.shift_id,
            order_id="R1-000001-cash",
            total=300,
            tender="cash",
            wallet_amount=0,
            cash_amount=300,
            payment_id=None,
            lines_json="[]",
        )
        old._conn.execute("DROP TABLE wallet_orders")  # the file as an older register left it
    with RegisterStore(path, ManualClock(NOW), terminal_id="R1") as reopened:
        assert reopened.journal.get_sale("R1-000001") is not None
        assert reopened.wallet_orders.pending() == []
        _begin(reopened, shift.shift_id, "R1-000002-1")
        assert reopened.wallet_orders.pending_count() == 1


def test_the_till_settles_what_will_not_be_a_sale_and_leaves_the_unknown_pending(
    store: RegisterStore, tmp_path: Path
) -> None:
    catalog = Catalog.default()
    product = next(p for p in catalog if not p.age_restricted)
    with PaymentClient("http://127.0.0.1:9", "T1", b"k" * 32) as client:  # never called here
        till = Till(
            store,
            catalog,
            client,
            dummy_printer(tmp_path / "r.escpos"),
            MemoryDisplay(),
            store_name="s",
            terminal_id="R1",
        )
        till.sign_in(CLERK_ID, CLERK_PIN)
        for status, state in (
            (PaymentStatus.DECLINED, "declined"),
            (PaymentStatus.REVERSED, "reversed"),
            (ERROR, "refused"),
            (UNKNOWN, "pending"),
            (PaymentStatus.AWAITING_CUSTOMER, "pending"),
        ):
            till.new_sale()
            till.scan(product.jan)
            attempt = till.start_payment()
            till.begin_wallet(attempt)
            written = store.wallet_orders.get(attempt.order_id)
            assert written is not None and json.loads(written.lines_json)[0][0] == product.jan
            till.settle_wallet(PaymentOutcome(status, attempt.order_id))
            settled = store.wallet_orders.get(attempt.order_id)
            assert settled is not None and settled.state == state, status
    assert till.pending_count() == 2


def _settlement(n: int, result: str, answered: bool = True) -> Settlement:
    order = WalletOrder(f"R1-00000{n}-1", f"R1-00000{n}", 1, 100 * n, "[]", "pending", None, NOW, None, "")
    return Settlement(order, result, "why.", answered=answered)


def test_the_summary_says_what_was_done_in_one_line() -> None:
    assert Reconciliation().summary() == ""
    done = Reconciliation((_settlement(3, "paid"), _settlement(4, "reversed")))
    assert done.summary() == "2 pending payments found: 1 recorded as paid (receipt R1-000003), 1 reversed"
    mixed = Reconciliation((_settlement(1, "declined"), _settlement(2, "pending", answered=False)))
    assert mixed.summary() == (
        "2 pending payments found: 1 declined, 1 still pending: the payment service cannot be reached; "
        "checked again at the next start or F9"
    )
    assert _settlement(2, "pending").line() == "R1-000002-1 (receipt R1-000002, ¥200): still pending — why."


def test_a_503_tells_the_clerk_when_to_try_again() -> None:
    def answered(status: int | None, code: str, retry_after: object = None) -> PaymentOutcome:
        error: dict[str, object] = {"code": code}
        if retry_after is not None:
            error["retry_after"] = retry_after
        return PaymentOutcome(UNKNOWN, "R1-000001-1", error_code=code, http_status=status, data={"error": error})

    told = service_unavailable(answered(503, "service_unavailable", 7))
    assert told is not None and "Try again in 7 s" in told and "F5" in told and "nothing is recorded as paid" in told
    assert "Try again in a moment" in (service_unavailable(answered(503, "service_unavailable")) or "")
    assert retry_after_seconds(answered(503, "service_unavailable", True)) is None  # not a number of seconds
    assert retry_after_seconds(answered(503, "service_unavailable", 10**9)) is None
    assert service_unavailable(answered(None, "service_unavailable")) is None  # no answer: unreachable instead
    assert service_unavailable(answered(503, "service_paused")) is None  # a kill switch says its own words
