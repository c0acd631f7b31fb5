"""Frame sources behind one interface: image files, video files, webcams, and an in-memory fake.

A frame is a BGR ``uint8`` array (OpenCV's layout). ``read()`` returns ``None`` at the end of a stream.
A source that cannot give frames at all (missing, empty, corrupt or truncated file, no camera) raises
:class:`FrameSourceError` with a one-line message naming the file; what libpng, libjpeg, FFmpeg and
OpenCV's logger print on their own while opening it is kept off the terminal (see :func:`native_stderr_muted`).

What one file may cost is bounded by :class:`FileLimits` (every limit a setting; the defaults are
``DEFAULT_LIMITS``), checked before anything is decoded:

- ``max_image_bytes`` (100 MiB): an image file is read into memory whole, so a bigger one is refused
  from its size on disk. Only regular files are opened (never a FIFO, a device or a directory), and
  they are opened without blocking.
- ``max_pixels`` (50 million: a 48-megapixel phone photo passes): an image's width and height are read
  from its header by Pillow, which decodes nothing, and an image claiming more is refused before OpenCV
  allocates anything. This is the guard against decompression bombs (a 400 KB PNG that inflates to
  20000×20000). OpenCV's own ``OPENCV_IO_MAX_IMAGE_PIXELS`` (2^30 pixels, 3 GiB of BGR) is read once
  when OpenCV loads, so it cannot be lowered from here. Pillow also refuses any header over
  ``2 × PIL.Image.MAX_IMAGE_PIXELS`` (179 million) on its own; that is reported the same way. Images
  are the formats both Pillow (for the header) and OpenCV (for the pixels) read, less the ones nobody
  shows a till (JPEG 2000, Sun raster): PNG, JPEG, GIF, BMP, TIFF, WebP, PNM, AVIF. A decoded image
  larger than its header said is refused too. Every PNG chunk must fit in the file (OpenCV allocates
  what a chunk's length claims).
- ``max_jpeg_scans`` (100): libjpeg passes over the whole image once per scan of a progressive JPEG,
  so a 90 KB file of 16 megapixels repeating one scan 1000 times takes 10 s to decode; an encoder
  writes about 10. Counted from the SOS markers before decoding.
- ``max_video_bytes`` (2 GiB): a video is streamed, not loaded, so its cap bounds time, not memory.
  A video's frame size, as its container declares it, must be within ``max_pixels``, and so must
  every frame read (a webcam's too). FFmpeg scales each decoded frame to the declared size; a frame
  whose own header is bigger than the container's is still decoded at its own size first, within
  FFmpeg's limit of about 268 million pixels a frame (``av_image_check_size``), which OpenCV gives no
  way to lower (``possim bench --only hostile`` measures that case).
- ``max_video_frames`` (10,000) and ``max_seconds`` (60 s) are how much of one video
  ``hardware.scan_files.scan_path`` reads: past either it stops and says so (not an error).
"""

from __future__ import annotations

import io
import os
import stat
import sys
import tempfile
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

Frame = npt.NDArray[np.uint8]

MiB = 1024 * 1024


@dataclass(frozen=True)
class FileLimits:
    """How much one image or video file may cost before it is refused (see the module docstring)."""

    max_image_bytes: int = 100 * MiB
    max_video_bytes: int = 2048 * MiB
    max_pixels: int = 50_000_000  # an image's, or one video frame's, width × height
    max_jpeg_scans: int = 100  # a progressive JPEG's passes over its pixels (an encoder writes about 10)
    max_video_frames: int = 10_000  # frames of one video that scan_path reads
    max_seconds: float = 60.0  # wall-clock time scan_path spends on one video's frames

    def __post_init__(self) -> None:
        if (
            min(self.max_image_bytes, self.max_video_bytes, self.max_pixels, self.max_video_frames, self.max_jpeg_scans)
            < 1
        ):
            raise ValueError("every file limit must be at least 1")
        if not self.max_seconds > 0:
            raise ValueError("max_seconds must be positive")


