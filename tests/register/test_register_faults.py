"""The register under faults: the local store failing after the core charged, quitting mid-payment,
double key presses, and keys pressed where they make no sense. Nothing is charged twice or lost."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from terminal.register.screens.payment import APPROVED, AWAITING, NOT_RECORDED
from terminal.register.screens.receipt import ReceiptScreen
from terminal.register.screens.refund import RefundScreen
from tests.register.conftest import FUNDS, World
from tests.register.pilot_helpers import open_payment, sign_in, type_code, wait_for, wait_state
from tests.support import balance
from wallet_app.client import WalletClient


async def test_core_charged_but_the_store_failed_is_recorded_on_retry_never_charged_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = next(p for p in world.catalog if 100 <= p.price <= 500 and not p.age_restricted)
    app = world.app()
    assert world.store is not None
    real_record = world.store.journal.record_sale
    failures = [RuntimeError("disk full")]

    def flaky_record(**kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_record(**kwargs)

    monkeypatch.setattr(world.store.journal, "record_sale", flaky_record)
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        await type_code(pilot, product.jan)
        screen = await open_payment(pilot)
        await type_code(pilot, world.minter.mint().numeric)
        await wait_state(pilot, screen, NOT_RECORDED)
        assert "Do not take another payment" in str(screen.query_one("#pay-state").render())
        await pilot.press("escape")  # refused: the customer has paid
        await pilot.press("ctrl+q")  # refused too
        await pilot.pause()
        assert app.screen is screen and app.is_running
        await pilot.press("f5")
        await wait_state(pilot, screen, APPROVED)
    assert balance(world.core, world.wallet) == FUNDS - product.price
    assert world.store.journal.get_sale("R1-000001") is not None


async def test_quit_is_refused_while_the_customer_is_asked(world: World) -> None:
    product = max((p for p in world.catalog if not p.age_restricted and p.price <= 5000), key=lambda p: p.price)
    quantity = 10_001 // product.price + 1
    release = threading.Event()

    def held(_seconds: float) -> None:  # the poll waits until the test lets it go
        release.wait(10)

    app = world.app(sleep=held)
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        await type_code(pilot, f"{quantity}*{product.jan}")
        screen = await open_payment(pilot)
        await type_code(pilot, world.minter.mint().numeric)
        await wait_state(pilot, screen, AWAITING)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert app.is_running and app.payment_open()
        with WalletClient(world.server.url) as phone:
            for waiting in phone.awaiting(world.wallet):
                phone.confirm(world.wallet, str(waiting["id"]), approve=True)
        release.set()
        await wait_state(pilot, screen, APPROVED)
        assert not app.payment_open()
    assert balance(world.core, world.wallet) == FUNDS - quantity * product.price


async def test_a_double_press_refunds_once(world: World) -> None:
    product = next(p for p in world.catalog if 300 <= p.price <= 700 and not p.age_restricted)
    app = world.app()
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        await type_code(pilot, product.jan)
        screen = await open_payment(pilot)
        await type_code(pilot, world.minter.mint().numeric)
        await wait_state(pilot, screen, APPROVED)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReceiptScreen), "the receipt")
        await pilot.press("enter", "f7")
        await wait_for(pilot, lambda: isinstance(app.screen, RefundScreen), "the refund screen")
        await pilot.press(*"R1-000001", "enter", "1", "0", "0", "f2", "f2")  # an impatient clerk
        await wait_for(pilot, lambda: isinstance(app.screen, ReceiptScreen), "the refund receipt")
    assert balance(world.core, world.wallet) == FUNDS - product.price + 100
    record = world.store.journal.get_sale("R1-000001") if world.store else None
    assert record is not None and record.refunded == 100


async def test_quantity_of_a_voided_line_is_refused_with_words(world: World) -> None:
    product = next(p for p in world.catalog if not p.age_restricted)
    app = world.app()
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        await type_code(pilot, product.jan)
        await pilot.press("f5", "f4")
        await pilot.pause()
        assert "voided" in str(app.screen.query_one("#sale-message").render())
        assert app.till.sale.total == 0 and app.is_running
