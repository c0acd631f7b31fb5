"""The scanner loop reports each code once per dedupe window, on an injected clock; it survives faults.

Time is a ManualClock moved by the frame source itself (half a second a frame), so no test sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import partial

import numpy as np
import pytest
from PIL import Image

from hardware.decoders import ScanResult, ZxingDecoder
from hardware.frames import FakeFrameSource, Frame, FrameSource
from hardware.scanner import Deduper, ScannerLoop, scan_once
from hardware.virtual_camera import CameraConditions, VirtualCamera
from protocol import ManualClock, PaymentCode, mint_code
from wallet_app.render import render_phone_screen, render_qr

CODE_A = mint_code(b"s" * 32, 31_337, 1_795_000_000, 0)
CODE_B = mint_code(b"s" * 32, 31_337, 1_795_000_000, 1)
ZXING = ZxingDecoder()


def _same(screen: Image.Image | None) -> Image.Image | None:
    """The same picture on every frame: what the virtual camera films."""
    return screen


def filmed(codes: Sequence[PaymentCode | None], seed: int = 9) -> list[Frame]:
    """One easy camera frame per entry: the code's screen, or the phone lowered (None)."""
    screens = {code.qr: render_phone_screen(code, "Hanako's wallet", 40) for code in codes if code}
    frames = []
    for index, code in enumerate(codes):
        screen = screens[code.qr] if code else None
        frame = VirtualCamera(partial(_same, screen), seed=seed + index, conditions=CameraConditions.easy()).read()
        assert frame is not None
        frames.append(frame)
    return frames


def qr_frame(text: str) -> Frame:
    """A frame holding a plain QR (not a payment code)."""
    image = np.asarray(render_qr(text, box_size=8).convert("RGB"))
    frame = np.full((720, 1280, 3), 255, dtype=np.uint8)
    frame[100 : 100 + image.shape[0], 100 : 100 + image.shape[1]] = image
    return frame


class TickingSource(FakeFrameSource):
    """Plays frames and moves the clock ``step`` seconds before each one: a camera at 2 fps."""

    def __init__(self, frames: Sequence[Frame], clock: ManualClock, step: float = 0.5) -> None:
        super().__init__(frames)
        self._clock = clock
        self._step = step

    def read(self) -> Frame | None:
        self._clock.advance(self._step)
        return super().read()


def run_loop(source: FrameSource, clock: ManualClock, deduper: Deduper | None = None) -> list[str]:
    """Run a 3-second-window loop over ``source`` to its end; the payment QRs it reported, in order."""
    reported: list[ScanResult] = []
    loop = ScannerLoop(source, ZXING, reported.append, clock=clock, dedupe_seconds=3, deduper=deduper)
    loop.start()
    loop.join()
    assert not loop.running
    return [r.text for r in reported if r.format == "QRCode"]


def test_a_code_held_in_view_is_reported_once() -> None:
    clock = ManualClock()
    frames = filmed([CODE_A] * 12)  # six seconds in view, twice the window
    assert run_loop(TickingSource(frames, clock), clock) == [CODE_A.qr]


def test_the_same_code_again_after_the_window_out_of_view_is_reported_again() -> None:
    clock = ManualClock()
    a, lowered = [CODE_A] * 3, [None] * 8  # eight frames lowered: four seconds out of view
    frames = filmed([*a, *lowered, *a])
    assert run_loop(TickingSource(frames, clock), clock) == [CODE_A.qr, CODE_A.qr]


def test_a_short_glance_away_does_not_repeat_the_code() -> None:
    clock = ManualClock()
    frames = filmed([CODE_A, CODE_A, None, None, CODE_A, CODE_A])  # one and a half seconds away
    assert run_loop(TickingSource(frames, clock), clock) == [CODE_A.qr]


def test_a_different_code_is_reported_at_once() -> None:
    clock = ManualClock()
    frames = filmed([CODE_A, CODE_A, CODE_B, CODE_B, CODE_A])
    assert run_loop(TickingSource(frames, clock), clock) == [CODE_A.qr, CODE_B.qr]


