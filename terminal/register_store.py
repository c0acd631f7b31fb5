"""The register's own journal: clerks, shifts, sales, refunds and the shift report, on stdlib ``sqlite3``.

One file per register (``var/register-T1.db``; ``":memory:"`` in tests). The payment core holds the money;
this store holds what the till needs locally: receipt numbers, what was sold, how it was paid, what was
refunded. Every write is one ``BEGIN IMMEDIATE`` transaction, so a failure leaves nothing half written and
two processes on one file cannot interleave a check and its write. Times are stored as ISO-8601 UTC text.

Clerk PINs are kept only as argon2id hashes (the ``PIN_HASH_*`` constants), checked with argon2's constant-time
verify, never logged and never echoed in a message. Sign-in is throttled per clerk id, known or not.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Final

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from protocol.clock import Clock, system_clock
from protocol.money import format_yen
from terminal.register_records import (
    REFUND_TENDERS,
    TENDERS,
    Clerk,
    RegisterStoreError,
    SaleRecord,
    Shift,
    ShiftReport,
    SignInRefused,
    TenderTotals,
    format_receipt_no,
)

__all__ = [
    "Clerk",
    "RegisterStore",
    "RegisterStoreError",
    "SaleRecord",
    "Shift",
    "ShiftReport",
    "SignInRefused",
    "TenderTotals",
    "format_receipt_no",
]

# OWASP Password Storage Cheat Sheet minimum for argon2id: m=19 MiB, t=2, p=1 (about 30 ms here).
PIN_HASH_TIME_COST: Final = 2
PIN_HASH_MEMORY_KIB: Final = 19456
PIN_HASH_PARALLELISM: Final = 1
_PIN_RE: Final = re.compile(r"[0-9]{4,8}")
_CLERK_ID_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,32}")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS clerks (
    clerk_id TEXT PRIMARY KEY, name TEXT NOT NULL, pin_hash TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sign_in_failures (
    clerk_id TEXT PRIMARY KEY, failures INTEGER NOT NULL, first_failure_at TEXT NOT NULL, locked_until TEXT);
CREATE TABLE IF NOT EXISTS shifts (
    shift_id INTEGER PRIMARY KEY AUTOINCREMENT, clerk_id TEXT NOT NULL REFERENCES clerks(clerk_id),
    opened_at TEXT NOT NULL, closed_at TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_shift ON shifts ((1)) WHERE closed_at IS NULL;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters (name, value) VALUES ('receipt', 0);
CREATE TABLE IF NOT EXISTS sales (
    receipt_no TEXT PRIMARY KEY, shift_id INTEGER NOT NULL REFERENCES shifts(shift_id),
    order_id TEXT NOT NULL UNIQUE, total INTEGER NOT NULL CHECK (total > 0),
    tender TEXT NOT NULL, wallet_amount INTEGER NOT NULL CHECK (wallet_amount >= 0),
    cash_amount INTEGER NOT NULL CHECK (cash_amount >= 0), payment_id TEXT, lines_json TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL, refunded INTEGER NOT NULL DEFAULT 0,
    CHECK (wallet_amount + cash_amount = total), CHECK (refunded BETWEEN 0 AND total));
CREATE TABLE IF NOT EXISTS refunds (
    id INTEGER PRIMARY KEY AUTOINCREMENT, receipt_no TEXT NOT NULL REFERENCES sales(receipt_no),
    shift_id INTEGER NOT NULL REFERENCES shifts(shift_id), amount INTEGER NOT NULL CHECK (amount > 0),
    tender TEXT NOT NULL, refund_id TEXT, reason TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS refunds_by_shift ON refunds (shift_id);
CREATE INDEX IF NOT EXISTS sales_by_shift ON sales (shift_id);
"""
_SALE_COLUMNS: Final = (
    "receipt_no, shift_id, order_id, total, tender, wallet_amount, cash_amount, payment_id, lines_json, "
    "status, created_at, refunded"
)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise RegisterStoreError("clock returned a naive datetime; times must be aware UTC")
    return moment.astimezone(UTC).isoformat()


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher(
        time_cost=PIN_HASH_TIME_COST, memory_cost=PIN_HASH_MEMORY_KIB, parallelism=PIN_HASH_PARALLELISM, type=Type.ID
    )


