"""The register's local journal: clerks and PIN sign-in, shifts, sales, voids, refunds and the shift report."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from protocol.clock import ManualClock
from terminal.register_store import (
    Clerk,
    RegisterStore,
    RegisterStoreError,
    SaleRecord,
    SignInRefused,
    TenderTotals,
)

LINES = json.dumps([{"sku": "4901234567894", "name": "お茶", "qty": 1, "price": 150}])


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def store(clock: ManualClock) -> Iterator[RegisterStore]:
    with RegisterStore(":memory:", clock) as s:
        s.clerks.add_clerk("c1", "Sato", "2468")
        yield s


def sell(
    store: RegisterStore, shift_id: int, total: int, tender: str = "wallet", cash: int = 0, order: str | None = None
) -> SaleRecord:
    receipt = store.journal.next_receipt_no()
    wallet = {"wallet": total, "cash": 0, "wallet+cash": total - cash}[tender]
    return store.journal.record_sale(
        receipt_no=receipt,
        shift_id=shift_id,
        order_id=order or f"ord-{receipt}",
        total=total,
        tender=tender,
        wallet_amount=wallet,
        cash_amount=total - wallet,
        payment_id=f"pay-{receipt}" if wallet else None,
        lines_json=LINES,
    )


# -- clerks and sign-in --------------------------------------------------------------------------------------


def test_pin_is_stored_only_as_argon2id_hash(tmp_path: Path, clock: ManualClock) -> None:
    db = tmp_path / "register-T1.db"
    with RegisterStore(db, clock) as s:
        assert s.clerks.add_clerk("c9", "Suzuki", "73915824") == Clerk("c9", "Suzuki")
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("register-T1.db"))
    assert b"73915824" not in raw
    with sqlite3.connect(db) as conn:
        (pin_hash,) = conn.execute("SELECT pin_hash FROM clerks WHERE clerk_id = 'c9'").fetchone()
    conn.close()
    assert pin_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", ""])
def test_pin_must_be_4_to_8_digits(store: RegisterStore, pin: str) -> None:
    with pytest.raises(RegisterStoreError, match="4 to 8 digits"):
        store.clerks.add_clerk("c2", "Ito", pin)
    assert store.clerks.get_clerk("c2") is None


def test_duplicate_clerk_refused(store: RegisterStore) -> None:
    with pytest.raises(RegisterStoreError, match="already taken"):
        store.clerks.add_clerk("c1", "Other", "1357")
    assert store.clerks.sign_in("c1", "2468") == Clerk("c1", "Sato")


def test_sign_in_success_and_wrong_pin(store: RegisterStore) -> None:
    assert store.clerks.sign_in("c1", "2468") == Clerk("c1", "Sato")
    with pytest.raises(SignInRefused) as wrong:
        store.clerks.sign_in("c1", "2469")
    assert (wrong.value.reason, wrong.value.retry_after, str(wrong.value)) == ("invalid", 0, "Clerk id or PIN is wrong")
    assert "2469" not in str(wrong.value)


def test_unknown_clerk_gets_the_same_message(store: RegisterStore) -> None:
    with pytest.raises(SignInRefused) as unknown:
        store.clerks.sign_in("ghost", "2468")
    with pytest.raises(SignInRefused) as wrong:
        store.clerks.sign_in("c1", "0000")
    assert str(unknown.value) == str(wrong.value) == "Clerk id or PIN is wrong"
    assert unknown.value.reason == wrong.value.reason == "invalid"


def test_lockout_after_five_failures_then_unlock(store: RegisterStore, clock: ManualClock) -> None:
    for _ in range(4):
        with pytest.raises(SignInRefused) as refused:
            store.clerks.sign_in("c1", "1111")
        assert refused.value.reason == "invalid"
    with pytest.raises(SignInRefused) as fifth:
        store.clerks.sign_in("c1", "1111")
    assert (fifth.value.reason, fifth.value.retry_after) == ("locked", 300)

    clock.advance(100)
    with pytest.raises(SignInRefused) as right_pin:
        store.clerks.sign_in("c1", "2468")
    assert (right_pin.value.reason, right_pin.value.retry_after) == ("locked", 200)
    assert "200" in str(right_pin.value)

    clock.advance(200)
    assert store.clerks.sign_in("c1", "2468") == Clerk("c1", "Sato")


def test_success_resets_failure_count(store: RegisterStore) -> None:
    for _ in range(4):
        with pytest.raises(SignInRefused):
            store.clerks.sign_in("c1", "1111")
    store.clerks.sign_in("c1", "2468")
    for _ in range(4):
        with pytest.raises(SignInRefused) as refused:
            store.clerks.sign_in("c1", "1111")
        assert refused.value.reason == "invalid"


def test_failures_outside_window_do_not_accumulate(store: RegisterStore, clock: ManualClock) -> None:
    for _ in range(4):
        with pytest.raises(SignInRefused):
            store.clerks.sign_in("c1", "1111")
    clock.advance(301)
    with pytest.raises(SignInRefused) as refused:
        store.clerks.sign_in("c1", "1111")
    assert refused.value.reason == "invalid"


def test_unknown_clerk_ids_are_locked_too(store: RegisterStore) -> None:
    for _ in range(5):
        with pytest.raises(SignInRefused):
            store.clerks.sign_in("ghost", "1111")
    with pytest.raises(SignInRefused) as refused:
        store.clerks.sign_in("ghost", "1111")
    assert refused.value.reason == "locked"
    assert store.clerks.sign_in("c1", "2468").clerk_id == "c1"


def test_lockout_survives_reopening_the_file(tmp_path: Path, clock: ManualClock) -> None:
    db = tmp_path / "r.db"
    with RegisterStore(db, clock, max_pin_failures=2, lockout_seconds=60) as s:
        s.clerks.add_clerk("c1", "Sato", "2468")
        with pytest.raises(SignInRefused):
            s.clerks.sign_in("c1", "0000")
        with pytest.raises(SignInRefused):
            s.clerks.sign_in("c1", "0000")
    with RegisterStore(db, clock, max_pin_failures=2, lockout_seconds=60) as s, pytest.raises(SignInRefused) as r:
        s.clerks.sign_in("c1", "2468")
    assert (r.value.reason, r.value.retry_after) == ("locked", 60)


# -- shifts ----------------------------------------------------------------------------------------------------


def test_shift_open_close_and_second_open_refused(store: RegisterStore, clock: ManualClock) -> None:
    store.clerks.add_clerk("c2", "Ito", "1357")
    assert store.clerks.current_shift() is None
    shift = store.clerks.open_shift("c1")
    assert shift.opened_at == datetime(2026, 1, 1, 9, 0, tzinfo=UTC) and shift.closed_at is None
    assert store.clerks.current_shift() == shift
    with pytest.raises(RegisterStoreError, match=r"c1.*still open"):
        store.clerks.open_shift("c2")
    clock.advance(3600)
    report = store.journal.close_shift(shift.shift_id)
    assert report.closed_at == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert report.closed_at.tzinfo is not None
    assert store.clerks.current_shift() is None
    with pytest.raises(RegisterStoreError, match="already closed"):
        store.journal.close_shift(shift.shift_id)
    second = store.clerks.open_shift("c2")
    assert second.shift_id != shift.shift_id


def test_sale_needs_open_shift(store: RegisterStore) -> None:
    shift = store.clerks.open_shift("c1")
    store.journal.close_shift(shift.shift_id)
    with pytest.raises(RegisterStoreError, match="closed"):
        sell(store, shift.shift_id, 100)
    assert store.journal.recent_sales() == []


# -- sales, voids, refunds and the report ---------------------------------------------------------------------


def test_sale_validation(store: RegisterStore) -> None:
    shift = store.clerks.open_shift("c1")
    base: dict[str, object] = {
        "receipt_no": "T1-X",
        "shift_id": shift.shift_id,
        "order_id": "o1",
        "lines_json": LINES,
        "payment_id": "p1",
    }
    bad = [
        {"total": 100, "tender": "wallet", "wallet_amount": 90, "cash_amount": 0},
        {"total": 100, "tender": "wallet", "wallet_amount": 150, "cash_amount": -50},
        {"total": 100, "tender": "cash", "wallet_amount": 100, "cash_amount": 0},
        {"total": 100, "tender": "card", "wallet_amount": 100, "cash_amount": 0},
    ]
    for case in bad:
        with pytest.raises(RegisterStoreError):
            store.journal.record_sale(**{**base, **case})  # type: ignore[arg-type]
    assert store.journal.get_sale("T1-X") is None


def test_report_counts_and_sums_by_tender(store: RegisterStore) -> None:
    shift = store.clerks.open_shift("c1")
    sell(store, shift.shift_id, 1000)
    sell(store, shift.shift_id, 500, "cash")
    split = sell(store, shift.shift_id, 800, "wallet+cash", cash=300)
    assert (split.wallet_amount, split.cash_amount, split.status) == (500, 300, "completed")
    voided = sell(store, shift.shift_id, 2000)
    assert store.journal.record_void(voided.receipt_no).status == "voided"
    with pytest.raises(RegisterStoreError, match="already voided"):
        store.journal.record_void(voided.receipt_no)
    assert store.journal.refundable(voided.receipt_no) == 0

    report = store.journal.shift_report(shift.shift_id)
    assert (report.sales_count, report.sales_total, report.voided_count) == (3, 2300, 1)
    assert report.by_tender == {"wallet": TenderTotals(2, 1500), "cash": TenderTotals(2, 800)}
    assert (report.refunds_count, report.refunds_total, report.net_total) == (0, 0, 2300)
    assert report.closed_at is None
    assert [s.receipt_no for s in store.journal.recent_sales(2)] == [voided.receipt_no, split.receipt_no]


def test_partial_then_full_refund_and_over_refund(store: RegisterStore, clock: ManualClock) -> None:
    first = store.clerks.open_shift("c1")
    sale = sell(store, first.shift_id, 1000)
    store.journal.close_shift(first.shift_id)
    with pytest.raises(RegisterStoreError, match="Open a shift"):
        store.journal.record_refund(receipt_no=sale.receipt_no, amount=100, tender="wallet", refund_id="r0")

    clock.advance(60)
    second = store.clerks.open_shift("c1")
    part = store.journal.record_refund(
        receipt_no=sale.receipt_no, amount=300, tender="wallet", refund_id="r1", reason="傷"
    )
    assert (part.status, part.refunded, store.journal.refundable(sale.receipt_no)) == ("partially_refunded", 300, 700)
    with pytest.raises(RegisterStoreError, match="only ¥700 is left to refund"):
        store.journal.record_refund(receipt_no=sale.receipt_no, amount=701, tender="wallet", refund_id="r2")
    with pytest.raises(RegisterStoreError):
        store.journal.record_refund(receipt_no=sale.receipt_no, amount=0, tender="wallet", refund_id="r2")
    full = store.journal.record_refund(receipt_no=sale.receipt_no, amount=700, tender="cash", refund_id=None)
    assert (full.status, full.refunded, store.journal.refundable(sale.receipt_no)) == ("refunded", 1000, 0)
    with pytest.raises(RegisterStoreError, match="only ¥0 is left"):
        store.journal.record_refund(receipt_no=sale.receipt_no, amount=1, tender="cash", refund_id=None)
    with pytest.raises(RegisterStoreError, match="refunds"):
        store.journal.record_void(sale.receipt_no)

    # The refunds count in the shift open when they happened, not in the sale's shift.
    old = store.journal.shift_report(first.shift_id)
    assert (old.sales_total, old.refunds_total, old.net_total) == (1000, 0, 1000)
    now = store.journal.close_shift(second.shift_id)
    assert (now.sales_count, now.refunds_count, now.refunds_total, now.net_total) == (0, 2, 1000, -1000)
    assert now.refunds_by_tender == {"wallet": TenderTotals(1, 300), "cash": TenderTotals(1, 700)}


def test_wallet_refund_capped_by_wallet_part(store: RegisterStore) -> None:
    shift = store.clerks.open_shift("c1")
    sale = sell(store, shift.shift_id, 1000, "wallet+cash", cash=600)
    with pytest.raises(RegisterStoreError, match="¥400 was paid by wallet"):
        store.journal.record_refund(receipt_no=sale.receipt_no, amount=500, tender="wallet", refund_id="r1")
    after = store.journal.record_refund(receipt_no=sale.receipt_no, amount=400, tender="wallet", refund_id="r1")
    assert after.refunded == 400


def test_receipt_numbers_monotonic_across_reopen(tmp_path: Path, clock: ManualClock) -> None:
    db = tmp_path / "var" / "register-T7.db"
    with RegisterStore(db, clock, terminal_id="T7") as s:
        assert [s.journal.next_receipt_no() for _ in range(3)] == ["T7-000001", "T7-000002", "T7-000003"]
    with RegisterStore(db, clock, terminal_id="T7") as s:
        assert s.journal.next_receipt_no() == "T7-000004"


def test_receipt_numbers_unique_across_threads(store: RegisterStore) -> None:
    got: list[str] = []

    def take() -> None:
        for _ in range(50):
            got.append(store.journal.next_receipt_no())

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [f"T1-{n:06d}" for n in range(1, 201)]


def test_failed_sale_leaves_nothing_written(tmp_path: Path, clock: ManualClock) -> None:
    with RegisterStore(tmp_path / "r.db", clock) as s:
        s.clerks.add_clerk("c1", "Sato", "2468")
        shift = s.clerks.open_shift("c1")
        sell(s, shift.shift_id, 1000, order="dup")
        before = s.journal.shift_report(shift.shift_id)
        with pytest.raises(RegisterStoreError, match="Order dup is already recorded"):
            sell(s, shift.shift_id, 500, order="dup")
        assert s.journal.shift_report(shift.shift_id) == before
        assert len(s.journal.recent_sales()) == 1
        assert s.journal.next_receipt_no() == "T1-000003"


def test_failed_refund_is_rolled_back_whole(store: RegisterStore) -> None:
    shift = store.clerks.open_shift("c1")
    sale = sell(store, shift.shift_id, 1000)
    # Force a failure after the refund row is inserted: the sale update is refused by a trigger.
    store._conn.execute("CREATE TEMP TRIGGER boom BEFORE UPDATE ON sales BEGIN SELECT RAISE(ABORT, 'boom'); END")
    with pytest.raises(sqlite3.IntegrityError, match="boom"):
        store.journal.record_refund(receipt_no=sale.receipt_no, amount=300, tender="wallet", refund_id="r1")
    store._conn.execute("DROP TRIGGER boom")
    report = store.journal.shift_report(shift.shift_id)
    assert (report.refunds_count, report.refunds_total) == (0, 0)
    assert store.journal.refundable(sale.receipt_no) == 1000
    assert (
        store.journal.record_refund(receipt_no=sale.receipt_no, amount=300, tender="wallet", refund_id="r1").refunded
        == 300
    )


def test_times_are_aware_utc(tmp_path: Path, clock: ManualClock) -> None:
    with RegisterStore(tmp_path / "r.db", clock) as s:
        s.clerks.add_clerk("c1", "Sato", "2468")
        shift = s.clerks.open_shift("c1")
        clock.advance(90)
        sale = sell(s, shift.shift_id, 150)
    with RegisterStore(tmp_path / "r.db", clock) as s:
        got = s.journal.get_sale(sale.receipt_no)
        assert got is not None and got.created_at == datetime(2026, 1, 1, 9, 1, 30, tzinfo=UTC)
        assert got.created_at.utcoffset() is not None and got.lines_json == LINES
        current = s.clerks.current_shift()
        assert current is not None and current.opened_at == datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def test_report_lines_contain_the_figures(store: RegisterStore) -> None:
    shift = store.clerks.open_shift("c1")
    for _ in range(11):
        sell(store, shift.shift_id, 1000)
    cash = sell(store, shift.shift_id, 1340, "cash")
    store.journal.record_refund(receipt_no=cash.receipt_no, amount=340, tender="cash", refund_id=None)
    x_lines = store.journal.shift_report(shift.shift_id).lines()
    assert x_lines[0].startswith("X")
    z_lines = store.journal.close_shift(shift.shift_id).lines()
    text = "\n".join(z_lines)
    assert z_lines[0].startswith("Z")
    assert "売上 Sales  12件  ¥12,340" in text
    assert "電子マネー Wallet  11件  ¥11,000" in text
    assert "現金 Cash  1件  ¥1,340" in text
    assert "返品 Refunds  1件  ¥340" in text
    assert "純売上 Net  ¥12,000" in text
    assert "取消 Voided  0件" in text
