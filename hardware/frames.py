"""Frame sources behind one interface: image files, video files, webcams, and an in-memory fake.

A frame is a BGR ``uint8`` array (OpenCV's layout). ``read()`` returns ``None`` at the end of a stream.
A source that cannot give frames at all (missing, empty, corrupt or truncated file, no camera) raises
:class:`FrameSourceError` with a one-line message naming the file; what libpng, libjpeg, FFmpeg and
OpenCV's logger print on their own while opening it is kept off the terminal (see :func:`native_stderr_muted`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import cv2
import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]

MAX_IMAGE_BYTES = 200 * 1024 * 1024
_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_PNG_START = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk type and its fixed CRC


class FrameSourceError(Exception):
    """A source that cannot give frames: a missing, corrupt or unreadable file, or an absent camera."""


_stderr_lock = threading.RLock()
_stderr_depth = 0


@contextmanager
def native_stderr_muted() -> Iterator[None]:
    """Divert file descriptor 2 while native code runs, so its chatter never reaches the terminal.

    libpng ("libpng error: Read Error"), libjpeg ("Premature end of JPEG file"), FFmpeg ("moov atom
    not found") and OpenCV's logger write straight to fd 2, under Python. The diversion is
    process-wide, so it is held under a lock and kept to file opening and file scanning; a live
    camera's frame reads are never muted. Nested use is a no-op.
    """
    global _stderr_depth
    with _stderr_lock:
        if _stderr_depth:
            yield
            return
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no usable stderr at all: nothing to protect
            yield
            return
        try:
            with tempfile.TemporaryFile() as sink:
                os.dup2(sink.fileno(), 2)
                _stderr_depth += 1
                try:
                    yield
                finally:
                    _stderr_depth -= 1
                    os.dup2(saved, 2)
        finally:
            os.close(saved)


def _read_file(path: Path, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """The bytes of an image file, or a one-line :class:`FrameSourceError` saying why not."""
    _check_file(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise FrameSourceError(f"{path}: too large for an image ({size} bytes)")
    try:
        return path.read_bytes()
    except OSError as error:
        raise FrameSourceError(f"{path}: cannot be read ({error.strerror or error})") from None


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise FrameSourceError(f"{path}: is a directory, not a file")
    if not path.is_file():
        raise FrameSourceError(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise FrameSourceError(f"{path}: cannot be read (permission denied)")
    if path.stat().st_size == 0:
        raise FrameSourceError(f"{path}: empty file")


def _looks_truncated(data: bytes) -> bool:
    """A JPEG without its end marker or a PNG without its IEND chunk was cut short."""
    if data.startswith(_JPEG_START):
        return data.rfind(_JPEG_END) < len(_JPEG_START)
    if data.startswith(_PNG_START):
        return _PNG_END not in data[-4096:]
    return False


class FrameSource(ABC):
    """Gives BGR frames until the stream ends; usable as a context manager that closes it."""

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or ``None`` when the stream has ended."""

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release the device or file."""

    @classmethod
    def is_usable(cls) -> bool:
        """Whether this kind of source can work on this machine (libraries and backends present)."""
        return True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class ImageFileSource(FrameSource):
    """One still image, given once. Any file OpenCV decodes (PNG, JPEG, BMP, WebP, TIFF, GIF...)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        data = _read_file(self.path)
        if _looks_truncated(data):
            raise FrameSourceError(f"{self.path}: truncated image (the file ends before the image does)")
        with native_stderr_muted():
            try:
                frame = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
            except cv2.error:
                frame = None
        if frame is None or frame.size == 0:
            raise FrameSourceError(f"{self.path}: not a readable image (corrupt, or not an image format OpenCV reads)")
        self._frame: Frame | None = np.asarray(frame, dtype=np.uint8)

    def read(self) -> Frame | None:
        frame, self._frame = self._frame, None
        return frame

    def close(self) -> None:
        self._frame = None


class VideoSource(FrameSource):
    """A video file, or a webcam by OpenCV index (``VideoSource(0)``): the same class for both.

    ``size`` asks a webcam for that resolution (1280×720 by default: Code 128 needs it); a file plays
    at its own size.
    """

    def __init__(self, source: str | Path | int, size: tuple[int, int] | None = (1280, 720)) -> None:
        self.source = source
        if isinstance(source, int):
            target: str | int = source
        else:
            _check_file(Path(source))
            target = str(source)
        problem = (
            f"camera {source}: cannot be opened (no such device, or it is busy)"
            if isinstance(source, int)
            else f"{source}: not a readable video (corrupt, or a codec OpenCV lacks)"
        )
        with native_stderr_muted():
            try:
                capture = cv2.VideoCapture(target)
            except cv2.error:
                raise FrameSourceError(problem) from None
            if not capture.isOpened():
                capture.release()
                raise FrameSourceError(problem)
            if isinstance(source, int) and size is not None:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        self._capture: cv2.VideoCapture | None = capture

    def read(self) -> Frame | None:
        if self._capture is None:
            return None
        ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        return np.asarray(frame, dtype=np.uint8)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    @classmethod
    def is_usable(cls) -> bool:
        """OpenCV was built with at least one video backend (FFmpeg, GStreamer, V4L2...)."""
        return bool(cv2.videoio_registry.getStreamBackends() or cv2.videoio_registry.getCameraBackends())

    @classmethod
    def camera_attached(cls, index: int = 0) -> bool:
        """Whether a webcam answers at ``index``; quiet when there is none."""
        with native_stderr_muted():
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
        if self.closed or self._index >= len(self._frames):
            return None
        frame = self._frames[self._index]
        self._index += 1
        return frame

    def close(self) -> None:
        self.closed = True


class LatestFrameReader(FrameSource):
    """Reads a source in a thread and keeps only the newest frame: a live camera must not queue up.

    The imutils ``WebcamVideoStream`` pattern, with a lock and a stop event. A frame source itself:
    ``read()`` waits for a frame newer than the last one it gave and returns ``None`` once the stream
    has ended (end of file, ``max_frames``, the source failed) or the reader was closed. Frames that
    arrive while nobody reads are dropped, never queued. ``close()`` stops the thread and closes the
    wrapped source.
    """

    def __init__(self, source: FrameSource, max_frames: int | None = None, join_timeout: float = 5.0) -> None:
        self._source = source
        self._max_frames = max_frames
        self._join_timeout = join_timeout
        self._changed = threading.Condition(threading.Lock())
        self._stop = threading.Event()
        self._frame: Frame | None = None
        self._count = 0
        self._dropped = 0
        self.ended = threading.Event()
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)

    def __enter__(self) -> Self:
        return self.start()

    def start(self) -> Self:
        if not self._thread.is_alive() and not self.ended.is_set():
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
                with self._changed:
                    if self._frame is not None:
                        self._dropped += 1
                    self._frame = frame
                    self._count += 1
                    self._changed.notify_all()
        except Exception as error:  # a camera that fails mid-stream ends the stream, never the process
            self.error = error
        finally:
            with self._changed:
                self.ended.set()
                self._changed.notify_all()

    def read(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet given; ``None`` at the end of the stream or after ``timeout`` seconds."""
        self.start()
        with self._changed:
            self._changed.wait_for(lambda: self._frame is not None or self.ended.is_set(), timeout)
            frame, self._frame = self._frame, None
        return frame

    def latest(self, timeout: float = 1.0) -> Frame | None:
        """Like ``read`` with a bounded wait: for a preview that must never block for long."""
        return self.read(timeout)

    @property
    def frames_read(self) -> int:
        with self._changed:
            return self._count

    @property
    def frames_dropped(self) -> int:
        with self._changed:
            return self._dropped

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._join_timeout)

    def close(self) -> None:
        self.stop()
        self._source.close()
        with self._changed:
            self.ended.set()
            self._frame = None
            self._changed.notify_all()
