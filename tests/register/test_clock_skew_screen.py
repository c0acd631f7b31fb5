"""The register tells the clerk which clock is wrong: driven with the Pilot against a real core."""

from __future__ import annotations

import re

from protocol import OffsetClock, system_clock
from terminal.client import PaymentClient
from terminal.register.screens.payment import DECLINED
from tests.register.conftest import World
from tests.register.pilot_helpers import open_payment, sign_in, type_code, wait_state
from tests.support import balance

# The register signs by a clock 200 s behind the core's (which runs on the real clock here); the seconds the
# core measures are 200 or 201, as the real second may turn between signing and checking.
REGISTER_BEHIND = re.compile(
    r"This register's clock is 3 min 2[01] s behind the core's \(the core's time is \d\d:\d\d:\d\d\) "
    r"— fix the register's time\."
)


async def test_a_register_clock_too_far_behind_is_named_on_the_payment_screen(world: World) -> None:
    """A genuine code, a sale, and the register's own clock 200 s slow: the screen says DECLINED and that this
    register's clock is 3 min 20 s behind the core's, so the clerk fixes the register, not the customer's phone;
    nothing is charged."""
    app = world.app()
    slow = PaymentClient(
        world.server.url, world.terminal_id, world.terminal_secret, clock=OffsetClock(-200, system_clock)
    )
    app.till.client = slow
    before = balance(world.core, world.wallet)
    try:
        async with app.run_test(size=(140, 42)) as pilot:
            await sign_in(pilot)
            cheapest = min((p for p in world.catalog if not p.age_restricted), key=lambda p: p.price)
            await type_code(pilot, cheapest.jan)
            screen = await open_payment(pilot)
            await type_code(pilot, world.minter.mint().numeric)
            await wait_state(pilot, screen, DECLINED)
            shown = " ".join(str(screen.query_one("#pay-state").render()).split())
            assert "DECLINED" in shown and "時刻エラー" in shown and REGISTER_BEHIND.search(shown), shown
            assert "phone" not in shown  # the customer's phone is not blamed
    finally:
        slow.close()
    assert balance(world.core, world.wallet) == before
