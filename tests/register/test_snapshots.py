"""Snapshots (pytest-textual-snapshot) of the register's main screens, with a fixed clock and no camera.

Regenerate after a deliberate change with ``pytest tests/register/test_snapshots.py --snapshot-update``
and look at the SVGs in ``__snapshots__`` before committing them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from protocol import Clock
from terminal.register.screens.payment import APPROVED, DECLINED
from terminal.register.screens.receipt import ReceiptScreen
from tests.register.conftest import FIXED_TIME, World
from tests.register.pilot_helpers import open_payment, sign_in, type_code, wait_for, wait_state

SIZE = (120, 36)
FIXED: Clock = lambda: FIXED_TIME  # noqa: E731


def _basket(world: World) -> list[str]:
    food = next(p for p in world.catalog if p.tax_rate == 8 and p.price < 300)
    drink = next(p for p in world.catalog if p.tax_rate == 8 and p.category == "drink")
    goods = next(p for p in world.catalog if p.tax_rate == 10 and not p.age_restricted)
    return [food.jan, f"2*{drink.jan}", goods.jan]


async def _ring_up(pilot: Pilot[None], world: World) -> None:
    await sign_in(pilot)
    for code in _basket(world):
        await type_code(pilot, code)


def _compare(snap_compare: Callable[..., bool], world: World, run_before: Callable[[Pilot[None]], Any]) -> bool:
    app = world.app(clock=FIXED, show_clock=False)

    async def steady(pilot: Pilot[None]) -> None:
        await run_before(pilot)
        for entry in pilot.app.screen.query(Input):  # a blinking cursor is drawn or not by the clock: hold it on
            entry.cursor_blink = False
        await pilot.pause()

    return snap_compare(app, terminal_size=SIZE, run_before=steady)


def test_sale_screen(snap_compare: Callable[..., bool], world: World) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _ring_up(pilot, world)

    assert _compare(snap_compare, world, run_before)


def test_payment_waiting_screen(snap_compare: Callable[..., bool], world: World) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _ring_up(pilot, world)
        await open_payment(pilot)

    assert _compare(snap_compare, world, run_before)


def test_approved_screen(snap_compare: Callable[..., bool], world: World) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _ring_up(pilot, world)
        screen = await open_payment(pilot)
        await type_code(pilot, world.minter.mint().numeric)
        await wait_state(pilot, screen, APPROVED)

    assert _compare(snap_compare, world, run_before)


def test_declined_screen(snap_compare: Callable[..., bool], world: World) -> None:
    expensive = max((p for p in world.catalog if not p.age_restricted), key=lambda p: p.price)

    async def run_before(pilot: Pilot[None]) -> None:
        await sign_in(pilot)
        await type_code(pilot, f"99*{expensive.jan}")  # more than the wallet holds
        screen = await open_payment(pilot)
        await type_code(pilot, world.minter.mint().numeric)
        await wait_state(pilot, screen, DECLINED)

    assert _compare(snap_compare, world, run_before)


def test_receipt_screen(snap_compare: Callable[..., bool], world: World) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _ring_up(pilot, world)
        await pilot.press("f3", "ctrl+u", *"2000", "enter")  # cash: no payment id, so the receipt is stable
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ReceiptScreen), "the receipt")

    assert _compare(snap_compare, world, run_before)
