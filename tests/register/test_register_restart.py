"""The register at start, with wallet payments left pending by a register stopped mid-payment.

Before anyone can sign in, the unfinished payments are checked with the core and the clerk reads what was
done: one the core charged is recorded as a sale (its receipt printed), one the core never saw is reversed.
When the core cannot be reached the orders stay pending: the clerk may sell, F9 checks again, and the shift
cannot close until none is left. A real core on loopback, the Textual register driven by Pilot.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from textual.pilot import Pilot

from hardware.printer import dummy_printer
from payment_core.api import create_app
from payment_core.models import Payment
from payment_core.server import ServerThread
from possim.bench.served import free_port
from protocol import PaymentStatus
from terminal.catalog import Product
from terminal.client import PaymentClient
from terminal.register import RegisterApp, RegisterOptions, Till
from terminal.register.screens.pending import PendingScreen
from terminal.register.screens.sale import SaleScreen
from terminal.register.screens.shift import ShiftScreen
from tests.register.conftest import CLERK_ID, CLERK_PIN, FUNDS, World
from tests.register.pilot_helpers import sign_in, text_of, wait_for
from tests.support import balance


def _products(world: World) -> tuple[Product, Product]:
    cheap = [p for p in world.catalog if 100 <= p.price <= 600 and not p.age_restricted]
    return cheap[0], cheap[1]


def _stopped_mid_payment(world: World, charged: Product, lost: Product) -> tuple[str, str]:
    """What a register killed mid-payment leaves: one order the core charged (the answer never recorded) and
    one written down but never sent. The same steps as the register's (``Till.send_wallet``), then no more."""
    till = world.app().till
    till.sign_in(CLERK_ID, CLERK_PIN)
    till.scan(charged.jan)
    paid = till.start_payment()
    outcome = till.send_wallet(paid, world.minter.mint().numeric)
    assert outcome.status == PaymentStatus.SUCCEEDED  # the core has it; the register is "killed" before recording
    till.new_sale()
    till.scan(lost.jan)
    unsent = till.start_payment()
    till.begin_wallet(unsent)  # written down; the register "dies" before the request leaves
    return paid.order_id, unsent.order_id


def _core_status(world: World, order_id: str) -> str | None:
    with world.core.read() as session:
        return session.scalar(
            select(Payment.status).where(Payment.terminal_id == world.terminal_id, Payment.order_id == order_id)
        )


async def checked_at_start(pilot: Pilot[None], app: RegisterApp) -> PendingScreen:
    """The unfinished-payments screen the register opens with, once its check with the core is done."""
    await wait_for(pilot, lambda: isinstance(app.screen, PendingScreen), "the unfinished payments screen")
    screen = app.screen
    assert isinstance(screen, PendingScreen)
    await wait_for(pilot, lambda: screen.result is not None, "the check with the core")
    return screen


async def test_the_restarted_register_records_the_charged_order_and_reverses_the_lost_one(world: World) -> None:
    charged, lost = _products(world)
    paid_order, lost_order = _stopped_mid_payment(world, charged, lost)
    app = world.app()  # the same register file, started again
    assert world.store is not None
    async with app.run_test(size=(140, 42)) as pilot:
        await checked_at_start(pilot, app)
        summary = text_of(app, "#pending-summary")
        assert "2 pending payments found: 1 recorded as paid (receipt R1-000001), 1 reversed" in summary
        lines = text_of(app, "#pending-lines")
        assert f"{paid_order} (receipt R1-000001, ¥{charged.price:,}): paid" in lines
        assert f"{lost_order} (receipt R1-000002, ¥{lost.price:,}): reversed" in lines
        await pilot.press("enter")
        await sign_in(pilot)
        sale_screen = app.screen
        assert isinstance(sale_screen, SaleScreen) and sale_screen.pending == 0
        assert sale_screen.check_action("pending", ()) is False  # F9 is not offered: nothing is pending

    assert (_core_status(world, paid_order), _core_status(world, lost_order)) == ("succeeded", "reversed")
    assert balance(world.core, world.wallet) == FUNDS - charged.price  # charged once, kept; nothing else
    recorded = world.store.journal.get_sale("R1-000001")
    assert recorded is not None and (recorded.order_id, recorded.total) == (paid_order, charged.price)
    assert world.store.journal.get_sale("R1-000002") is None
    assert world.store.wallet_orders.pending() == []
    assert "R1-000001" in (world.tmp / "receipts.escpos").read_bytes().decode("ascii", "replace")


async def test_with_the_core_unreachable_the_order_stays_pending_and_f9_settles_it_later(
    world: World, tmp_path: Path
) -> None:
    charged, lost = _products(world)
    paid_order, _ = _stopped_mid_payment(world, charged, lost)
    assert world.store is not None
    port = free_port()  # where the register looks for the core: nothing answers there yet
    client = PaymentClient(
        f"http://127.0.0.1:{port}", world.terminal_id, world.terminal_secret, retries=1, sleep=lambda _s: None
    )
    till = Till(
        world.store,
        world.catalog,
        client,
        dummy_printer(tmp_path / "receipts.escpos"),
        world.display,
        store_name="possim 渋谷一丁目店",
        terminal_id="R1",
    )
    app = RegisterApp(till, None, None, RegisterOptions(show_clock=False))
    try:
        async with app.run_test(size=(140, 42)) as pilot:
            await checked_at_start(pilot, app)
            summary = text_of(app, "#pending-summary")
            assert "2 pending payments found: 2 still pending: the payment service cannot be reached" in summary
            await pilot.press("enter")  # the clerk may sell meanwhile
            sale_screen = await sign_in(pilot)
            assert sale_screen.pending == 2 and sale_screen.check_action("pending", ()) is True

            await pilot.press("f8")
            await wait_for(pilot, lambda: isinstance(app.screen, ShiftScreen), "the shift screen")
            await pilot.press("f9")  # close the shift: refused while payments are pending
            await wait_for(pilot, lambda: "still pending" in text_of(app, "#shift-message"), "the refusal")
            assert "2 wallet payments of this shift are still pending" in text_of(app, "#shift-message")
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is sale_screen, "the sale screen")

            with ServerThread(create_app(world.core), port=port):  # the core is back
                await pilot.press("f9")
                await wait_for(pilot, lambda: isinstance(app.screen, PendingScreen), "the check again")
                again = app.screen
                assert isinstance(again, PendingScreen)
                await wait_for(pilot, lambda: again.result is not None, "the check with the core")
                assert "1 recorded as paid (receipt R1-000001), 1 reversed" in text_of(app, "#pending-summary")
                await pilot.press("enter")
                await wait_for(pilot, lambda: app.screen is sale_screen, "the sale screen")
                assert sale_screen.pending == 0 and sale_screen.check_action("pending", ()) is False
    finally:
        client.close()

    assert _core_status(world, paid_order) == "succeeded"
    assert balance(world.core, world.wallet) == FUNDS - charged.price
    assert world.store.wallet_orders.pending() == []
