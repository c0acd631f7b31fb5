"""A clerk's whole sale at the register, driven with Pilot against a real core on a loopback port.

Products are scanned by the virtual camera and typed by a keyboard wedge; the wallet code is minted in
the test, shown to the camera or typed; the core moves the money; the receipt goes to the ESC/POS printer.
"""

from __future__ import annotations

import time
from typing import Any

from textual.app import App
from textual.command import CommandList, CommandPalette

from terminal.catalog import Catalog, Product
from terminal.register.screens.dialogs import AgeCheckDialog, NumberDialog
from terminal.register.screens.payment import APPROVED
from terminal.register.screens.receipt import ReceiptScreen
from tests.keys import send_keys
from tests.register.conftest import FUNDS, World
from tests.register.pilot_helpers import (
    input_focused,
    line_count,
    open_payment,
    sign_in,
    type_code,
    wait_for,
    wait_state,
)
from tests.support import balance


def pick(catalog: Catalog, rate: int, age_restricted: bool = False) -> Product:
    return next(p for p in catalog if p.tax_rate == rate and p.age_restricted == age_restricted and p.price < 2000)


async def test_a_full_sale_scanned_by_camera_and_wedge_paid_by_the_wallet(world: World) -> None:
    food, goods = pick(world.catalog, 8), pick(world.catalog, 10)
    app = world.app(camera=True)
    async with app.run_test(size=(140, 42)) as pilot:
        sale = await sign_in(pilot)
        world.stage.show_product(food.jan)  # the clerk passes the onigiri under the camera
        await wait_for(pilot, lambda: line_count(app) == 1, "the camera to ring up the first product")
        world.stage.clear()
        await type_code(pilot, f"2*{goods.jan}")  # the wedge scanner, with a quantity typed first
        assert line_count(app) == 2
        total = food.price + 2 * goods.price
        assert app.till.sale.total == total
        assert "合計" in world.display.current[1] and f"{total:,}" in world.display.current[1]

        payment = await open_payment(pilot)
        assert payment.attempt.amount == total
        shown_at = time.perf_counter()
        await pilot.press("w")  # the customer holds the phone up to the camera
        await wait_state(pilot, payment, APPROVED)
        code_to_approved_ms = (time.perf_counter() - shown_at) * 1000
        assert "APPROVED" in str(payment.query_one("#pay-state").render())
        assert balance(world.core, world.wallet) == FUNDS - total

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReceiptScreen), "the receipt")
        receipt = world.printer.last_output.decode("cp932", errors="replace") if world.printer else ""
        for expected in (food.name, goods.name, "10%対象", "8%対象", "消費税", "電子マネー", "R1-000001"):
            assert expected in receipt, expected
        assert (world.tmp / "receipts.escpos").stat().st_size > 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is sale, "the next customer")
        assert app.till.sale.is_empty and line_count(app) == 0
        record = world.store.journal.get_sale("R1-000001") if world.store else None
        assert record is not None and record.total == total and record.tender == "wallet"
    print(f"\ncode shown to Approved on screen: {code_to_approved_ms:.0f} ms")


async def test_cash_tender_gives_change(world: World) -> None:
    food = pick(world.catalog, 8)
    app = world.app()
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        await type_code(pilot, food.jan)
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, NumberDialog), "the cash dialog")
        await input_focused(pilot, "the cash amount")
        await pilot.press("ctrl+u")  # clears the pre-filled exact amount
        await send_keys(pilot, *"1000", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReceiptScreen), "the receipt")
        receipt = world.printer.last_output.decode("cp932", errors="replace") if world.printer else ""
        assert "お釣り" in receipt and f"{1000 - food.price:,}" in receipt
    assert balance(world.core, world.wallet) == FUNDS  # cash moves no wallet money


async def test_quantity_void_line_void_sale_and_age_check(world: World) -> None:
    food, beer = pick(world.catalog, 8), pick(world.catalog, 10, age_restricted=True)
    app = world.app()
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        await type_code(pilot, food.jan)
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, NumberDialog), "the quantity dialog")
        await pilot.press("ctrl+u", "3", "enter")
        await wait_for(pilot, lambda: app.till.sale.lines[0].quantity == 3, "quantity 3")

        await type_code(pilot, beer.jan)
        await wait_for(pilot, lambda: isinstance(app.screen, AgeCheckDialog), "the age check")
        await pilot.press("n")  # the customer cannot confirm: the beer comes off
        await pilot.pause()
        assert app.till.sale.lines[1].voided and app.till.sale.total == 3 * food.price

        await type_code(pilot, beer.jan)
        await wait_for(pilot, lambda: isinstance(app.screen, AgeCheckDialog), "the age check again")
        await pilot.press("y")
        await pilot.pause()
        assert app.till.sale.age_confirmed and app.till.sale.total == 3 * food.price + beer.price

        await pilot.press("f5")  # void the selected (last) line
        await pilot.pause()
        assert app.till.sale.total == 3 * food.price
        await type_code(pilot, "4900000000000")  # not in the catalog: said, nothing added
        assert "not in the catalog" in str(app.screen.query_one("#sale-message").render())
        await pilot.press("f6")
        await pilot.pause()
        assert app.till.sale.is_empty


def first_command(app: App[Any]) -> str:
    """The command palette's first offer, as it reads ("" while the palette is not up or offers nothing)."""
    screen = app.screen
    if not isinstance(screen, CommandPalette):
        return ""
    offers = screen.query_one(CommandList)
    return str(offers.get_option_at_index(0).prompt) if offers.option_count else ""


async def test_the_command_palette_offers_the_register_actions(world: World) -> None:
    food = pick(world.catalog, 8)
    app = world.app()
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        await type_code(pilot, food.jan)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await send_keys(pilot, *"void sale")
        await wait_for(pilot, lambda: "void sale" in first_command(app).lower(), "the palette to offer Void sale")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.till.sale.is_empty, "the palette to void the sale")


async def test_operator_sign_in_is_throttled(world: World) -> None:
    app = world.app()
    async with app.run_test(size=(140, 42)) as pilot:
        for _ in range(5):
            await pilot.press("ctrl+u", *"1001", "enter")
            await pilot.pause()
            await send_keys(pilot, *"0000", "enter")
            await wait_for(
                pilot, lambda: "Checking" not in str(app.screen.query_one("#signin-message").render()), "an answer"
            )
            await pilot.press("shift+tab")
        message = str(app.screen.query_one("#signin-message").render())
        assert "Too many" in message or "try again" in message.lower()
        await pilot.press("ctrl+u", *"1001", "enter")
        await pilot.pause()
        await send_keys(pilot, *"2580", "enter")  # even the right PIN waits out the lock
        await wait_for(
            pilot, lambda: "Checking" not in str(app.screen.query_one("#signin-message").render()), "an answer"
        )
        assert app.till.clerk is None


async def test_a_serial_scanner_rings_up_products(world: World) -> None:
    """A 1-D scanner on a serial port (pyserial's loop:// stands in for /dev/ttyACM0)."""
    import serial

    port = serial.serial_for_url("loop://", timeout=0.1)
    food = pick(world.catalog, 8)
    app = world.app(serial_scanner=port)
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        port.write(f"{food.jan}\r\n".encode())
        await wait_for(pilot, lambda: line_count(app) == 1, "the serial scan")
        assert app.till.sale.total == food.price
    port.close()
