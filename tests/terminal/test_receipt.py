"""Receipts: the Japanese layout, tax per rate, tenders, masked balance, and every line fitting the paper."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from rich.cells import cell_len

from terminal.catalog import DEFAULT_CATALOG, Catalog, Product
from terminal.receipt import Receipt, Tender, format_jst, mask_balance, render_receipt
from terminal.sale import Sale

CATALOG = Catalog.load(DEFAULT_CATALOG)
ISSUED = datetime(2026, 11, 22, 12, 5, tzinfo=UTC)  # 21:05 in Tokyo, a Sunday
HEADER = {"store_name": "possim 上野一丁目店", "terminal_id": "0001", "receipt_no": "0042", "clerk": "山田"}


def product(jan: str) -> Product:
    found = CATALOG.lookup(jan)
    assert found is not None
    return found


def mixed_sale() -> Sale:
    sale = Sale()
    sale.add(product("4901001001071"))  # おにぎり 紅しゃけ 178, 8 %
    sale.add(product("4901001001149"), 2)  # おにぎり ツナマヨネーズ 150 × 2, 8 %
    sale.add(product("4901004001078"))  # 生ビール 350ml缶 245, 10 %
    sale.add(product("4549001001075"))  # ギフトカード 1,000円, non-taxable
    sale.add(product("4901001001217"))  # おにぎり 紀州南高梅 160, voided below
    sale.void_line(4)
    return sale


def test_sale_receipt_layout() -> None:
    sale = mixed_sale()
    assert sale.total == 1723
    receipt = Receipt.from_sale(sale, issued_at=ISSUED, tenders=(Tender("cash", 2000),), **HEADER)
    assert receipt.change == 277
    lines = render_receipt(receipt)
    text = "\n".join(lines)
    assert lines[0].strip() == "possim 上野一丁目店" and lines[1].strip() == "領収書"
    assert lines[2] == "2026年11月22日(日) 21:05"
    assert lines[3].startswith("レジ 0001") and lines[3].endswith("No.0042") and lines[4] == "責 山田"
    assert lines[5] == "-" * 42
    body = lines[6:12]
    assert body[0].startswith("おにぎり 紅しゃけ") and body[0].endswith("※¥178")
    assert body[1].startswith("おにぎり ツナマヨネーズ") and body[1].endswith("※¥300")
    assert body[2] == "  2コ × ¥150"
    assert body[3].startswith("生ビール 350ml缶") and body[3].endswith(" ¥245")
    assert body[4].endswith("非¥1,000")
    assert body[5].startswith("おにぎり 紀州南高梅") and lines[12].startswith("  取消") and lines[12].endswith("-¥160")
    assert any(line.startswith("小計") and line.endswith("5点 ¥1,723") for line in lines)
    assert any(line.startswith("合計") and line.endswith("¥1,723") for line in lines)
    # 10 %: 245 -> 22;  8 %: 478 * 8 / 108 = 35.4 -> 35;  gift card: not taxable
    assert any(line.startswith("(10%対象 ¥245") and line.endswith("内消費税 ¥22)") for line in lines)
    assert any(line.startswith("(8%対象 ¥478") and line.endswith("内消費税 ¥35)") for line in lines)
    assert any(line.startswith("(非課税") and line.endswith("¥1,000)") for line in lines)
    for expected in ("※は軽減税率(8%)対象", "非は非課税", "端数処理: 税率ごと切捨て"):
        assert expected in lines
    assert any(line.startswith("お預り") and line.endswith("¥2,000") for line in lines)
    assert any(line.startswith("お釣り") and line.endswith("¥277") for line in lines)
    assert "決済番号" not in text and "残高" not in text
    assert all(cell_len(line) == 42 for line in lines if "  " in line.strip())  # justified lines fill the width


def test_wallet_receipt_shows_payment_id_and_masked_balance() -> None:
    sale = Sale()
    sale.add(product("4901001001071"))
    receipt = Receipt.from_sale(
        sale,
        issued_at=ISSUED,
        tenders=(Tender("wallet", 178, "possim"),),
        payment_id="pay_01JD4X7Q2M8",
        balance_after_masked=mask_balance(12_340),
        **HEADER,
    )
    lines = render_receipt(receipt)
    assert receipt.change == 0
    assert any(line.startswith("電子マネー possim") and line.endswith("¥178") for line in lines)
    assert "  possim" in lines
    assert any(line.startswith("残高") and line.endswith("¥**,**0") for line in lines)
    assert any(line.startswith("決済番号") and line.endswith("pay_01JD4X7Q2M8") for line in lines)
    assert not any(line.startswith("お釣り") for line in lines)
    assert "12,340" not in "\n".join(lines)


def test_refund_receipt_has_minus_signs() -> None:
    sale = Sale()
    sale.add(product("4901004001078"), 2)  # 生ビール 245 × 2
    receipt = Receipt.from_sale(sale, issued_at=ISSUED, tenders=(Tender("wallet", 490),), kind="refund", **HEADER)
    lines = render_receipt(receipt)
    assert lines[1].strip() == "返品"
    assert any(line.startswith("合計") and line.endswith("-¥490") for line in lines)
    assert any(line.startswith("(10%対象 -¥490") and line.endswith("内消費税 -¥44)") for line in lines)
    assert any(line.startswith("電子マネー返金 possim") and line.endswith("-¥490") for line in lines)


def test_amount_only_refund_receipt() -> None:
    receipt = Receipt.from_sale(
        Sale(), issued_at=ISSUED, tenders=(Tender("cash", 300),), kind="refund", note="返品 0041", **HEADER
    )
    assert receipt.change == 0
    lines = render_receipt(receipt)
    assert any(line.startswith("現金返金") and line.endswith("-¥300") for line in lines)
    assert "返品 0041" in lines
    subtotal = next(line for line in render_receipt(dataclasses.replace(receipt, total=300)) if line.startswith("小計"))
    assert subtotal.endswith(" -¥300") and "点" not in subtotal  # no goods named: no "0点"


def test_a_whole_sale_refund_counts_the_goods() -> None:
    sale = Sale()
    sale.add(product("4901004001078"), 2)  # 生ビール 245 × 2
    receipt = Receipt.from_sale(sale, issued_at=ISSUED, tenders=(Tender("cash", 490),), kind="refund", **HEADER)
    subtotal = next(line for line in render_receipt(receipt) if line.startswith("小計"))
    assert subtotal.endswith("2点 -¥490")


@pytest.mark.parametrize("width", [42, 32, 24])
def test_every_line_fits_for_every_catalog_product(width: int) -> None:
    sale = Sale()
    for index, goods in enumerate(CATALOG):
        line = sale.add(goods, 99 if index % 3 == 0 else 1)
        if index % 7 == 0:
            sale.void_line(line)
    header = {
        "store_name": "possim 東京駅八重洲北口地下街中央改札前店 (24時間営業)",
        "terminal_id": "REGISTER-000000000001",
        "receipt_no": "2026112200000000042",
        "clerk": "寿限無寿限無五劫の擦り切れ海砂利水魚",
    }
    receipt = Receipt.from_sale(
        sale,
        issued_at=ISSUED,
        tenders=(Tender("wallet", 100_000, "possim 支払い番号の付いた長い明細 " * 3), Tender("cash", sale.total)),
        payment_id="pay_" + "0123456789ABCDEFGHJK" * 3,
        balance_after_masked=mask_balance(1_234_567),
        note="お客様控え: このレシートは返品の際に必要です。大切に保管してください。" * 2,
        **header,
    )
    assert receipt.change == 100_000
    lines = render_receipt(receipt, width=width)
    assert len(lines) > len(CATALOG) + len(CATALOG) // 3 + len(CATALOG) // 7
    too_wide = [line for line in lines if cell_len(line) > width]
    assert too_wide == []
    assert sum(line.startswith("  取消") for line in lines) == sum(line.voided for line in sale.lines)
    joined = "".join(line.strip() for line in lines)
    assert "pay_" + "0123456789ABCDEFGHJK" * 3 in joined  # wrapped, never cut


def test_receipt_keeps_its_own_copy_of_the_lines() -> None:
    sale = mixed_sale()
    receipt = Receipt.from_sale(sale, issued_at=ISSUED, **HEADER)
    sale.set_quantity(0, 5)
    sale.void_line(1)
    assert receipt.lines[0].quantity == 1 and not receipt.lines[1].voided and receipt.total == 1723


def test_receipt_refuses_inconsistent_fields() -> None:
    sale = mixed_sale()
    with pytest.raises(ValueError, match="timezone-aware"):
        Receipt.from_sale(sale, issued_at=datetime(2026, 11, 22, 21, 5), **HEADER)
    with pytest.raises(ValueError, match="tenders minus change"):
        Receipt.from_sale(sale, issued_at=ISSUED, tenders=(Tender("wallet", 1000),), **HEADER)
    with pytest.raises(ValueError, match="only given against cash"):
        Receipt.from_sale(sale, issued_at=ISSUED, tenders=(Tender("wallet", 2000),), change=277, **HEADER)
    with pytest.raises(ValueError, match="kind"):
        Receipt.from_sale(sale, issued_at=ISSUED, kind="gift", **HEADER)
    with pytest.raises(ValueError, match="tender kind"):
        Tender("credit", 100)
    with pytest.raises(ValueError, match="non-negative"):
        Tender("cash", -1)
    with pytest.raises(ValueError, match="at least 24"):
        render_receipt(Receipt.from_sale(sale, issued_at=ISSUED, **HEADER), width=20)


def test_time_is_shown_in_japan() -> None:
    assert format_jst(datetime(2026, 11, 22, 12, 5, tzinfo=UTC)) == "2026年11月22日(日) 21:05"
    assert format_jst(datetime(2026, 12, 31, 15, 30, tzinfo=UTC)) == "2027年1月1日(金) 00:30"


@pytest.mark.parametrize(
    ("yen", "masked"),
    [(12_340, "¥**,**0"), (0, "¥0"), (7, "¥7"), (950, "¥**0"), (1_234_567, "¥*,***,**7"), (100_000, "¥***,**0")],
)
def test_mask_balance_shows_only_size_and_last_digit(yen: int, masked: str) -> None:
    assert mask_balance(yen) == masked
    assert len(masked) == len(f"¥{yen:,}")


def test_mask_balance_refuses_what_is_not_a_balance() -> None:
    for bad in (-1, True):
        with pytest.raises(ValueError, match="non-negative"):
            mask_balance(bad)
