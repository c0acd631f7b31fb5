"""The scanner loop: read frames in a thread, decode, and report each code once per dedupe window.

A phone held under the camera shows the same code in frame after frame; the register must hear it
once. A text is reported when first seen, then held back for as long as it keeps being seen and
until ``dedupe_seconds`` have passed since it was last seen (a presentation scanner's "same-code
delay"). The window runs on an injectable clock, so tests move a :class:`protocol.ManualClock`
instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Self

from hardware.decoders import Decoder, ScanResult
from hardware.frames import Frame, FrameSource
from protocol import Clock, system_clock


class Deduper:
    """Says whether a text is new: not when it was last seen under ``window_seconds`` ago. Thread safe."""

    def __init__(self, window_seconds: float, clock: Clock = system_clock) -> None:
        if window_seconds < 0:
            raise ValueError("the dedupe window cannot be negative")
        self._window = timedelta(seconds=window_seconds)
        self._clock = clock
        self._last_seen: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def is_new(self, text: str) -> bool:
        now = self._clock()
        with self._lock:
            self._last_seen = {seen: at for seen, at in self._last_seen.items() if now - at < self._window}
            new = text not in self._last_seen
            self._last_seen[text] = now
            return new

    def forget(self, text: str | None = None) -> None:
        """Let ``text`` (or every text) be reported again at once, e.g. after the cashier cancels."""
        with self._lock:
            if text is None:
                self._last_seen.clear()
            else:
                self._last_seen.pop(text, None)


class ScannerLoop:
    """Reads ``source`` in a background thread and calls ``on_code`` once per code per dedupe window.

    Stops at the end of the stream, after ``max_frames``, or on ``stop()``. ``max_fps`` caps the frame
    rate for sources that never block (a virtual camera, a file); the wait is on the stop event, so
    ``stop()`` is immediate. A decoder, source or ``on_code`` that raises is reported to ``on_error``:
    a decoder or callback error skips that frame, a source error ends the loop. Pass one ``deduper``
    to successive loops of one register (camera restarted, new video) so they share its memory.
    ``on_code`` runs in the loop's thread. ``on_frame`` (a viewfinder) gets every frame with what was
    read in it, before the dedupe. ``run()`` runs the loop in the calling thread instead (a UI's thread
    worker); ``stop()`` from another thread ends it.
    """

    def __init__(
        self,
        source: FrameSource,
        decoder: Decoder,
        on_code: Callable[[ScanResult], None],
        clock: Clock = system_clock,
        dedupe_seconds: float = 3.0,
        max_frames: int | None = None,
        on_error: Callable[[Exception], None] | None = None,
        deduper: Deduper | None = None,
        max_fps: float | None = None,
        on_frame: Callable[[Frame, list[ScanResult]], None] | None = None,
    ) -> None:
        if max_fps is not None and max_fps <= 0:
            raise ValueError("max_fps must be positive")
        self._source = source
        self._decoder = decoder
        self._on_code = on_code
        self._on_error = on_error
        self._on_frame = on_frame
        self.deduper = deduper or Deduper(dedupe_seconds, clock)
        self._max_frames = max_frames
        self._interval = 1 / max_fps if max_fps else 0.0
        self._stop = threading.Event()
        self.frames_read = 0
        self.frames_decoded = 0
        self.codes_reported = 0
        self.errors: list[Exception] = []
        self._thread = threading.Thread(target=self._run, name="scanner-loop", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def _report(self, error: Exception) -> None:
        if len(self.errors) < 100:
            self.errors.append(error)
        if self._on_error is not None:
            self._on_error(error)

    def run(self) -> None:
        """Run the loop in the calling thread until the stream ends, ``max_frames``, or ``stop()``."""
        self._run()

    def _run(self) -> None:
        next_frame_at = time.monotonic()
        while not self._stop.is_set():
            if self._max_frames is not None and self.frames_read >= self._max_frames:
                return
            if self._interval:
                if self._stop.wait(max(0.0, next_frame_at - time.monotonic())):
                    return
                next_frame_at = max(next_frame_at + self._interval, time.monotonic())
            try:
                frame = self._source.read()
            except Exception as error:  # a camera unplugged mid-stream ends the loop, not the register
                self._report(error)
                return
            if frame is None:
                return
            self.frames_read += 1
            try:
                results = self._decoder.decode(frame)
                if self._on_frame is not None:
                    self._on_frame(frame, results)
                self._handle(results)
            except Exception as error:  # a decoder or callback bug must not kill the register's camera
                self._report(error)

    def _handle(self, results: list[ScanResult]) -> None:
        if results:
            self.frames_decoded += 1
        for result in results:
            if self.deduper.is_new(result.text):
                self.codes_reported += 1
                self._on_code(result)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to stop and wait for it (at most ``timeout`` seconds)."""
        self._stop.set()
        self.join(timeout)

    def join(self, timeout: float = 10.0) -> None:
        """Wait for the loop to end by itself (end of stream or ``max_frames``), at most ``timeout`` s."""
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def scan_once(source: FrameSource, decoder: Decoder, max_frames: int = 60) -> ScanResult | None:
    """Read up to ``max_frames`` frames and return the first payment code seen.

    When no frame holds a payment code, the first other code seen is returned instead (a register
    can then say "that is not a payment code"); ``None`` when nothing at all was read.
    """
    fallback: ScanResult | None = None
    for _ in range(max_frames):
        frame = source.read()
        if frame is None:
            break
        for result in decoder.decode(frame):
            if result.is_payment_code:
                return result
            fallback = fallback or result
    return fallback