def test_loops_sharing_a_deduper_share_its_memory() -> None:
    """A restarted camera does not report again what the register just heard."""
    clock = ManualClock()
    deduper = Deduper(3, clock)
    frames = filmed([CODE_A] * 3)
    assert run_loop(FakeFrameSource(frames), clock, deduper=deduper) == [CODE_A.qr]
    clock.advance(2.9)
    assert run_loop(FakeFrameSource(frames), clock, deduper=deduper) == []
    clock.advance(3)
    assert run_loop(FakeFrameSource(frames), clock, deduper=deduper) == [CODE_A.qr]


def test_deduper_window_and_forget() -> None:
    clock = ManualClock()
    deduper = Deduper(3, clock)
    assert deduper.is_new("a") and not deduper.is_new("a")
    clock.advance(2.5)
    assert not deduper.is_new("a")  # seen again: the window restarts
    clock.advance(2.5)
    assert not deduper.is_new("a")
    clock.advance(3)
    assert deduper.is_new("a")
    deduper.forget("a")
    assert deduper.is_new("a") and deduper.is_new("b")
    deduper.forget()
    assert deduper.is_new("a") and deduper.is_new("b")
    with pytest.raises(ValueError, match="negative"):
        Deduper(-1)


def test_the_loop_stops_at_max_frames_on_an_endless_camera() -> None:
    clock = ManualClock()
    camera = VirtualCamera(lambda: render_phone_screen(CODE_A, "w", 9), seed=1, conditions=CameraConditions.easy())
    reported: list[ScanResult] = []
    loop = ScannerLoop(camera, ZXING, reported.append, clock=clock, max_frames=5)
    loop.start()
    loop.join()
    assert loop.frames_read == 5 and not loop.running
    assert [r.text for r in reported] == [CODE_A.qr]


def test_stop_ends_a_paced_loop_at_once() -> None:
    """At 0.01 fps the loop waits 100 s between frames, on its stop event: stop() ends the wait."""
    heard = threading.Event()
    screen = render_phone_screen(CODE_A, "w", 9)
    camera = VirtualCamera(lambda: screen, seed=2, conditions=CameraConditions.easy())
    with ScannerLoop(camera, ZXING, lambda _result: heard.set(), max_fps=0.01) as loop:
        assert heard.wait(10)  # the first frame is read at once
        assert loop.running
    assert not loop.running
    assert loop.frames_read == 1


def test_a_failing_decoder_or_callback_skips_the_frame_and_a_failing_source_ends_the_loop() -> None:
    errors: list[Exception] = []

    class Broken:
        name = "broken"

        def is_usable(self) -> bool:
            return True

        def decode(self, frame: Frame) -> list[ScanResult]:
            raise RuntimeError("decoder bug")

    frames = filmed([CODE_A, CODE_B])
    loop = ScannerLoop(FakeFrameSource(frames), Broken(), lambda r: None, on_error=errors.append)
    with loop:
        loop.join()
    assert [str(e) for e in errors] == ["decoder bug", "decoder bug"] and loop.frames_read == 2

    def refuse(_result: ScanResult) -> None:
        raise ValueError("register busy")

    loop = ScannerLoop(FakeFrameSource(frames), ZXING, refuse)
    loop.start()
    loop.join()
    assert loop.frames_read == 2 and [str(e) for e in loop.errors] == ["register busy", "register busy"]

    class Unplugged(FakeFrameSource):
        reads = 0

        def read(self) -> Frame | None:
            self.reads += 1
            if self.reads == 2:
                raise OSError("camera unplugged")
            return super().read()

    loop = ScannerLoop(Unplugged(frames), ZXING, lambda r: None)
    loop.start()
    loop.join()
    assert loop.frames_read == 1 and [type(e) for e in loop.errors] == [OSError]


def test_scan_once_prefers_a_payment_code() -> None:
    hello, payment = qr_frame("hello"), filmed([CODE_A])[0]
    found = scan_once(FakeFrameSource([hello, payment]), ZXING)
    assert found is not None and found.text == CODE_A.qr and found.is_payment_code
    other = scan_once(FakeFrameSource([hello]), ZXING)
    assert other is not None and other.text == "hello" and not other.is_payment_code
    assert scan_once(FakeFrameSource(filmed([None])), ZXING) is None


def test_scan_once_reads_no_more_than_max_frames() -> None:
    frames = filmed([None, None, CODE_A])
    source = FakeFrameSource(frames)
    assert scan_once(source, ZXING, max_frames=2) is None
    found = scan_once(source, ZXING, max_frames=2)  # the source carries on where it stopped
    assert found is not None and found.text == CODE_A.qr