DEFAULT_LIMITS = FileLimits()
MAX_IMAGE_BYTES = DEFAULT_LIMITS.max_image_bytes
# Pillow's names for the formats OpenCV decodes too ("JPEG" covers MPO, a phone's multi-picture JPEG).
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "AVIF")
_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_PNG_START = b"\x89PNG\r\n\x1a\n"
_NOT_AN_IMAGE = "not a readable image (corrupt, or not an image format possim reads)"


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


def check_file(path: Path, what: str = "a file", max_bytes: int | None = None) -> int:
    """The size of ``path`` if it is a readable, non-empty regular file within ``max_bytes``.

    Otherwise a one-line :class:`FrameSourceError` naming the file and the reason: no such file,
    permission denied (also for a directory on the way that cannot be searched), a directory, a FIFO,
    socket or device ("not a regular file": opening a FIFO would wait for a writer), empty, too large.
    Never opens the file, so it never blocks. ``what`` names the kind of file in the size message.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise FrameSourceError(f"{path}: no such file") from None
    except PermissionError:
        raise FrameSourceError(f"{path}: cannot be read (permission denied)") from None
    except OSError as error:  # a name too long, a loop of links, an I/O error...
        raise FrameSourceError(f"{path}: cannot be read ({error.strerror or error})") from None
    if stat.S_ISDIR(info.st_mode):
        raise FrameSourceError(f"{path}: is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise FrameSourceError(f"{path}: not a regular file (a {_file_kind(info.st_mode)})")
    if not os.access(path, os.R_OK):
        raise FrameSourceError(f"{path}: cannot be read (permission denied)")
    if info.st_size == 0:
        raise FrameSourceError(f"{path}: empty file")
    if max_bytes is not None and info.st_size > max_bytes:
        raise FrameSourceError(f"{path}: too large for {what} ({info.st_size} bytes; the limit is {max_bytes})")
    return info.st_size


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def _read_file(path: Path, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """The bytes of an image file, or a one-line :class:`FrameSourceError` saying why not.

    Opened without blocking and checked again once open, so a file swapped for a FIFO or grown past
    the limit after :func:`check_file` is still refused; never more than ``max_bytes + 1`` bytes are read.
    """
    check_file(path, "an image", max_bytes)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise FrameSourceError(f"{path}: cannot be read ({error.strerror or error})") from None
    with os.fdopen(descriptor, "rb") as handle:
        try:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise FrameSourceError(f"{path}: not a regular file")
            data = handle.read(max_bytes + 1)
        except OSError as error:
            raise FrameSourceError(f"{path}: cannot be read ({error.strerror or error})") from None
    if not data:
        raise FrameSourceError(f"{path}: empty file")
    if len(data) > max_bytes:
        raise FrameSourceError(f"{path}: too large for an image (over {max_bytes} bytes)")
    return data


def _damage(data: bytes) -> str | None:
    """Why an image's bytes cannot be whole, or None: a JPEG without its end marker is cut short; a PNG
    must be a chain of well-formed chunks, each within the file, up to IEND.

    Every PNG chunk's length is checked against the bytes left because OpenCV's PNG reader allocates
    what a chunk's length field claims: a 1 KB file whose IDAT claims 2 GB would otherwise cost 2 GB.
    """
    truncated = "truncated image (the file ends before the image does)"
    if data.startswith(_JPEG_START):
        return truncated if data.rfind(_JPEG_END) < len(_JPEG_START) else None
    if not data.startswith(_PNG_START):
        return None
    position = len(_PNG_START)
    while position + 12 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        if not kind.isalpha() or not kind.isascii():
            return _NOT_AN_IMAGE
        position += 12 + length  # the length, the type, the data, the CRC
        if position > len(data):
            return truncated
        if kind == b"IEND":
            return None
    return truncated


def image_header_size(path: Path, data: bytes, max_pixels: int | None = None) -> tuple[int, int]:
    """An image's (width, height) as its header states them, read by Pillow without decoding a pixel.

    :class:`FrameSourceError` when Pillow does not recognise one of :data:`IMAGE_FORMATS`, the header
    is malformed, or it claims more pixels than Pillow's own bomb limit (``max_pixels``, the caller's
    limit, is named in that message).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning and the plugins' own warnings
        try:
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
                width, height = image.size
        except Image.DecompressionBombError:
            claim = f"its header claims over {2 * (Image.MAX_IMAGE_PIXELS or 0)}"
            limit = "" if max_pixels is None else f"; the limit is {max_pixels}"
            raise FrameSourceError(f"{path}: too many pixels ({claim}{limit})") from None
        except (ImportError, MemoryError):  # a broken installation, or no memory: not the file's fault
            raise
        except Exception:  # Pillow's plugins raise many kinds on a bad header: all mean the same here
            raise FrameSourceError(f"{path}: {_NOT_AN_IMAGE}") from None
    if width < 1 or height < 1:
        raise FrameSourceError(f"{path}: {_NOT_AN_IMAGE}")
    return width, height


