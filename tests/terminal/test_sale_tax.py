"""The cart and the consumption tax: hand-worked receipts, the per-receipt rounding rule, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminal.catalog import DEFAULT_CATALOG, Catalog, Product
from terminal.sale import MAX_LINES, MAX_QUANTITY, TAX_ROUNDING_NOTE, Sale, SaleError, TaxBucket, included_tax

CATALOG = Catalog.load(DEFAULT_CATALOG)


def item(price: int, rate: int, name: str = "", age: bool = False) -> Product:
    return Product("4900000000000", name or f"item {price}@{rate}", "item", price, rate, "food", age)


def product(jan: str) -> Product:
    found = CATALOG.lookup(jan)
    assert found is not None
    return found


SALMON = product("4901001001071")  # おにぎり 紅しゃけ 178, 8 %
TUNA = product("4901001001149")  # おにぎり ツナマヨネーズ 150, 8 %
BEER = product("4901004001078")  # 生ビール 350ml缶 245, 10 %


def test_scanning_the_same_item_again_adds_to_the_line() -> None:
    sale = Sale()
    assert sale.is_empty and sale.total == 0 and sale.tax_breakdown() == []
    assert sale.add(TUNA) == 0
    assert sale.add(TUNA) == 0
    assert sale.add(SALMON) == 1
    assert sale.add(TUNA, 3) == 2  # not the last line any more: a new line, as a till does
    assert [(line.product.name, line.quantity) for line in sale.lines] == [
        ("おにぎり ツナマヨネーズ", 2),
        ("おにぎり 紅しゃけ", 1),
        ("おにぎり ツナマヨネーズ", 3),
    ]
    assert sale.total == 150 * 5 + 178 and sale.item_count == 6
    sale.void_line(2)
    assert sale.add(SALMON) == 1  # the last live line is the salmon again
    assert sale.lines[1].quantity == 2 and sale.total == 150 * 2 + 178 * 2


def test_quantities_and_voids() -> None:
    sale = Sale()
    sale.add(TUNA)
    sale.set_quantity(0, 4)
    assert sale.lines[0].amount == 600
    for bad in (0, -1, MAX_QUANTITY + 1):
        with pytest.raises(SaleError, match="1から99"):
            sale.set_quantity(0, bad)
    with pytest.raises(SaleError):
        sale.add(TUNA, MAX_QUANTITY)  # 4 + 99 on one line
    with pytest.raises(SaleError, match="no line"):
        sale.set_quantity(1, 2)
    with pytest.raises(SaleError, match="no line"):
        sale.void_line(-1)
    sale.void_line(0)
    assert sale.lines[0].voided and sale.lines[0].amount == 0 and sale.is_empty and sale.item_count == 0
    assert len(sale.lines) == 1 and sale.active_lines == ()
    with pytest.raises(SaleError, match="already voided"):
        sale.void_line(0)
    with pytest.raises(SaleError, match="already voided"):
        sale.set_quantity(0, 2)


def test_a_sale_holds_at_most_max_lines() -> None:
    sale = Sale()
    for index in range(MAX_LINES):
        sale.add(TUNA if index % 2 else SALMON)
    with pytest.raises(SaleError, match=str(MAX_LINES)):
        sale.add(BEER)
    assert len(sale.lines) == MAX_LINES


def test_age_check_follows_live_restricted_lines() -> None:
    sale = Sale()
    sale.add(SALMON)
    assert not sale.needs_age_check and not sale.age_check_pending
    sale.add(BEER)
    assert sale.needs_age_check and sale.age_check_pending
    sale.age_confirmed = True
    assert sale.needs_age_check and not sale.age_check_pending
    sale.void_line(1)
    assert not sale.needs_age_check


def test_ten_percent_items_summing_1100_include_100_tax() -> None:
    sale = Sale()
    sale.add(item(600, 10))
    sale.add(item(500, 10))
    assert sale.tax_breakdown() == [TaxBucket(10, 1100, 100)]


def test_mixed_receipt_worked_by_hand() -> None:
    sale = Sale()
    sale.add(TUNA)  # 150, 8 %
    sale.add(product("4901085001073"), 2)  # 緑茶 525ml 162 × 2 = 324, 8 %
    sale.add(BEER)  # 245, 10 %
    sale.add(product("4549001001075"))  # ギフトカード 1,000円, non-taxable
    # 8 %: 474 * 8 / 108 = 35.1 -> 35;  10 %: 245 * 10 / 110 = 22.27 -> 22;  0 %: no tax
    assert sale.tax_breakdown() == [TaxBucket(10, 245, 22), TaxBucket(8, 474, 35), TaxBucket(0, 1000, 0)]
    assert sale.total == 1719


def test_tax_is_rounded_once_per_rate_not_per_line() -> None:
    prices = [150, 160, 198]  # 8 %: per line 11.1 + 11.9 + 14.7 -> 11 + 11 + 14 = 36
    assert sum(included_tax(price, 8) for price in prices) == 36
    sale = Sale()
    for price in prices:
        sale.add(item(price, 8))
    # on the receipt total: 508 * 8 / 108 = 37.6 -> 37, one yen more than adding up rounded lines
    assert sale.tax_breakdown() == [TaxBucket(8, 508, 37)]
    assert "切捨て" in TAX_ROUNDING_NOTE


def test_included_tax_rounds_down_and_keeps_the_sign() -> None:
    assert included_tax(108, 8) == 8 and included_tax(107, 8) == 7
    assert included_tax(110, 10) == 10 and included_tax(109, 10) == 9
    assert included_tax(5000, 0) == 0
    assert included_tax(-508, 8) == -37


products = st.builds(
    item,
    price=st.integers(min_value=0, max_value=100_000),
    rate=st.sampled_from([0, 8, 10]),
    age=st.booleans(),
) | st.sampled_from(list(CATALOG))
actions = st.lists(
    st.tuples(products, st.integers(min_value=1, max_value=9), st.booleans()),
    min_size=0,
    max_size=11,  # 11 × 9 never overflows a line
)


def ring_up(plan: list[tuple[Product, int, bool]]) -> Sale:
    sale = Sale()
    for goods, quantity, void in plan:
        index = sale.add(goods, quantity)
        if void:
            sale.void_line(index)
    return sale


@given(actions)
def test_buckets_add_up_to_the_total_and_never_overstate_tax(plan: list[tuple[Product, int, bool]]) -> None:
    sale = ring_up(plan)
    buckets = sale.tax_breakdown()
    assert sum(bucket.taxable for bucket in buckets) == sale.total
    assert [bucket.rate for bucket in buckets] == [rate for rate in (10, 8, 0) if rate in {b.rate for b in buckets}]
    assert sale.total == sum(line.product.price * line.quantity for line in sale.active_lines)
    for bucket in buckets:
        exact = bucket.taxable * bucket.rate
        assert bucket.tax * (100 + bucket.rate) <= exact < (bucket.tax + 1) * (100 + bucket.rate)
        assert bucket.taxable == sum(line.amount for line in sale.active_lines if line.product.tax_rate == bucket.rate)


@given(actions)
def test_voiding_everything_leaves_nothing(plan: list[tuple[Product, int, bool]]) -> None:
    sale = ring_up(plan)
    lines = len(sale.lines)
    sale.void_all()
    assert sale.total == 0 and sale.item_count == 0 and sale.is_empty
    assert sale.tax_breakdown() == [] and not sale.needs_age_check
    assert len(sale.lines) == lines  # voids stay on the receipt