@cache
def _dummy_hash() -> str:
    """A hash of no real PIN, verified against for unknown clerk ids so they take as long as known ones."""
    return _hasher().hash("dummy-pin-for-unknown-clerks")


class RegisterStore:
    def __init__(
        self,
        path: str | Path,
        clock: Clock = system_clock,
        *,
        terminal_id: str = "T1",
        max_pin_failures: int = 5,
        lockout_seconds: int = 300,
    ) -> None:
        if max_pin_failures < 1 or lockout_seconds < 1:
            raise ValueError("max_pin_failures and lockout_seconds must be positive")
        self._clock = clock
        self.terminal_id = terminal_id
        self._max_failures = max_pin_failures
        self._lockout = lockout_seconds
        self._lock = threading.Lock()
        target = str(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys = ON")
        if target != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
        with self._tx() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RegisterStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with the write lock up front; rolled back whole on any error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.rollback()
                raise
            self._conn.commit()

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def add_clerk(self, clerk_id: str, name: str, pin: str) -> Clerk:
        if not _CLERK_ID_RE.fullmatch(clerk_id):
            raise RegisterStoreError("A clerk id is 1-32 letters, digits, '.', '_' or '-'")
        if not name.strip():
            raise RegisterStoreError("A clerk needs a name")
        if not _PIN_RE.fullmatch(pin):
            raise RegisterStoreError("A PIN is 4 to 8 digits")
        pin_hash = _hasher().hash(pin)
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM clerks WHERE clerk_id = ?", (clerk_id,)).fetchone():
                raise RegisterStoreError(f"Clerk id {clerk_id} is already taken")
            conn.execute(
                "INSERT INTO clerks (clerk_id, name, pin_hash, created_at) VALUES (?, ?, ?, ?)",
                (clerk_id, name.strip(), pin_hash, _iso(self._now())),
            )
        return Clerk(clerk_id, name.strip())

    def get_clerk(self, clerk_id: str) -> Clerk | None:
        rows = self._read("SELECT clerk_id, name FROM clerks WHERE clerk_id = ?", (clerk_id,))
        return Clerk(rows[0]["clerk_id"], rows[0]["name"]) if rows else None

    def sign_in(self, clerk_id: str, pin: str) -> Clerk:
        """The clerk, if the PIN is right and the id is not locked; else :class:`SignInRefused`."""
        now = self._now()
        with self._tx() as conn:
            self._refuse_if_locked(conn, clerk_id, now)
            row = conn.execute("SELECT name, pin_hash FROM clerks WHERE clerk_id = ?", (clerk_id,)).fetchone()
        # The slow, constant-time verify runs outside the lock so other threads are not held up.
        ok = self._verify(row["pin_hash"] if row else _dummy_hash(), pin) and row is not None
        with self._tx() as conn:
            self._refuse_if_locked(conn, clerk_id, now)
            if ok:
                conn.execute("DELETE FROM sign_in_failures WHERE clerk_id = ?", (clerk_id,))
                if _hasher().check_needs_rehash(row["pin_hash"]):
                    new_hash = _hasher().hash(pin)
                    conn.execute("UPDATE clerks SET pin_hash = ? WHERE clerk_id = ?", (new_hash, clerk_id))
                return Clerk(clerk_id, row["name"])
            locked_for = self._count_failure(conn, clerk_id, now)
        if locked_for:
            raise SignInRefused("locked", locked_for)
        raise SignInRefused("invalid")

    @staticmethod
    def _verify(pin_hash: str, pin: str) -> bool:
        try:
            return _hasher().verify(pin_hash, pin)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _refuse_if_locked(self, conn: sqlite3.Connection, clerk_id: str, now: datetime) -> None:
        row = conn.execute("SELECT locked_until FROM sign_in_failures WHERE clerk_id = ?", (clerk_id,)).fetchone()
        if row is None or row["locked_until"] is None:
            return
        until = _dt(row["locked_until"])
        if now < until:
            raise SignInRefused("locked", max(1, int((until - now).total_seconds() + 0.999)))
        conn.execute("DELETE FROM sign_in_failures WHERE clerk_id = ?", (clerk_id,))

    def _count_failure(self, conn: sqlite3.Connection, clerk_id: str, now: datetime) -> int:
        """Record one failure; returns the lockout in seconds if this failure locks the id, else 0."""
        row = conn.execute(
            "SELECT failures, first_failure_at FROM sign_in_failures WHERE clerk_id = ?", (clerk_id,)
        ).fetchone()
        window = timedelta(seconds=self._lockout)
        if row is None or now - _dt(row["first_failure_at"]) >= window:
            failures, first = 1, now
        else:
            failures, first = row["failures"] + 1, _dt(row["first_failure_at"])
        locked_until = _iso(now + window) if failures >= self._max_failures else None
        conn.execute(
            "INSERT OR REPLACE INTO sign_in_failures (clerk_id, failures, first_failure_at, locked_until) "
            "VALUES (?, ?, ?, ?)",
            (clerk_id, failures, _iso(first), locked_until),
        )
        return self._lockout if locked_until else 0

    def open_shift(self, clerk_id: str) -> Shift:
        now = self._now()
        with self._tx() as conn:
            if not conn.execute("SELECT 1 FROM clerks WHERE clerk_id = ?", (clerk_id,)).fetchone():
                raise RegisterStoreError(f"No clerk {clerk_id}")
            held = conn.execute("SELECT shift_id, clerk_id FROM shifts WHERE closed_at IS NULL").fetchone()
            if held:
                raise RegisterStoreError(
                    f"Shift #{held['shift_id']} of clerk {held['clerk_id']} is still open on {self.terminal_id}; "
                    "close it first"
                )
            cur = conn.execute("INSERT INTO shifts (clerk_id, opened_at) VALUES (?, ?)", (clerk_id, _iso(now)))
            shift_id = cur.lastrowid
        assert shift_id is not None
        return Shift(shift_id, clerk_id, now, None)

    def current_shift(self) -> Shift | None:
        rows = self._read("SELECT * FROM shifts WHERE closed_at IS NULL")
        return _shift(rows[0]) if rows else None

    def get_shift(self, shift_id: int) -> Shift | None:
        rows = self._read("SELECT * FROM shifts WHERE shift_id = ?", (shift_id,))
        return _shift(rows[0]) if rows else None

    def close_shift(self, shift_id: int) -> ShiftReport:
        with self._tx() as conn:
            row = conn.execute("SELECT closed_at FROM shifts WHERE shift_id = ?", (shift_id,)).fetchone()
            if row is None:
                raise RegisterStoreError(f"No shift #{shift_id}")
            if row["closed_at"] is not None:
                raise RegisterStoreError(f"Shift #{shift_id} is already closed")
            conn.execute("UPDATE shifts SET closed_at = ? WHERE shift_id = ?", (_iso(self._now()), shift_id))
            return self._report(conn, shift_id)

    def shift_report(self, shift_id: int) -> ShiftReport:
        with self._lock:
            return self._report(self._conn, shift_id)

    def _report(self, conn: sqlite3.Connection, shift_id: int) -> ShiftReport:
        row = conn.execute("SELECT * FROM shifts WHERE shift_id = ?", (shift_id,)).fetchone()
        if row is None:
            raise RegisterStoreError(f"No shift #{shift_id}")
        shift = _shift(row)
        live = "(status != 'voided')"
        s = conn.execute(
            f"SELECT TOTAL({live}) AS n, TOTAL(total * {live}) AS total, TOTAL(NOT {live}) AS voided, "  # noqa: S608
            f"TOTAL(wallet_amount > 0 AND {live}) AS wn, TOTAL(wallet_amount * {live}) AS wa, "
            f"TOTAL(cash_amount > 0 AND {live}) AS cn, TOTAL(cash_amount * {live}) AS ca "
            "FROM sales WHERE shift_id = ?",
            (shift_id,),
        ).fetchone()
        by_tender = {
            "wallet": TenderTotals(int(s["wn"]), int(s["wa"])),
            "cash": TenderTotals(int(s["cn"]), int(s["ca"])),
        }
        refunds = {tender: TenderTotals(0, 0) for tender in REFUND_TENDERS}
        for r in conn.execute(
            "SELECT tender, COUNT(*) AS n, SUM(amount) AS total FROM refunds WHERE shift_id = ? GROUP BY tender",
            (shift_id,),
        ):
            refunds[r["tender"]] = TenderTotals(r["n"], r["total"])
        refunds_count = sum(t.count for t in refunds.values())
        refunds_total = sum(t.amount for t in refunds.values())
        sales_total = int(s["total"])
        return ShiftReport(
            *(shift.shift_id, shift.clerk_id, shift.opened_at, shift.closed_at, int(s["n"]), sales_total),
            *(refunds_count, refunds_total, int(s["voided"]), sales_total - refunds_total, by_tender, refunds),
        )

    def next_receipt_no(self) -> str:
        """The next receipt number of this register; never reused, even across restarts."""
        with self._tx() as conn:
            conn.execute("UPDATE counters SET value = value + 1 WHERE name = 'receipt'")
            n = conn.execute("SELECT value FROM counters WHERE name = 'receipt'").fetchone()[0]
        return format_receipt_no(self.terminal_id, n)

    def record_sale(
        self,
        *,
        receipt_no: str,
        shift_id: int,
        order_id: str,
        total: int,
        tender: str,
        wallet_amount: int,
        cash_amount: int,
        payment_id: str | None,
        lines_json: str,
    ) -> SaleRecord:
        if tender not in TENDERS:
            raise RegisterStoreError(f"Unknown tender {tender!r}; use one of {', '.join(TENDERS)}")
        amounts = (total, wallet_amount, cash_amount)
        if any(isinstance(a, bool) or not isinstance(a, int) for a in amounts):
            raise RegisterStoreError("Amounts are whole yen")
        if total <= 0 or wallet_amount < 0 or cash_amount < 0 or wallet_amount + cash_amount != total:
            raise RegisterStoreError("Wallet and cash amounts must be at least ¥0 and add up to the total")
        expected = {"wallet": (True, False), "cash": (False, True), "wallet+cash": (True, True)}[tender]
        if (wallet_amount > 0, cash_amount > 0) != expected:
            raise RegisterStoreError(f"The amounts do not match the tender {tender!r}")
        if wallet_amount > 0 and not payment_id:
            raise RegisterStoreError("A wallet payment needs its payment id")
        try:
            json.loads(lines_json)
        except ValueError as exc:
            raise RegisterStoreError("lines_json is not valid JSON") from exc
        now = _iso(self._now())
        with self._tx() as conn:
            self._require_open_shift(conn, shift_id)
            if conn.execute("SELECT 1 FROM sales WHERE receipt_no = ?", (receipt_no,)).fetchone():
                raise RegisterStoreError(f"Receipt {receipt_no} is already recorded")
            if conn.execute("SELECT 1 FROM sales WHERE order_id = ?", (order_id,)).fetchone():
                raise RegisterStoreError(f"Order {order_id} is already recorded")
            values = (receipt_no, shift_id, order_id, total, tender, wallet_amount, cash_amount, payment_id)
            conn.execute(
                f"INSERT INTO sales ({_SALE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'completed', ?, 0)",  # noqa: S608
                (*values, lines_json, now),
            )
            return self._sale(conn, receipt_no)

    def record_void(self, receipt_no: str) -> SaleRecord:
        """Mark a sale voided after payment (e.g. reversed); it then counts as voided, not as a sale."""
        with self._tx() as conn:
            sale = self._sale(conn, receipt_no)
            if sale.status == "voided":
                raise RegisterStoreError(f"Receipt {receipt_no} is already voided")
            if sale.refunded:
                raise RegisterStoreError(f"Receipt {receipt_no} has refunds; it cannot be voided")
            conn.execute("UPDATE sales SET status = 'voided' WHERE receipt_no = ?", (receipt_no,))
            return self._sale(conn, receipt_no)

    def get_sale(self, receipt_no: str) -> SaleRecord | None:
        rows = self._read(f"SELECT {_SALE_COLUMNS} FROM sales WHERE receipt_no = ?", (receipt_no,))  # noqa: S608
        return _sale_record(rows[0]) if rows else None

    def recent_sales(self, limit: int = 20) -> list[SaleRecord]:
        rows = self._read(f"SELECT {_SALE_COLUMNS} FROM sales ORDER BY rowid DESC LIMIT ?", (limit,))  # noqa: S608
        return [_sale_record(r) for r in rows]

    def refundable(self, receipt_no: str) -> int:
        sale = self.get_sale(receipt_no)
        if sale is None:
            raise RegisterStoreError(f"No receipt {receipt_no}")
        return 0 if sale.status == "voided" else sale.total - sale.refunded

    def record_refund(
        self, *, receipt_no: str, amount: int, tender: str, refund_id: str | None, reason: str = ""
    ) -> SaleRecord:
        """Refund part or all of a sale; counted in the shift open now, not the sale's shift."""
        if tender not in REFUND_TENDERS:
            raise RegisterStoreError(f"Refunds go back as {' or '.join(REFUND_TENDERS)}")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise RegisterStoreError("A refund is a positive whole number of yen")
        now = _iso(self._now())
        with self._tx() as conn:
            shift = conn.execute("SELECT shift_id FROM shifts WHERE closed_at IS NULL").fetchone()
            if shift is None:
                raise RegisterStoreError("Open a shift before refunding")
            sale = self._sale(conn, receipt_no)
            if sale.status == "voided":
                raise RegisterStoreError(f"Receipt {receipt_no} was voided; there is nothing to refund")
            left = sale.total - sale.refunded
            if amount > left:
                raise RegisterStoreError(f"Receipt {receipt_no}: only {format_yen(left)} is left to refund")
            if tender == "wallet":
                wallet_back = conn.execute(
                    "SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE receipt_no = ? AND tender = 'wallet'",
                    (receipt_no,),
                ).fetchone()[0]
                if amount > sale.wallet_amount - wallet_back:
                    raise RegisterStoreError(
                        f"Only {format_yen(sale.wallet_amount - wallet_back)} was paid by wallet and is left to refund"
                    )
            conn.execute(
                "INSERT INTO refunds (receipt_no, shift_id, amount, tender, refund_id, reason, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (receipt_no, shift["shift_id"], amount, tender, refund_id, reason, now),
            )
            refunded = sale.refunded + amount
            status = "refunded" if refunded == sale.total else "partially_refunded"
            conn.execute(
                "UPDATE sales SET refunded = ?, status = ? WHERE receipt_no = ?", (refunded, status, receipt_no)
            )
            return self._sale(conn, receipt_no)

    @staticmethod
    def _require_open_shift(conn: sqlite3.Connection, shift_id: int) -> None:
        row = conn.execute("SELECT closed_at FROM shifts WHERE shift_id = ?", (shift_id,)).fetchone()
        if row is None:
            raise RegisterStoreError(f"No shift #{shift_id}")
        if row["closed_at"] is not None:
            raise RegisterStoreError(f"Shift #{shift_id} is closed")

    @staticmethod
    def _sale(conn: sqlite3.Connection, receipt_no: str) -> SaleRecord:
        row = conn.execute(f"SELECT {_SALE_COLUMNS} FROM sales WHERE receipt_no = ?", (receipt_no,)).fetchone()  # noqa: S608
        if row is None:
            raise RegisterStoreError(f"No receipt {receipt_no}")
        return _sale_record(row)


def _shift(row: sqlite3.Row) -> Shift:
    closed = row["closed_at"]
    return Shift(row["shift_id"], row["clerk_id"], _dt(row["opened_at"]), _dt(closed) if closed else None)


def _sale_record(row: sqlite3.Row) -> SaleRecord:
    return SaleRecord(**{**dict(row), "created_at": _dt(row["created_at"])})