def _check_pixels(name: object, width: int, height: int, limits: FileLimits, what: str = "") -> None:
    if width * height > limits.max_pixels:
        raise FrameSourceError(
            f"{name}: too many pixels{what} ({width}x{height} = {width * height}; the limit is {limits.max_pixels})"
        )


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
    """One still image, given once: PNG, JPEG, GIF, BMP, TIFF, WebP... (:data:`IMAGE_FORMATS`).

    The file's size and its header's pixel count are checked against ``limits`` before OpenCV
    decodes it (see the module docstring).
    """

    def __init__(self, path: str | Path, limits: FileLimits = DEFAULT_LIMITS) -> None:
        self.path = Path(path)
        data = _read_file(self.path, limits.max_image_bytes)
        if (damage := _damage(data)) is not None:
            raise FrameSourceError(f"{self.path}: {damage}")
        width, height = image_header_size(self.path, data, limits.max_pixels)
        _check_pixels(self.path, width, height, limits)
        scans = data.count(b"\xff\xda") if data.startswith(_JPEG_START) else 0  # SOS markers, at most
        if scans > limits.max_jpeg_scans:
            raise FrameSourceError(f"{self.path}: too many JPEG scans ({scans}; the limit is {limits.max_jpeg_scans})")
        with native_stderr_muted():
            try:
                frame = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
            except cv2.error:
                frame = None
        if frame is None or frame.size == 0:
            raise FrameSourceError(f"{self.path}: {_NOT_AN_IMAGE}")
        _check_pixels(self.path, frame.shape[1], frame.shape[0], limits, " once decoded")
        self._frame: Frame | None = np.asarray(frame, dtype=np.uint8)

    def read(self) -> Frame | None:
        frame, self._frame = self._frame, None
        return frame

    def close(self) -> None:
        self._frame = None


class VideoSource(FrameSource):
    """A video file, or a webcam by OpenCV index (``VideoSource(0)``): the same class for both.

    ``size`` asks a webcam for that resolution (1280×720 by default: Code 128 needs it); a file plays
    at its own size. A file must be a regular file within ``limits.max_video_bytes``; the declared
    frame size and every frame read must be within ``limits.max_pixels`` (a frame over it raises
    :class:`FrameSourceError` from ``read``).
    """

    def __init__(
        self, source: str | Path | int, size: tuple[int, int] | None = (1280, 720), limits: FileLimits = DEFAULT_LIMITS
    ) -> None:
        self.source = source
        self.limits = limits
        if isinstance(source, int):
            target: str | int = source
        else:
            check_file(Path(source), "a video", limits.max_video_bytes)
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
            width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
            height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        try:
            _check_pixels(self._name, width, height, limits, " in each frame")
        except FrameSourceError:
            capture.release()
            raise
        self._capture: cv2.VideoCapture | None = capture

    @property
    def _name(self) -> str:
        return f"camera {self.source}" if isinstance(self.source, int) else str(self.source)

    def read(self) -> Frame | None:
        if self._capture is None:
            return None
        ok, frame = self._capture.read()
        if not ok or frame is None or frame.size == 0:
            return None
        _check_pixels(self._name, frame.shape[1], frame.shape[0], self.limits, " in a frame")
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
