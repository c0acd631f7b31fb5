"""Decode image and video files: one report per file, with a clear error instead of an exception."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from hardware.decoders import Decoder, default_decoder
from hardware.frames import FrameSource, FrameSourceError, ImageFileSource, VideoSource

VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg"})
MAX_VIDEO_FRAMES = 10_000


@dataclass
class ScanReport:
    file: str
    codes: list[tuple[str, str]] = field(default_factory=list)
    ms: float = 0.0
    frames: int = 0
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "file": self.file,
            "codes": [{"text": text, "format": kind} for text, kind in self.codes],
            "ms": round(self.ms, 2),
        }
        if self.error is not None:
            data["error"] = self.error
        return data


def _open(path: Path) -> FrameSource:
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(path, size=None)
    return ImageFileSource(path)


def scan_path(path: str | Path, decoder: Decoder | None = None) -> ScanReport:
    """Every distinct code in an image or a video file, in the order first seen."""
    decoder = decoder or default_decoder()
    report = ScanReport(str(path))
    started = time.perf_counter()
    try:
        with _open(Path(path)) as source:
            for _ in range(MAX_VIDEO_FRAMES):
                frame = source.read()
                if frame is None:
                    break
                report.frames += 1
                for result in decoder.decode(frame):
                    if (result.text, result.format) not in report.codes:
                        report.codes.append((result.text, result.format))
        if report.frames == 0:
            report.error = f"{path}: no frames could be read"
    except FrameSourceError as error:
        report.error = str(error)
    except cv2.error as error:
        report.error = f"{path}: OpenCV could not read it ({error.err or 'error'})"
    report.ms = (time.perf_counter() - started) * 1000
    return report
