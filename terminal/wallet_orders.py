"""Wallet orders written down before they are sent: what a register stopped mid-payment finds at its next start.

Before a wallet payment leaves the register, its order id is written to the register's file as ``pending``
with what is needed to finish the sale later (receipt number, shift, amount, the sale's lines), in a
transaction of its own that has committed (WAL, ``synchronous=FULL``: on disk) before the request is sent.
The outcome settles it:

- approved: ``Journal.record_sale`` marks it ``paid`` in the sale's own transaction (:func:`mark_paid`), so
  the sale and the settled order are written together or not at all;
- declined by the core, refused (nothing happened at the core), or closed by a reverse: :meth:`WalletOrders.settle`.

An order still ``pending`` when the register starts is one whose outcome it never learnt (killed, power cut,
or the core never answered): ``terminal.reconcile`` asks the core about each. A shift with an order still
pending cannot be closed (``Journal.close_shift``): its Z-report would not match the core's books.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from terminal.register_db import RegisterDB, from_iso, iso
from terminal.register_records import RegisterStoreError

PENDING: Final = "pending"
PAID: Final = "paid"  # the sale is recorded (its receipt number is the order's)
DECLINED: Final = "declined"  # the core decided against it: nothing charged
REVERSED: Final = "reversed"  # closed at the core by a reverse: nothing charged, or refunded in full
REFUSED: Final = "refused"  # the core (or the register) refused the request: nothing happened
SETTLED_STATES: Final = (DECLINED, REVERSED, REFUSED)

_COLUMNS: Final = "order_id, receipt_no, shift_id, amount, lines_json, state, payment_id, sent_at, settled_at, note"


@dataclass(frozen=True)
class WalletOrder:
    """One wallet order this register sent (or was about to send), and where it stands."""

    order_id: str
    receipt_no: str
    shift_id: int
    amount: int
    lines_json: str
    state: str
    payment_id: str | None
    sent_at: datetime
    settled_at: datetime | None
    note: str

    @property
    def pending(self) -> bool:
        return self.state == PENDING


class WalletOrders:
    """The register's wallet orders: written down before sending, settled when their outcome is known."""

    def __init__(self, db: RegisterDB) -> None:
        self._db = db

    def begin(self, *, order_id: str, receipt_no: str, shift_id: int, amount: int, lines_json: str) -> WalletOrder:
        """Write ``order_id`` down as pending, committed before this returns. The same order again while it is
        still pending (a retry with the same order id) is the same order; an order already settled is refused
        (a new try needs a new order id), and so is one for a different receipt or amount."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise RegisterStoreError("A wallet order is a positive whole number of yen")
        now = iso(self._db.now())
        with self._db.tx() as conn:
            order = _find(conn, order_id)
            if order is not None:
                if not order.pending:
                    raise RegisterStoreError(f"Order {order_id} is already {order.state}; a new try needs a new order")
                if (order.receipt_no, order.amount) != (receipt_no, amount):
                    raise RegisterStoreError(f"Order {order_id} was sent for another receipt or amount")
                return order
            conn.execute(
                f"INSERT INTO wallet_orders ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, NULL, '')",  # noqa: S608
                (order_id, receipt_no, shift_id, amount, lines_json, PENDING, now),
            )
            found = _find(conn, order_id)
            assert found is not None  # written just now, in this transaction
            return found

    def settle(self, order_id: str, state: str, *, payment_id: str | None = None, note: str = "") -> bool:
        """Mark a pending order declined, reversed or refused; False when it was not pending (already settled,
        or never written down). A sale is marked paid by ``Journal.record_sale``, never here."""
        if state not in SETTLED_STATES:
            raise RegisterStoreError(f"An order is settled as one of {', '.join(SETTLED_STATES)}, not {state!r}")
        with self._db.tx() as conn:
            changed = conn.execute(
                "UPDATE wallet_orders SET state = ?, payment_id = COALESCE(?, payment_id), settled_at = ?, note = ? "
                "WHERE order_id = ? AND state = ?",
                (state, payment_id, iso(self._db.now()), note[:200], order_id, PENDING),
            ).rowcount
        return changed == 1

    def get(self, order_id: str) -> WalletOrder | None:
        rows = self._db.read(f"SELECT {_COLUMNS} FROM wallet_orders WHERE order_id = ?", (order_id,))  # noqa: S608
        return _order(rows[0]) if rows else None

    def pending(self) -> list[WalletOrder]:
        """The orders whose outcome this register has not learnt, oldest first."""
        rows = self._db.read(
            f"SELECT {_COLUMNS} FROM wallet_orders WHERE state = ? ORDER BY sent_at, rowid",  # noqa: S608
            (PENDING,),
        )
        return [_order(row) for row in rows]

    def pending_count(self) -> int:
        return int(self._db.read("SELECT COUNT(*) FROM wallet_orders WHERE state = ?", (PENDING,))[0][0])


def mark_paid(conn: sqlite3.Connection, order_id: str, payment_id: str | None, now: str) -> None:
    """Inside the transaction that records the sale for ``order_id``: its pending order (if it was written
    down: cash sales are not) is paid, with the core's payment id."""
    conn.execute(
        "UPDATE wallet_orders SET state = ?, payment_id = ?, settled_at = ? WHERE order_id = ? AND state = ?",
        (PAID, payment_id, now, order_id, PENDING),
    )


def pending_in_shift(conn: sqlite3.Connection, shift_id: int) -> int:
    """How many of the shift's wallet orders are still pending (inside a caller's transaction)."""
    row = conn.execute(
        "SELECT COUNT(*) FROM wallet_orders WHERE shift_id = ? AND state = ?", (shift_id, PENDING)
    ).fetchone()
    return int(row[0])


def _find(conn: sqlite3.Connection, order_id: str) -> WalletOrder | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM wallet_orders WHERE order_id = ?", (order_id,)).fetchone()  # noqa: S608
    return _order(row) if row is not None else None


def _order(row: sqlite3.Row) -> WalletOrder:
    settled = row["settled_at"]
    return WalletOrder(
        order_id=row["order_id"],
        receipt_no=row["receipt_no"],
        shift_id=row["shift_id"],
        amount=row["amount"],
        lines_json=row["lines_json"],
        state=row["state"],
        payment_id=row["payment_id"],
        sent_at=from_iso(row["sent_at"]),
        settled_at=from_iso(settled) if settled else None,
        note=row["note"],
    )
