"""What the register's journal hands back: clerks, shifts, sales, and the shift report (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from protocol.money import format_yen
from terminal.receipt import store_time

TENDERS: Final = ("wallet", "cash", "wallet+cash")
REFUND_TENDERS: Final = ("wallet", "cash")
WRONG_CREDENTIALS: Final = "Clerk id or PIN is wrong"


def format_receipt_no(terminal_id: str, number: int) -> str:
    """A receipt number as the register prints it: ``R1-000012`` (its terminal id, then a running number)."""
    return f"{terminal_id}-{number:06d}"


class RegisterStoreError(Exception):
    """A refused operation; the message is for the clerk."""


class SignInRefused(RegisterStoreError):
    def __init__(self, reason: str, retry_after: int = 0) -> None:
        self.reason = reason
        self.retry_after = retry_after
        if reason == "locked":
            super().__init__(f"Too many wrong PINs for this clerk id; try again in {retry_after} s")
        else:
            super().__init__(WRONG_CREDENTIALS)


@dataclass(frozen=True)
class Clerk:
    clerk_id: str
    name: str


@dataclass(frozen=True)
class Shift:
    shift_id: int
    clerk_id: str
    opened_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class SaleRecord:
    receipt_no: str
    shift_id: int
    order_id: str
    total: int
    tender: str
    wallet_amount: int
    cash_amount: int
    payment_id: str | None
    lines_json: str
    status: str
    created_at: datetime
    refunded: int


@dataclass(frozen=True)
class TenderTotals:
    count: int
    amount: int


@dataclass(frozen=True)
class ShiftReport:
    shift_id: int
    clerk_id: str
    opened_at: datetime
    closed_at: datetime | None
    sales_count: int
    sales_total: int
    refunds_count: int
    refunds_total: int
    voided_count: int
    net_total: int
    by_tender: dict[str, TenderTotals]
    refunds_by_tender: dict[str, TenderTotals]

    def lines(self) -> list[str]:
        """A printable report: an X-report while the shift is open, a Z-report once closed."""
        kind = "Z" if self.closed_at is not None else "X"
        out = [
            f"{kind}精算 {kind}-report  Shift #{self.shift_id}",
            f"担当 Clerk  {self.clerk_id}",
            f"開始 Opened  {_show(self.opened_at)}",
            f"終了 Closed  {_show(self.closed_at)}" if self.closed_at else "終了 Closed  (open)",
            f"売上 Sales  {self.sales_count}件  {format_yen(self.sales_total)}",
        ]
        out += self._by_tender(self.by_tender)
        out.append(f"返品 Refunds  {self.refunds_count}件  {format_yen(self.refunds_total)}")
        out += self._by_tender(self.refunds_by_tender)
        out.append(f"取消 Voided  {self.voided_count}件")
        out.append(f"純売上 Net  {format_yen(self.net_total)}")
        return out

    @staticmethod
    def _by_tender(totals: dict[str, TenderTotals]) -> list[str]:
        labels = {"wallet": "電子マネー Wallet", "cash": "現金 Cash"}
        zero = TenderTotals(0, 0)
        return [
            f"  {labels[t]}  {totals.get(t, zero).count}件  {format_yen(totals.get(t, zero).amount)}" for t in labels
        ]


def _show(moment: datetime) -> str:
    return store_time(moment).strftime("%Y-%m-%d %H:%M %Z")
