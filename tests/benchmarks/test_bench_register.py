"""The register's figures with the camera live (``make bench``): keypress to screen, frames decoded a
second, and code shown to Approved, measured in a Pilot session against a real core. No thresholds:
the numbers go to the benchmark's extra info and the output, for the issue notes and the README.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from pytest_benchmark.fixture import BenchmarkFixture
from textual import events
from textual.widgets import Input

from terminal.register.screens.payment import APPROVED
from tests.keys import send_keys
from tests.register.conftest import World, world  # noqa: F401 - the fixture, shared with the register tests
from tests.register.pilot_helpers import open_payment, sign_in, wait_for, wait_state

KEYPRESSES = 60
DECODE_WINDOW_SECONDS = 3.0


async def _measure(world: World) -> dict[str, Any]:  # noqa: F811
    app = world.app(camera=True)
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        assert app.camera is not None
        world.stage.toggle_phone()  # a phone in view: every frame is decoded and outlined in the viewfinder
        await wait_for(pilot, lambda: app.camera is not None and app.camera.stats.decoded > 3, "decoded frames")
        entry = app.screen.query_one("#entry", Input)
        latencies = []
        for index in range(KEYPRESSES):
            digit = str(index % 10)
            started = time.perf_counter()
            # The key as the terminal driver delivers it (Pilot's press() would also wait for the whole
            # app to go idle, which a live camera never quite does): event in, until the entry shows it.
            app.post_message(events.Key(digit, digit))
            for _ in range(5_000):
                if entry.value.endswith(digit):
                    break
                await asyncio.sleep(0.0005)
            await asyncio.sleep(0)  # the refresh the new value asked for
            latencies.append((time.perf_counter() - started) * 1000)
            entry.value = ""
        entry.value = ""
        stats = app.camera.stats
        frames0, decoded0, started = stats.frames, stats.decoded, time.perf_counter()
        await pilot.pause(DECODE_WINDOW_SECONDS)
        elapsed = time.perf_counter() - started
        fps = (stats.frames - frames0) / elapsed
        decoded_fps = (stats.decoded - decoded0) / elapsed
        world.stage.clear()
        jan = world.catalog.lookup(next(iter(world.catalog)).jan).jan  # type: ignore[union-attr]
        await send_keys(pilot, "2", "*", *jan, "enter")
        await wait_for(pilot, lambda: not app.till.sale.is_empty, "the product rung up")
        payment = await open_payment(pilot)
        shown = time.perf_counter()
        world.stage.toggle_phone()
        await wait_state(pilot, payment, APPROVED)
        approved_ms = (time.perf_counter() - shown) * 1000
    return {
        "keypress_to_screen_ms_median": round(statistics.median(latencies), 2),
        "keypress_to_screen_ms_p90": round(statistics.quantiles(latencies, n=10)[8], 2),
        "camera_fps": round(fps, 1),
        "frames_decoded_per_second": round(decoded_fps, 1),
        "code_shown_to_approved_ms": round(approved_ms, 1),
    }


def test_bench_register_with_the_camera_live(benchmark: BenchmarkFixture, world: World) -> None:  # noqa: F811
    figures: dict[str, Any] = benchmark.pedantic(  # type: ignore[no-untyped-call]  # pytest-benchmark is untyped
        lambda: asyncio.run(_measure(world)), rounds=1, iterations=1
    )
    benchmark.extra_info.update(figures)
    print("\nregister figures:", figures)
    assert figures["frames_decoded_per_second"] > 0 and figures["keypress_to_screen_ms_median"] > 0
