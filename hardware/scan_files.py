"""Decode image and video files: one report per file, with a one-line error instead of an exception.

A file is taken for a video by its content (AVI, MP4/MOV, Matroska/WebM, MPEG), for an image by its
content (PNG, JPEG, GIF, BMP, TIFF, WebP...) whatever its suffix, and by its suffix otherwise. Whatever
the file holds (a FIFO, a directory, a decompression bomb, random bytes behind a valid signature),
:func:`scan_path` returns a :class:`ScanReport`; native libraries' own messages are kept off the
terminal while it runs. What one file may cost is ``hardware.frames.FileLimits``: its size and pixel
count are checked before decoding, and a video is read for at most ``max_video_frames`` frames and
``max_seconds`` seconds (past either the report says ``truncated``, with the limit that stopped it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from hardware.decoders import Decoder, default_decoder
from hardware.frames import (
    DEFAULT_LIMITS,
    FileLimits,
    FrameSource,
    FrameSourceError,
    ImageFileSource,
    VideoSource,
    check_file,
    native_stderr_muted,
)
from protocol import Symbology

VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".mjpeg", ".mjpg"})
MAX_VIDEO_FRAMES = DEFAULT_LIMITS.max_video_frames
_IMAGE_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
    b"\x00\x00\x00\x0cjP  ",  # JPEG 2000
)


@dataclass
class ScanReport:
    """What one file held: distinct ``(text, format)`` pairs in the order first seen."""

    file: str
    codes: list[tuple[str, Symbology]] = field(default_factory=list)
    ms: float = 0.0
    frames: int = 0
    error: str | None = None
    truncated: bool = False  # a video longer than the frame or time limit: only its start was scanned
    stopped_by: str | None = None  # when truncated: the limit that stopped it ("10000 frames", "60 s")

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "file": self.file,
            "codes": [{"text": text, "format": kind} for text, kind in self.codes],
            "ms": round(self.ms, 2),
        }
        if self.error is not None:
            data["error"] = self.error
        if self.truncated:
            data["truncated"] = self.stopped_by or True
        return data


def looks_like_video(path: Path) -> bool:
    """By the content's signature (a video's, or an image's), or failing both the suffix.

    Reads 16 bytes, without blocking: call it on a regular file (``hardware.frames.check_file``).
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError:
        head = b""
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    if head[4:8] == b"ftyp" and head[8:12] not in (b"avif", b"avis"):  # AVIF is an image in an MP4-like box
        return True
    if head[:4] == b"\x1a\x45\xdf\xa3" or head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return True
    if head.startswith(_IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return False
    return path.suffix.lower() in VIDEO_SUFFIXES


def open_file(path: str | Path, limits: FileLimits = DEFAULT_LIMITS) -> FrameSource:
    """An image or video source for ``path``; :class:`FrameSourceError` when it cannot be read."""
    target = Path(path)
    check_file(target)  # before reading its signature: a FIFO or a directory is refused unopened
    if looks_like_video(target):
        return VideoSource(target, size=None, limits=limits)
    return ImageFileSource(target, limits=limits)


def scan_path(
    path: str | Path,
    decoder: Decoder | None = None,
    max_frames: int | None = None,
    limits: FileLimits = DEFAULT_LIMITS,
) -> ScanReport:
    """Every distinct code in an image or a video file, within ``limits``. Never raises.

    ``max_frames`` overrides ``limits.max_video_frames``.
    """
    report = ScanReport(str(path))
    frame_limit = limits.max_video_frames if max_frames is None else max_frames
    started = time.perf_counter()
    try:
        decoder = decoder or default_decoder()
        with native_stderr_muted(), open_file(path, limits) as source:
            while (frame := source.read()) is not None:
                if report.frames >= frame_limit:
                    report.truncated, report.stopped_by = True, f"{frame_limit} frames"
                    break
                if report.frames and time.perf_counter() - started > limits.max_seconds:
                    report.truncated, report.stopped_by = True, f"{limits.max_seconds:g} s"
                    break
                report.frames += 1
                for result in decoder.decode(frame):
                    if (result.text, result.format) not in report.codes:
                        report.codes.append((result.text, result.format))
        if report.frames == 0:
            report.error = f"{path}: no frames could be read (empty or corrupt video)"
    except FrameSourceError as error:
        report.error = str(error)
    except cv2.error as error:
        report.error = f"{path}: OpenCV could not read it ({error.err or 'error'})"
    except MemoryError:
        report.error = f"{path}: not enough memory to decode it"
    except Exception as error:  # the boundary of a command: one line, never a traceback
        report.error = f"{path}: {type(error).__name__}: {error}".splitlines()[0]
    report.ms = (time.perf_counter() - started) * 1000
    return report
