"""Receipts (領収書 / 返品) as monospaced lines for an 80 mm printer and the register's screen.

Widths are counted in terminal cells (``rich.cells.cell_len``): a kanji or kana is two columns, so a
42-column line matches the 42 half-width characters of an 80 mm printer's font A. The layout follows
a Japanese convenience-store receipt: store, title, time in JST, register, clerk and number, the items
(reduced-rate ones marked ※, voids printed as 取消), 小計 and 合計, the amount and included tax per
rate as the invoice rules ask, then how it was paid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.cells import cell_len

from protocol.money import format_yen
from terminal.sale import REDUCED_RATE, Sale, SaleLine, TaxBucket, tax_breakdown

TENDER_KINDS = ("wallet", "cash")
RECEIPT_KINDS = ("sale", "refund")
MIN_WIDTH = 24
SHORT_ROUNDING_NOTE = "端数処理: 税率ごと切捨て"
FOOTER = "毎度ありがとうございます"
_WEEKDAYS = "月火水木金土日"
_TENDER_LABELS = {
    ("sale", "wallet"): "電子マネー possim",
    ("sale", "cash"): "お預り",
    ("refund", "wallet"): "電子マネー返金 possim",
    ("refund", "cash"): "現金返金",
}
_MARKS = {REDUCED_RATE: "※", 0: "非"}


def _japan() -> tzinfo:
    try:
        return ZoneInfo("Asia/Tokyo")
    except ZoneInfoNotFoundError:  # no tz database on this machine: Japan has had no DST since 1951
        return timezone(timedelta(hours=9), "JST")


JST = _japan()
"""The store's zone: receipts, the register's lists and reports all show times in it (see :func:`store_time`)."""


def store_time(moment: datetime) -> datetime:
    """``moment`` (timezone-aware) as the store's local time: the one zone every time a person reads is in."""
    return moment.astimezone(JST)


@dataclass(frozen=True)
class Tender:
    """One way the customer paid: ``wallet`` (the possim code) or ``cash`` (the amount handed over)."""

    kind: str
    amount: int
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in TENDER_KINDS:
            raise ValueError(f"tender kind must be one of {TENDER_KINDS}, not {self.kind!r}")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount < 0:
            raise ValueError(f"tender amount must be whole, non-negative yen, not {self.amount!r}")


