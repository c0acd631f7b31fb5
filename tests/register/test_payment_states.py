"""Every payment state the clerk can meet, each with its own words on screen, against a real core.

Declines each show a human reason and move nothing; a payment above the threshold waits for the
customer's approval on the phone (approved, or reversed after the 30 s timeout); the core going down
mid-payment shows a banner, and F5 once it is back charges exactly once.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from payment_core import accounts, devices
from payment_core.api import create_app
from payment_core.models import Payment
from payment_core.server import ServerThread
from protocol import OffsetClock, mint_code, system_clock
from terminal.catalog import Product
from terminal.register.screens.payment import APPROVED, DECLINED, UNREACHABLE_STATE, PaymentScreen
from tests.register.conftest import FUNDS, World
from tests.register.pilot_helpers import open_payment, sign_in, type_code, wait_for, wait_state
from tests.support import balance
from wallet_app.client import WalletClient


def priciest(world: World, below: int) -> Product:
    return max((p for p in world.catalog if p.price <= below and not p.age_restricted), key=lambda p: p.price)


def state_text(screen: PaymentScreen) -> str:
    return str(screen.query_one("#pay-state").render())


async def _ring_up_and_open(pilot: object, world: World, quantity: int, product: Product) -> PaymentScreen:
    await sign_in(pilot)  # type: ignore[arg-type]
    await type_code(pilot, f"{quantity}*{product.jan}")  # type: ignore[arg-type]
    return await open_payment(pilot)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("insufficient", "残高不足"),
        ("used", "使用済み"),
        ("expired", "有効期限切れ"),
        ("frozen", "利用停止中"),
        ("forged", "無効なコード"),
        ("revoked", "無効な端末"),
    ],
)
async def test_each_decline_shows_its_reason_and_moves_nothing(world: World, case: str, words: str) -> None:
    cheap = priciest(world, 300)
    quantity = 99 if case == "insufficient" else 1
    product = priciest(world, 1000) if case == "insufficient" else cheap
    code = world.minter.mint()
    text = code.numeric
    if case == "used":
        first = world.app()
        async with first.run_test(size=(140, 42)) as pilot:  # one register uses the code...
            screen = await _ring_up_and_open(pilot, world, 1, cheap)
            await type_code(pilot, text)
            await wait_state(pilot, screen, APPROVED)
    elif case == "expired":
        text = mint_code(world.wallet.secret, world.wallet.device_id, OffsetClock(-120, system_clock)(), 1).numeric
    elif case == "frozen":
        accounts.set_account_status(world.core, world.wallet.account_id, "frozen", "test")
    elif case == "forged":
        from possim.headless_demo import forge

        text = forge(code)
    elif case == "revoked":
        devices.revoke_device(world.core, world.wallet.device_id, "test")
    before = balance(world.core, world.wallet)

    app = world.app()
    async with app.run_test(size=(140, 42)) as pilot:
        screen = await _ring_up_and_open(pilot, world, quantity, product)
        await type_code(pilot, text)
        await wait_state(pilot, screen, DECLINED)
        assert "DECLINED" in state_text(screen) and words in state_text(screen), state_text(screen)
        assert balance(world.core, world.wallet) == before
        await pilot.press("escape")  # back to the sale, which is still there to pay another way
        await wait_for(pilot, lambda: not isinstance(app.screen, PaymentScreen), "the sale screen")
        assert not app.till.sale.is_empty
    if case == "insufficient":
        assert before == FUNDS


async def test_a_big_payment_waits_for_the_phone_then_is_approved(world: World) -> None:
    """Above 10,000 yen the core asks the phone; the register polls (fake sleep: the phone answers at once)."""
    product = priciest(world, 5000)
    quantity = 10_001 // product.price + 1
    amount = quantity * product.price
    assert 10_000 < amount <= FUNDS
    seen_waiting = threading.Event()

    def phone_approves(_seconds: float) -> None:
        seen_waiting.set()
        with WalletClient(world.server.url) as phone:
            for waiting in phone.awaiting(world.wallet):
                phone.confirm(world.wallet, str(waiting["id"]), approve=True)

    app = world.app(sleep=phone_approves)
    async with app.run_test(size=(140, 42)) as pilot:
        screen = await _ring_up_and_open(pilot, world, quantity, product)
        await type_code(pilot, world.minter.mint().numeric)
        await wait_state(pilot, screen, APPROVED)
        assert seen_waiting.is_set()
    assert balance(world.core, world.wallet) == FUNDS - amount


async def test_a_big_payment_not_approved_in_30_seconds_is_reversed(world: World) -> None:
    """The client's waits are instant here: 12 polls of 2.5 s pass at once, then the order is reversed."""
    product = priciest(world, 5000)
    quantity = 10_001 // product.price + 1
    ticks: list[float] = []
    app = world.app(sleep=ticks.append)
    async with app.run_test(size=(140, 42)) as pilot:
        screen = await _ring_up_and_open(pilot, world, quantity, product)
        await type_code(pilot, world.minter.mint().numeric)
        await wait_state(pilot, screen, DECLINED)
        assert "REVERSED" in state_text(screen) and "did not approve in time" in state_text(screen)
    assert sum(ticks) == pytest.approx(30.0)
    assert balance(world.core, world.wallet) == FUNDS
    with world.core.transaction() as session:
        payment = session.scalars(select(Payment).where(Payment.amount == quantity * product.price)).one()
        assert payment.status == "reversed"


async def test_the_core_down_mid_payment_then_back_charges_exactly_once(world: World) -> None:
    product = priciest(world, 500)
    app = world.app()
    async with app.run_test(size=(140, 42)) as pilot:
        screen = await _ring_up_and_open(pilot, world, 1, product)
        port = world.server.port
        world.server.stop()  # the core goes down as the customer shows the code
        code = world.minter.mint().numeric
        await type_code(pilot, code)
        await wait_state(pilot, screen, UNREACHABLE_STATE)
        assert "SERVICE UNREACHABLE" in state_text(screen) and "same order number" in state_text(screen)
        assert balance(world.core, world.wallet) == FUNDS

        world.server = ServerThread(create_app(world.core), port=port).start()  # back on the same port
        await pilot.press("f5")
        await wait_state(pilot, screen, APPROVED)
        await pilot.press("f5")  # a second press after approval does nothing
        await pilot.pause()
    assert balance(world.core, world.wallet) == FUNDS - product.price
    with world.core.transaction() as session:
        charged = session.scalar(select(func.count()).select_from(Payment).where(Payment.status == "succeeded"))
    assert charged == 1
