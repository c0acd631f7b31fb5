"""Decode image and video files: one report per file, with a one-line error instead of an exception.

A file is taken for a video by its content (AVI, MP4/MOV, Matroska/WebM, MPEG) or its suffix, and
for an image otherwise. Whatever the file holds, :func:`scan_path` returns a :class:`ScanReport`;
native libraries' own messages are kept off the terminal while it runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from hardware.decoders import Decoder, default_decoder
from hardware.frames import FrameSource, FrameSourceError, ImageFileSource, VideoSource, native_stderr_muted
from protocol import Symbology

VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".mjpeg", ".mjpg"})
MAX_VIDEO_FRAMES = 10_000


@dataclass
class ScanReport:
    """What one file held: distinct ``(text, format)`` pairs in the order first seen."""

    file: str
    codes: list[tuple[str, Symbology]] = field(default_factory=list)
    ms: float = 0.0
    frames: int = 0
    error: str | None = None
    truncated: bool = False  # a video longer than MAX_VIDEO_FRAMES: only its start was scanned

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
        return data


def looks_like_video(path: Path) -> bool:
    """By the container's signature, or failing that the suffix."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError:
        head = b""
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    if (
        head[4:8] == b"ftyp"
        or head[:4] == b"\x1a\x45\xdf\xa3"
        or head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")
    ):
        return True
    return path.suffix.lower() in VIDEO_SUFFIXES


def open_file(path: str | Path) -> FrameSource:
    """An image or video source for ``path``; :class:`FrameSourceError` when it cannot be read."""
    target = Path(path)
    if looks_like_video(target):
        return VideoSource(target, size=None)
    return ImageFileSource(target)


def scan_path(path: str | Path, decoder: Decoder | None = None, max_frames: int = MAX_VIDEO_FRAMES) -> ScanReport:
    """Every distinct code in an image or a video file (all frames, up to ``max_frames``). Never raises."""
    report = ScanReport(str(path))
    started = time.perf_counter()
    try:
        decoder = decoder or default_decoder()
        with native_stderr_muted(), open_file(path) as source:
            while (frame := source.read()) is not None:
                if report.frames >= max_frames:
                    report.truncated = True
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
    except Exception as error:  # the boundary of a command: one line, never a traceback
        report.error = f"{path}: {type(error).__name__}: {error}"
    report.ms = (time.perf_counter() - started) * 1000
    return report
