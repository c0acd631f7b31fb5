"""The register closing while its workers still post: a camera frame, a scan, a display change or a
camera-stopped note arriving as the screens go must be ignored, never raise (``ScreenStackError``).

The race, made deterministic: a screen that, as the app prunes it at shutdown, posts to the app what a
camera worker posts. Those messages are handled after the screen stack is cleared, exactly as a frame
that arrives while the app shuts down. Then the real shape: quit while the camera runs at full speed.
"""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from protocol import Symbology
from terminal.register.messages import CameraStopped, CodeScanned, DisplayChanged, FramePreview
from tests.register.conftest import World
from tests.register.pilot_helpers import sign_in, wait_for

QUIT_ROUNDS = 4


class LateMessages(Screen[None]):
    """Stands for a camera worker still running while the app closes: it posts as it is unmounted."""

    def compose(self) -> ComposeResult:
        yield Static("closing")

    def on_unmount(self) -> None:
        preview = np.zeros((8, 16, 3), dtype=np.uint8)
        self.app.post_message(FramePreview(preview, True, 15.0))
        self.app.post_message(CodeScanned("4901234567894", Symbology.EAN13, "camera"))
        self.app.post_message(DisplayChanged("ありがとうございました", "Thanks"))
        self.app.post_message(CameraStopped("the camera stream ended"))


async def test_messages_from_the_camera_after_the_screens_are_gone_are_ignored(world: World) -> None:
    app = world.app(camera=True)
    async with app.run_test(size=(120, 36)) as pilot:  # run_test re-raises what the app raised, on exit
        await app.push_screen(LateMessages())
        await wait_for(pilot, lambda: isinstance(app.screen, LateMessages), "the probe screen")
    assert app.return_code in (None, 0)


async def test_quitting_while_the_camera_runs_at_full_speed_never_raises(world: World) -> None:
    """The phone held up: every frame is decoded and previewed. Quit (Ctrl+Q, or the test harness closing
    the app, as in the benchmark) while frames pour in, several times; the feed is stopped and no frame
    reaches a screen that is gone. The first round is on the sale screen (a viewfinder to draw in)."""
    world.stage.toggle_phone()
    for round_ in range(QUIT_ROUNDS):
        app = world.app(camera=True)
        assert app.camera is not None
        async with app.run_test(size=(120, 36)) as pilot:
            if round_ == 0:
                await sign_in(pilot)
            frames = app.camera.stats.frames
            await wait_for(pilot, lambda: app.camera is not None and app.camera.stats.frames > frames + 2, "frames")
            if round_ % 2 == 0:
                await pilot.press("ctrl+q")  # the clerk quits: the camera is stopped before the screens go
                assert app.closing and app.camera.finished.wait(timeout=15)
        assert app.return_code in (None, 0)
        assert app.camera.finished.wait(timeout=15), "the camera worker is still running after the app closed"
