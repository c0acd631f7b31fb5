"""The sales journal: receipt numbers, sales, voids, refunds, closing a shift and its report.

The payment core holds the money; the journal holds what the till needs locally: receipt numbers, what was
sold, how it was paid, what was refunded.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Final

from protocol.money import format_yen
from terminal.register_db import RegisterDB, from_iso, iso, shift_from_row
from terminal.register_records import (
    REFUND_TENDERS,
    TENDERS,
    RegisterStoreError,
    SaleRecord,
    ShiftReport,
    TenderTotals,
    format_receipt_no,
)
from terminal.wallet_orders import mark_paid, pending_in_shift

_SALE_COLUMNS: Final = (
    "receipt_no, shift_id, order_id, total, tender, wallet_amount, cash_amount, payment_id, lines_json, "
    "status, created_at, refunded"
)


class Journal:
    """What this register sold and refunded, shift by shift."""

    def __init__(self, db: RegisterDB, terminal_id: str) -> None:
        self._db = db
        self._terminal_id = terminal_id

    def close_shift(self, shift_id: int) -> ShiftReport:
        with self._db.tx() as conn:
            row = conn.execute("SELECT closed_at FROM shifts WHERE shift_id = ?", (shift_id,)).fetchone()
            if row is None:
                raise RegisterStoreError(f"No shift #{shift_id}")
            if row["closed_at"] is not None:
                raise RegisterStoreError(f"Shift #{shift_id} is already closed")
            pending = pending_in_shift(conn, shift_id)
            if pending:  # the Z-report would not match the core's books
                raise RegisterStoreError(
                    f"{pending} wallet payment{'s' if pending > 1 else ''} of this shift "
                    f"{'are' if pending > 1 else 'is'} still pending at the payment service: check "
                    "(F9 on the sale screen) before closing the shift"
                )
            conn.execute("UPDATE shifts SET closed_at = ? WHERE shift_id = ?", (iso(self._db.now()), shift_id))
            return self._report(conn, shift_id)

    def shift_report(self, shift_id: int) -> ShiftReport:
        with self._db.reading() as conn:
            return self._report(conn, shift_id)

    def _report(self, conn: sqlite3.Connection, shift_id: int) -> ShiftReport:
        row = conn.execute("SELECT * FROM shifts WHERE shift_id = ?", (shift_id,)).fetchone()
        if row is None:
            raise RegisterStoreError(f"No shift #{shift_id}")
        shift = shift_from_row(row)
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
        with self._db.tx() as conn:
            conn.execute("UPDATE counters SET value = value + 1 WHERE name = 'receipt'")
            n = conn.execute("SELECT value FROM counters WHERE name = 'receipt'").fetchone()[0]
        return format_receipt_no(self._terminal_id, n)

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
        now = iso(self._db.now())
        with self._db.tx() as conn:
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
            mark_paid(conn, order_id, payment_id, now)  # its pending wallet order, settled with the sale
            return self._sale(conn, receipt_no)

    def record_void(self, receipt_no: str) -> SaleRecord:
        """Mark a sale voided after payment (e.g. reversed); it then counts as voided, not as a sale."""
        with self._db.tx() as conn:
            sale = self._sale(conn, receipt_no)
            if sale.status == "voided":
                raise RegisterStoreError(f"Receipt {receipt_no} is already voided")
            if sale.refunded:
                raise RegisterStoreError(f"Receipt {receipt_no} has refunds; it cannot be voided")
            conn.execute("UPDATE sales SET status = 'voided' WHERE receipt_no = ?", (receipt_no,))
            return self._sale(conn, receipt_no)

    def get_sale(self, receipt_no: str) -> SaleRecord | None:
        rows = self._db.read(f"SELECT {_SALE_COLUMNS} FROM sales WHERE receipt_no = ?", (receipt_no,))  # noqa: S608
        return _sale_record(rows[0]) if rows else None

    def recent_sales(self, limit: int = 20) -> list[SaleRecord]:
        rows = self._db.read(f"SELECT {_SALE_COLUMNS} FROM sales ORDER BY rowid DESC LIMIT ?", (limit,))  # noqa: S608
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
        now = iso(self._db.now())
        with self._db.tx() as conn:
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


def _sale_record(row: sqlite3.Row) -> SaleRecord:
    return SaleRecord(**{**dict(row), "created_at": from_iso(row["created_at"])})
