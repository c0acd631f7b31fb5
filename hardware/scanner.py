"""The scanner loop: read frames in a thread, decode, and report each code once per dedupe window."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from hardware.decoders import Decoder, ScanResult
from hardware.frames import FrameSource
from protocol import Clock, system_clock


class Deduper:
    """Says whether a text is new: the same text again within ``window_seconds`` is not."""

    def __init__(self, window_seconds: float, clock: Clock = system_clock) -> None:
        self._window = timedelta(seconds=window_seconds)
        self._clock = clock
        self._seen: dict[str, datetime] = {}

    def is_new(self, text: str) -> bool:
        now = self._clock()
        self._seen = {seen: at for seen, at in self._seen.items() if now - at < self._window}
        if text in self._seen:
            return False
        self._seen[text] = now
        return True


class ScannerLoop:
    """Reads ``source`` in a background thread and calls ``on_code`` once per distinct code.

    Stops at the end of the stream, after ``max_frames``, or on ``stop()``. ``on_error`` hears about
    a decoder that raised (the loop carries on with the next frame). Pass one ``deduper`` to successive
    loops of one register (a camera restarted, a new video) so they share its memory.
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
    ) -> None:
        self._source = source
        self._decoder = decoder
        self._on_code = on_code
        self._on_error = on_error
        self.deduper = deduper or Deduper(dedupe_seconds, clock)
        self._max_frames = max_frames
        self._stop = threading.Event()
        self.frames_read = 0
        self.frames_decoded = 0
        self._thread = threading.Thread(target=self._run, name="scanner-loop", daemon=True)

    def start(self) -> ScannerLoop:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._max_frames is not None and self.frames_read >= self._max_frames:
                return
            frame = self._source.read()
            if frame is None:
                return
            self.frames_read += 1
            try:
                results = self._decoder.decode(frame)
            except Exception as error:  # a decoder bug must not kill the register's camera
                if self._on_error:
                    self._on_error(error)
                continue
            if results:
                self.frames_decoded += 1
            for result in results:
                if self.deduper.is_new(result.text):
                    self._on_code(result)

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> ScannerLoop:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def scan_once(source: FrameSource, decoder: Decoder, max_frames: int = 60) -> ScanResult | None:
    """Read frames until a payment code appears (or any code, if none in ``max_frames``)."""
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
