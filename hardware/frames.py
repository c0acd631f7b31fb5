"""Frame sources behind one interface: image files, video files, webcams, and an in-memory fake.

A frame is a BGR ``uint8`` array (OpenCV's layout). ``read()`` returns ``None`` at the end of a stream.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]


class FrameSourceError(Exception):
    """A source that cannot give frames: a missing, corrupt or unreadable file, or an absent camera."""


class FrameSource(ABC):
    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or ``None`` when the stream has ended."""

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release the device or file."""

    @classmethod
    def is_usable(cls) -> bool:
        return True

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class ImageFileSource(FrameSource):
    """One still image, given once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FrameSourceError(f"{self.path}: no such file")
        frame = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
        if frame is None:
            raise FrameSourceError(f"{self.path}: not a readable image")
        self._frame: Frame | None = np.asarray(frame, dtype=np.uint8)

    def read(self) -> Frame | None:
        frame, self._frame = self._frame, None
        return frame


class VideoSource(FrameSource):
    """A video file, or a webcam by OpenCV index (``VideoSource(0)``): the same class for both."""

    def __init__(self, source: str | Path | int, size: tuple[int, int] | None = (1280, 720)) -> None:
        self.source = source
        if isinstance(source, str | Path) and not Path(source).is_file():
            raise FrameSourceError(f"{source}: no such file")
        target = source if isinstance(source, int) else str(source)
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            self._capture.release()
            raise FrameSourceError(f"{source}: cannot open as a video or camera")
        if isinstance(source, int) and size is not None:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])

    def read(self) -> Frame | None:
        ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        return np.asarray(frame, dtype=np.uint8)

    def close(self) -> None:
        self._capture.release()

    @classmethod
    def camera_attached(cls, index: int = 0) -> bool:
        capture = cv2.VideoCapture(index)
        try:
            return bool(capture.isOpened())
        finally:
            capture.release()


class FakeFrameSource(FrameSource):
    """Frames from memory, for tests: plays the given frames once, then ends."""

    def __init__(self, frames: Iterable[Frame]) -> None:
        self._frames = list(frames)
        self._index = 0
        self.closed = False

    def read(self) -> Frame | None:
        if self._index >= len(self._frames):
            return None
        frame = self._frames[self._index]
        self._index += 1
        return frame

    def close(self) -> None:
        self.closed = True


class LatestFrameReader:
    """Reads a source in a thread and keeps only the newest frame (a live camera must not queue up).

    Stops by itself at the end of the stream or on ``stop()``; ``latest()`` never blocks for long.
    """

    def __init__(self, source: FrameSource, max_frames: int | None = None) -> None:
        self._source = source
        self._max_frames = max_frames
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._new_frame = threading.Event()
        self._frame: Frame | None = None
        self._count = 0
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)

    def start(self) -> LatestFrameReader:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._max_frames is not None and self._count >= self._max_frames:
                    break
                frame = self._source.read()
                if frame is None:
                    break
                with self._lock:
                    self._frame = frame
                    self._count += 1
                self._new_frame.set()
        finally:
            self.ended.set()
            self._new_frame.set()

    def latest(self, timeout: float = 1.0) -> Frame | None:
        """The newest frame not yet taken, waiting up to ``timeout``; ``None`` if none came."""
        self._new_frame.wait(timeout)
        with self._lock:
            frame, self._frame = self._frame, None
            self._new_frame.clear()
            if self.ended.is_set():
                self._new_frame.set()
        return frame

    @property
    def frames_read(self) -> int:
        with self._lock:
            return self._count

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
