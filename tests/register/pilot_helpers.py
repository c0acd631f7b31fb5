"""Driving the register with Textual's Pilot: bounded waits (never a fixed sleep) and common steps."""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from terminal.register import RegisterApp
from terminal.register.screens.payment import PaymentScreen
from terminal.register.screens.sale import SaleScreen
from tests.keys import send_keys
from tests.register.conftest import CLERK_ID, CLERK_PIN

ROUNDS = 600  # × 25 ms: at most 15 s for anything (a worker, the camera, the core)


async def wait_for(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    for _ in range(ROUNDS):
        if condition():
            return
        await pilot.pause(0.025)
    raise AssertionError(f"timed out waiting for {what}")


async def input_focused(pilot: Pilot[None], what: str) -> Input:
    """Wait until an entry field has the focus: a screen is current before its compose and focus have run,
    and keys pressed before that go nowhere (as they would for a clerk typing before the screen is up)."""
    await wait_for(pilot, lambda: isinstance(pilot.app.focused, Input), what)
    focused = pilot.app.focused
    assert isinstance(focused, Input)
    return focused


async def sign_in(pilot: Pilot[None]) -> SaleScreen:
    await input_focused(pilot, "the clerk id field")
    await send_keys(pilot, *CLERK_ID, "enter")
    await wait_for(pilot, lambda: getattr(pilot.app.focused, "id", None) != "clerk-id", "the PIN field")
    await send_keys(pilot, *CLERK_PIN, "enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SaleScreen), "the sale screen")
    screen = pilot.app.screen
    assert isinstance(screen, SaleScreen)
    await input_focused(pilot, "the sale screen's entry line")
    return screen


async def type_code(pilot: Pilot[None], code: str) -> None:
    """What a keyboard-wedge scanner does: the digits, then Enter, into the focused entry line; returns
    once the entry has taken the line (it empties itself)."""
    entry = await input_focused(pilot, "an entry line with the focus")
    await send_keys(pilot, *code)
    await wait_for(pilot, lambda: entry.value == code, f"{code} typed into the entry")
    await send_keys(pilot, "enter")
    await wait_for(pilot, lambda: entry.value == "", f"{code} taken by the entry")


def line_count(app: RegisterApp) -> int:
    return app.screen.query_one("#lines", DataTable).row_count


def text_of(app: RegisterApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def open_payment(pilot: Pilot[None]) -> PaymentScreen:
    await pilot.press("f2")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PaymentScreen), "the payment screen")
    screen = pilot.app.screen
    assert isinstance(screen, PaymentScreen)
    return screen


async def wait_state(pilot: Pilot[None], screen: PaymentScreen, *states: str) -> None:
    await wait_for(pilot, lambda: screen.state in states, f"payment state {states} (now {screen.state})")
