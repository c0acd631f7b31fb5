"""The register's one SQLite file: its schema, its lock and its write transactions, shared by clerks and journal.

One file per register (``var/register-T1.db``; ``":memory:"`` in tests). Every write is one ``BEGIN IMMEDIATE``
transaction, so a failure leaves nothing half written and two processes on one file cannot interleave a check
and its write. Times are stored as ISO-8601 UTC text.

The schema is created on every open with ``CREATE ... IF NOT EXISTS``: a file made by an older register gains
the tables and indexes added since (``wallet_orders``: ``terminal.wallet_orders``) and keeps what it holds.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from protocol.clock import Clock
from terminal.register_records import RegisterStoreError, Shift

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
CREATE TABLE IF NOT EXISTS wallet_orders (
    order_id TEXT PRIMARY KEY, receipt_no TEXT NOT NULL, shift_id INTEGER NOT NULL REFERENCES shifts(shift_id),
    amount INTEGER NOT NULL CHECK (amount > 0), lines_json TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'paid', 'declined', 'reversed', 'refused')),
    payment_id TEXT, sent_at TEXT NOT NULL, settled_at TEXT, note TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS wallet_orders_pending ON wallet_orders (shift_id) WHERE state = 'pending';
"""


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise RegisterStoreError("clock returned a naive datetime; times must be aware UTC")
    return moment.astimezone(UTC).isoformat()


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def shift_from_row(row: sqlite3.Row) -> Shift:
    closed = row["closed_at"]
    return Shift(row["shift_id"], row["clerk_id"], from_iso(row["opened_at"]), from_iso(closed) if closed else None)


class RegisterDB:
    """The open database file with its lock and clock; :class:`Clerks` and :class:`Journal` both write through it."""

    def __init__(self, path: str | Path, clock: Clock) -> None:
        self._clock = clock
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
        with self.tx() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with the write lock up front; rolled back whole on any error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.rollback()
                raise
            self._conn.commit()

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection under the lock, for several reads that must see one state."""
        with self._lock:
            yield self._conn

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)