@dataclass(frozen=True)
class Receipt:
    """Everything printed on one receipt. Amounts are positive; a refund is printed with minus signs."""

    store_name: str
    terminal_id: str
    receipt_no: str
    clerk: str
    issued_at: datetime
    lines: tuple[SaleLine, ...]
    total: int
    taxes: tuple[TaxBucket, ...]
    tenders: tuple[Tender, ...]
    change: int = 0
    payment_id: str | None = None
    balance_after_masked: str | None = None
    kind: str = "sale"
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in RECEIPT_KINDS:
            raise ValueError(f"receipt kind must be one of {RECEIPT_KINDS}, not {self.kind!r}")
        for name in ("store_name", "terminal_id", "receipt_no", "clerk", "note"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string")
        if not isinstance(self.issued_at, datetime) or self.issued_at.utcoffset() is None:
            raise ValueError("issued_at must be a timezone-aware datetime (UTC)")
        if isinstance(self.change, bool) or not isinstance(self.change, int) or self.change < 0:
            raise ValueError("change must be whole, non-negative yen")
        if self.change and not any(t.kind == "cash" for t in self.tenders):
            raise ValueError("change is only given against cash")
        if self.kind == "refund":
            return  # a refund may be for an amount only (a partial refund), with no lines or tax breakdown
        if self.total != sum(line.amount for line in self.lines) or self.total != sum(t.taxable for t in self.taxes):
            raise ValueError("total must equal the live lines and the taxable amounts per rate")
        if self.tenders and sum(t.amount for t in self.tenders) - self.change != self.total:
            raise ValueError("tenders minus change must equal the total")

    @classmethod
    def from_sale(cls, sale: Sale, **fields: Any) -> Receipt:
        """A receipt for ``sale`` as it stands: lines (copied), total and taxes from the sale, the rest from ``fields``.

        ``fields`` are the other ``Receipt`` fields (``store_name``, ``terminal_id``, ``receipt_no``, ``clerk``,
        ``issued_at``, ``tenders``, ...). For a sale paid partly in cash, ``change`` defaults to what was
        handed over beyond the total.
        """
        lines = tuple(dataclasses.replace(line) for line in sale.lines)
        tenders = tuple(fields.pop("tenders", ()))
        if fields.get("change") is None:
            over = sum(t.amount for t in tenders) - sale.total
            cash = any(t.kind == "cash" for t in tenders)
            fields["change"] = over if over > 0 and cash and fields.get("kind", "sale") == "sale" else 0
        return cls(lines=lines, total=sale.total, taxes=tuple(tax_breakdown(lines)), tenders=tenders, **fields)


def mask_balance(yen: int) -> str:
    """A balance for the receipt without giving it away: 12,340 -> ``¥**,**0`` (size and last digit only)."""
    if isinstance(yen, bool) or not isinstance(yen, int) or yen < 0:
        raise ValueError(f"a balance is whole, non-negative yen, not {yen!r}")
    grouped = f"{yen:,}"
    return "¥" + "".join("*" if char.isdigit() else char for char in grouped[:-1]) + grouped[-1]


def format_jst(moment: datetime) -> str:
    """``2026年11月22日(日) 21:05`` in Japan time."""
    local = store_time(moment)
    return f"{local.year}年{local.month}月{local.day}日({_WEEKDAYS[local.weekday()]}) {local:%H:%M}"


def render_receipt(receipt: Receipt, width: int = 42) -> list[str]:
    """The receipt as lines of at most ``width`` cells each (full-width characters count two)."""
    if width < MIN_WIDTH:
        raise ValueError(f"a receipt needs at least {MIN_WIDTH} columns")
    sign = -1 if receipt.kind == "refund" else 1

    def yen(amount: int) -> str:
        return format_yen(sign * amount)

    rule = "-" * width
    out = [
        _center(receipt.store_name, width),
        _center("返品" if receipt.kind == "refund" else "領収書", width),
        _cut(format_jst(receipt.issued_at), width),
        _pair(f"レジ {receipt.terminal_id}", f"No.{receipt.receipt_no}", width),
        _cut(f"責 {receipt.clerk}", width),
        rule,
    ]
    for line in receipt.lines:
        product = line.product
        full = product.price * line.quantity
        out.append(_pair(product.name, _MARKS.get(product.tax_rate, "") + yen(full), width))
        if line.quantity > 1:
            out.append(_cut(f"  {line.quantity}コ × {format_yen(product.price)}", width))
        if line.voided:
            out.append(_pair("  取消", yen(-full), width))
    count = sum(line.quantity for line in receipt.lines if not line.voided)
    # A refund of part of an amount returns no particular goods: its subtotal has no item count.
    subtotal = (
        yen(receipt.total) if receipt.kind == "refund" and not receipt.lines else f"{count}点 {yen(receipt.total)}"
    )
    out += [rule, _pair("小計", subtotal, width), _pair("合計", yen(receipt.total), width)]
    for bucket in receipt.taxes:
        out += _tax_lines(bucket, yen, width)
    rates = {line.product.tax_rate for line in receipt.lines}
    if REDUCED_RATE in rates:
        out.append(_cut(f"※は軽減税率({REDUCED_RATE}%)対象", width))
    if 0 in rates:
        out.append(_cut("非は非課税", width))
    out += [_cut(SHORT_ROUNDING_NOTE, width), rule]
    for tender in receipt.tenders:
        out.append(_pair(_TENDER_LABELS[receipt.kind, tender.kind], yen(tender.amount), width))
        if tender.detail:
            out.append(_cut(f"  {tender.detail}", width))
    if any(t.kind == "cash" for t in receipt.tenders) or receipt.change:
        out.append(_pair("お釣り", format_yen(receipt.change), width))
    if receipt.balance_after_masked is not None:
        out.append(_pair("残高", receipt.balance_after_masked, width))
    if receipt.payment_id:
        out += _wrapped_value("決済番号", receipt.payment_id, width)
    out.append(rule)
    if receipt.note:
        out += _wrap(receipt.note, width)
    out.append(_center(FOOTER, width))
    return out


def _tax_lines(bucket: TaxBucket, yen: Callable[[int], str], width: int) -> list[str]:
    if bucket.rate == 0:
        return [_pair("(非課税", f"{yen(bucket.taxable)})", width)]
    left = f"({bucket.rate}%対象 {yen(bucket.taxable)}"
    right = f"内消費税 {yen(bucket.tax)})"
    if cell_len(left) + 2 + cell_len(right) <= width:
        return [_pair(left, right, width, gap=2)]
    return [_pair(f"({bucket.rate}%対象", yen(bucket.taxable), width), _pair(" 内消費税", f"{yen(bucket.tax)})", width)]


def _cut(text: str, cols: int) -> str:
    """``text`` cut to at most ``cols`` cells, never splitting a full-width character."""
    if cell_len(text) <= cols:
        return text
    out: list[str] = []
    used = 0
    for char in text:
        size = cell_len(char)
        if used + size > cols:
            break
        out.append(char)
        used += size
    return "".join(out)


def _pair(left: str, right: str, width: int, gap: int = 1) -> str:
    """``left`` and ``right`` on one line, ``right`` flush right; ``left`` is cut to make room."""
    right = _cut(right, width)
    left = _cut(left, max(0, width - cell_len(right) - gap))
    return left + " " * (width - cell_len(left) - cell_len(right)) + right


def _center(text: str, width: int) -> str:
    text = _cut(text, width)
    pad = (width - cell_len(text)) // 2
    return " " * pad + text


def _wrap(text: str, width: int) -> list[str]:
    """Cut ``text`` into lines of at most ``width`` cells (character by character: Japanese has no spaces)."""
    lines: list[str] = []
    current, used = "", 0
    for char in text.replace("\n", " "):
        size = cell_len(char)
        if used + size > width:
            lines.append(current)
            current, used = "", 0
        current += char
        used += size
    if current or not lines:
        lines.append(current)
    return lines


def _wrapped_value(label: str, value: str, width: int) -> list[str]:
    if cell_len(label) + 1 + cell_len(value) <= width:
        return [_pair(label, value, width)]
    return [label, *(_pair("", chunk, width) for chunk in _wrap(value, width - 2))]
