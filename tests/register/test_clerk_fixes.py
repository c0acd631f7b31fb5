"""What a new clerk tripped on at the refund screen: the receipt-number example, the times in the sale
list, the item count on a refund receipt, and where "Next customer" lands after a refund."""

from __future__ import annotations

import re

from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from protocol import Clock
from terminal.register import RegisterApp
from terminal.register.screens.dialogs import NumberDialog
from terminal.register.screens.receipt import ReceiptScreen
from terminal.register.screens.refund import RefundScreen
from terminal.register.screens.sale import SaleScreen
from terminal.register.screens.shift import ShiftScreen
from terminal.register_store import format_receipt_no
from tests.register.conftest import FIXED_TIME, World
from tests.register.pilot_helpers import sign_in, type_code, wait_for

FIXED: Clock = lambda: FIXED_TIME  # noqa: E731 - 03:15 UTC, 12:15 in Tokyo


async def _cash_sale(pilot: Pilot[None], app: RegisterApp, jan: str) -> str:
    await type_code(pilot, jan)
    await pilot.press("f3")
    await wait_for(pilot, lambda: isinstance(app.screen, NumberDialog), "the cash dialog")
    await pilot.press("enter")  # the exact amount
    await wait_for(pilot, lambda: isinstance(app.screen, ReceiptScreen), "the receipt")
    screen = app.screen
    assert isinstance(screen, ReceiptScreen) and screen.completed.receipt is not None
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen), "the sale screen")
    return screen.completed.receipt.receipt_no


async def _refund(pilot: Pilot[None], app: RegisterApp, receipt_no: str, amount: str) -> list[str]:
    """Refund ``amount`` (blank: all that is left) of ``receipt_no``; the refund receipt's lines."""
    await pilot.press("f7")
    await wait_for(pilot, lambda: isinstance(app.screen, RefundScreen), "the refund screen")
    await pilot.press(*receipt_no, "enter", *amount, "f2")
    await wait_for(pilot, lambda: isinstance(app.screen, ReceiptScreen), "the refund receipt")
    screen = app.screen
    assert isinstance(screen, ReceiptScreen)
    return screen.completed.lines


def _subtotal(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("小計"))


async def test_the_receipt_example_is_in_the_registers_own_format(world: World) -> None:
    product = next(p for p in world.catalog if not p.age_restricted)
    app = world.app()
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        real = await _cash_sale(pilot, app, product.jan)
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, RefundScreen), "the refund screen")
        placeholder = app.screen.query_one("#refund-receipt", Input).placeholder
    example = format_receipt_no("R1", 12)
    assert example == "R1-000012" and f"e.g. {example}" in placeholder, placeholder
    assert re.fullmatch(r"R1-\d{6}", real) and len(real) == len(example)


async def test_the_sale_list_and_the_shift_report_show_the_stores_time(world: World) -> None:
    product = next(p for p in world.catalog if not p.age_restricted)
    app = world.app(clock=FIXED)
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        receipt_no = await _cash_sale(pilot, app, product.jan)
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, RefundScreen), "the refund screen")
        table = app.screen.query_one("#recent", DataTable)
        row = [str(cell) for cell in table.get_row(receipt_no)]
        assert "11/22 12:15" in row, row  # as the receipt prints it (2026年11月22日(日) 12:15), not 03:15 UTC
        receipt = world.printer.last_output.decode("cp932", errors="replace") if world.printer else ""
        assert "12:15" in receipt
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen), "the sale screen")
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, ShiftScreen), "the shift report")
        report = str(app.screen.query_one("#report").render())
        assert "2026-11-22 12:15 JST" in report and "UTC" not in report, report


async def test_a_refund_receipt_counts_the_items_given_back(world: World) -> None:
    product = next(p for p in world.catalog if 100 <= p.price <= 300 and not p.age_restricted)
    app = world.app()
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        whole = await _cash_sale(pilot, app, product.jan)
        lines = await _refund(pilot, app, whole, "")  # blank: the whole sale comes back
        assert _subtotal(lines).endswith(f"1点 -¥{product.price:,}"), lines
        assert any(line.startswith(product.name[:6]) and line.endswith(f"-¥{product.price:,}") for line in lines)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen), "the sale screen")

        part = await _cash_sale(pilot, app, f"2*{product.jan}")
        lines = await _refund(pilot, app, part, "50")  # part of the amount: no goods as such come back
        assert _subtotal(lines).endswith(" -¥50") and "点" not in _subtotal(lines), lines


async def test_next_customer_after_a_refund_is_the_sale_screen_where_f8_works(world: World) -> None:
    product = next(p for p in world.catalog if not p.age_restricted)
    app = world.app()
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        receipt_no = await _cash_sale(pilot, app, product.jan)
        await _refund(pilot, app, receipt_no, "")
        await pilot.press("enter")  # Next customer
        await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen), "the sale screen after the refund")
        assert not any(isinstance(screen, RefundScreen) for screen in app.screen_stack)
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, ShiftScreen), "the shift report from F8")
        assert "返品 Refunds  1件" in str(app.screen.query_one("#report").render())
