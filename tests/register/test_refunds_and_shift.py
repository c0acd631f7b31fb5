"""After the sale: refund part then the rest through the core, void a whole sale, and close the shift."""

from __future__ import annotations

from textual.pilot import Pilot

from terminal.register import RegisterApp
from terminal.register.screens.payment import APPROVED
from terminal.register.screens.receipt import ReceiptScreen
from terminal.register.screens.refund import RefundScreen
from terminal.register.screens.sale import SaleScreen
from terminal.register.screens.shift import ShiftScreen
from terminal.register.screens.signin import SignInScreen
from tests.keys import send_keys
from tests.register.conftest import FUNDS, World
from tests.register.pilot_helpers import open_payment, sign_in, type_code, wait_for, wait_state
from tests.support import balance


async def _wallet_sale(pilot: Pilot[None], world: World, jan: str, quantity: int) -> None:
    await type_code(pilot, f"{quantity}*{jan}")
    screen = await open_payment(pilot)
    await type_code(pilot, world.minter.mint().numeric)
    await wait_state(pilot, screen, APPROVED)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ReceiptScreen), "the receipt")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SaleScreen), "the sale screen")


async def _refund_screen(pilot: Pilot[None], app: RegisterApp, receipt_no: str) -> RefundScreen:
    await pilot.press("f7")
    await wait_for(pilot, lambda: isinstance(app.screen, RefundScreen), "the refund screen")
    await pilot.press(*receipt_no, "enter")
    screen = app.screen
    assert isinstance(screen, RefundScreen)
    return screen


async def test_partial_then_full_refund_through_the_core(world: World) -> None:
    product = next(p for p in world.catalog if 300 <= p.price <= 700 and not p.age_restricted)
    app = world.app()
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        await _wallet_sale(pilot, world, product.jan, 2)
        total = 2 * product.price
        assert balance(world.core, world.wallet) == FUNDS - total

        screen = await _refund_screen(pilot, app, "R1-000001")
        assert f"{total:,}" in str(screen.query_one("#refund-message").render())
        await send_keys(pilot, *str(product.price), "f2")  # refund one of the two
        await wait_for(pilot, lambda: isinstance(app.screen, ReceiptScreen), "the refund receipt")
        printed = world.printer.last_output.decode("cp932", errors="replace") if world.printer else ""
        assert "返品" in printed and f"{product.price:,}" in printed
        assert balance(world.core, world.wallet) == FUNDS - product.price
        await pilot.press("enter")  # Next customer: the refund is done, back to the sale
        await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen), "back to the sale")

        screen = await _refund_screen(pilot, app, "R1-000001")
        await pilot.press("f2")  # the amount is blank: refund all that is left
        await wait_for(pilot, lambda: isinstance(app.screen, ReceiptScreen), "the second refund receipt")
        assert balance(world.core, world.wallet) == FUNDS
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen), "back to the sale")

        screen = await _refund_screen(pilot, app, "R1-000001")
        await pilot.press("f2")  # nothing left: refused with a reason, nothing moves
        await wait_for(pilot, lambda: "left to refund" in str(screen.query_one("#refund-message").render()), "refusal")
        assert balance(world.core, world.wallet) == FUNDS
    record = world.store.journal.get_sale("R1-000001") if world.store else None
    assert record is not None and record.status == "refunded" and record.refunded == total


async def test_void_a_past_sale_and_close_the_shift_with_its_report(world: World) -> None:
    product = next(p for p in world.catalog if 100 <= p.price <= 300 and not p.age_restricted)
    app = world.app()
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        await _wallet_sale(pilot, world, product.jan, 1)
        await _wallet_sale(pilot, world, product.jan, 2)
        assert balance(world.core, world.wallet) == FUNDS - 3 * product.price

        await _refund_screen(pilot, app, "R1-000002")
        await pilot.press("f4")  # void the whole second sale: the core reverses it
        await wait_for(pilot, lambda: isinstance(app.screen, ReceiptScreen), "the void receipt")
        assert balance(world.core, world.wallet) == FUNDS - product.price
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen), "back to the sale")

        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, ShiftScreen), "the shift report")
        report = str(app.screen.query_one("#report").render())
        assert "売上 Sales  1件" in report and "取消 Voided  1件" in report, report
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, ReceiptScreen), "the Z-report printout")
        printed = world.printer.last_output.decode("cp932", errors="replace") if world.printer else ""
        assert "Z" in printed and "Net" in printed
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SignInScreen), "the sign-in screen")
        assert app.till.clerk is None and world.store is not None and world.store.clerks.current_shift() is None
