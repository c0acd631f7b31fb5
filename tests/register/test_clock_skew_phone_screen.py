"""The register tells the clerk when it is the customer's phone clock that is wrong (Pilot, real core)."""

from __future__ import annotations

import re

from protocol import OffsetClock, mint_code, system_clock
from terminal.register.screens.payment import DECLINED
from tests.register.conftest import World
from tests.register.pilot_helpers import open_payment, sign_in, type_code, wait_state
from tests.support import balance

# The phone mints by a clock 180 s ahead of the core's (the real clock here): the core measures 180 s less the
# seconds the code took to reach it.
PHONE_AHEAD = re.compile(
    r"時刻エラー — The customer's phone clock is (3 min|2 min \d+ s) ahead — ask them to set the time "
    r"automatically, then show a new code\."
)


async def test_a_phone_clock_too_far_ahead_is_named_on_the_payment_screen(world: World) -> None:
    app = world.app()
    before = balance(world.core, world.wallet)
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        cheapest = min((p for p in world.catalog if not p.age_restricted), key=lambda p: p.price)
        await type_code(pilot, cheapest.jan)
        screen = await open_payment(pilot)
        phone_time = OffsetClock(180, system_clock)()
        await type_code(pilot, mint_code(world.wallet.secret, world.wallet.device_id, phone_time, 0).numeric)
        await wait_state(pilot, screen, DECLINED)
        shown = " ".join(str(screen.query_one("#pay-state").render()).split())
        assert "DECLINED" in shown and PHONE_AHEAD.search(shown), shown
        assert "register's" not in shown
    assert balance(world.core, world.wallet) == before
