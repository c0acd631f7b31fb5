"""The register's camera feed: a frame source, a decoder, and the numbers the viewfinder shows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hardware.decoders import Decoder, ScanResult
from hardware.frames import Frame, FrameSource
from hardware.scanner import Deduper, ScannerLoop
from protocol import Clock, system_clock
from terminal.register.viewfinder import Preview, preview_frame


@dataclass
class FeedStats:
    """Frames read and frames in which a code was decoded, since the feed started (monotonic seconds)."""

    started: float = field(default_factory=time.monotonic)
    frames: int = 0
    decoded: int = 0

    def fps(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.frames / elapsed if elapsed > 0 else 0.0


class CameraFeed:
    """Runs a :class:`ScannerLoop` in the calling thread (a Textual thread worker) and reports through callbacks.

    ``on_code`` gets each code once per dedupe window; ``on_preview`` gets a shrunk frame at most
    ``preview_fps`` times a second, with decoded symbols outlined.
    """

    def __init__(
        self,
        open_source: Callable[[], FrameSource],
        decoder: Decoder,
        *,
        label: str,
        max_fps: float = 15.0,
        preview_fps: float = 5.0,
        dedupe_seconds: float = 3.0,
        clock: Clock = system_clock,
        max_frames: int | None = None,
    ) -> None:
        self.open_source, self.decoder, self.label = open_source, decoder, label
        self.max_fps, self.preview_interval, self.max_frames = max_fps, 1 / preview_fps, max_frames
        self.deduper = Deduper(dedupe_seconds, clock)
        self.stats = FeedStats()
        self._loop: ScannerLoop | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self.finished = threading.Event()  # set when :meth:`run` has returned (the source is closed)

    def run(
        self,
        on_code: Callable[[ScanResult], None],
        on_preview: Callable[[Preview, bool, float], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        """Blocks until the source ends or :meth:`stop`; opening errors go to ``on_error``."""
        self.finished.clear()
        try:
            self._run(on_code, on_preview, on_error)
        finally:
            self.finished.set()

    def _run(
        self,
        on_code: Callable[[ScanResult], None],
        on_preview: Callable[[Preview, bool, float], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        source = self.open_source()
        last_preview = 0.0

        def on_frame(frame: Frame, results: list[ScanResult]) -> None:
            nonlocal last_preview
            self.stats.frames += 1
            self.stats.decoded += bool(results)
            now = time.monotonic()
            if results or now - last_preview >= self.preview_interval:
                last_preview = now
                outlines = [result.points for result in results if result.points]
                on_preview(preview_frame(frame, outlines), bool(results), self.stats.fps())

        try:
            loop = ScannerLoop(
                source,
                self.decoder,
                on_code,
                on_error=on_error,
                deduper=self.deduper,
                max_fps=self.max_fps,
                max_frames=self.max_frames,
                on_frame=on_frame,
            )
            with self._lock:
                if self._stopped:
                    return
                self._loop = loop
            self.stats = FeedStats()
            loop.run()
        finally:
            source.close()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            loop = self._loop
        if loop is not None:
            loop.stop(timeout=0)

    def forget(self, text: str | None = None) -> None:
        """Let a code be read again at once (the clerk cancelled, or a declined code must be re-shown)."""
        self.deduper.forget(text)
