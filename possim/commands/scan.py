"""possim scan FILE... [--json] [--decoder auto|zxing|pyzbar|opencv]: decode images and videos.

One line per file on stdout: "FILE: FORMAT TEXT (MS ms)", "FILE: no code (MS ms)" or
"FILE: error: WHY". With --json each line is {"file", "codes": [{"text", "format"}], "ms"}, plus
"error" for a file that could not be read. A bad file is also named on stderr, and the exit status
is 1 when any file failed (2 for a usage error or an unusable decoder); the other files are still read.
--camera INDEX reads a webcam instead, until a code shows or --frames frames have passed.

Limits on each file, checked before anything is decoded (a file over one is an error, not a crash):
--max-image-mb (100) and --max-video-mb (2048) on its size, --max-megapixels (50) on an image's or a
video frame's size as its header states it (a decompression bomb is refused unread). A video is read
for at most --max-video-frames (10000) frames and --max-seconds (60) seconds; past either the line
says "stopped at the limit of ..." (in JSON, "truncated": the limit), which is not an error.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hardware.decoders import Decoder
    from hardware.frames import FileLimits

DECODER_CHOICES = ("auto", "zxing", "pyzbar", "opencv")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "scan",
        help="decode payment codes in images, videos or a webcam",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="an image (PNG, JPEG...) or a video (AVI, MP4...)")
    parser.add_argument("--camera", type=int, default=None, metavar="INDEX", help="read a webcam instead of files")
    parser.add_argument("--frames", type=int, default=300, help="with --camera: give up after this many frames")
    parser.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    parser.add_argument(
        "--decoder", default="auto", choices=DECODER_CHOICES, help="auto: zxing-cpp, then pyzbar if it reads nothing"
    )
    limits = parser.add_argument_group("limits on each file (hardware.frames.FileLimits)")
    limits.add_argument("--max-image-mb", type=_positive(float), metavar="MB", help="an image's size (100)")
    limits.add_argument("--max-video-mb", type=_positive(float), metavar="MB", help="a video's size (2048)")
    limits.add_argument("--max-megapixels", type=_positive(float), metavar="MP", help="an image or a video frame (50)")
    limits.add_argument("--max-video-frames", type=_positive(int), metavar="N", help="frames read of a video (10000)")
    limits.add_argument("--max-seconds", type=_positive(float), metavar="S", help="time spent on a video (60)")
    parser.set_defaults(func=run)


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` above zero, or a one-line usage error."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above zero: {text!r}")
        return value

    return parse


def file_limits(args: argparse.Namespace) -> FileLimits:
    """The limits the command line asks for (the defaults for any it does not name)."""
    from hardware.frames import DEFAULT_LIMITS, FileLimits, MiB

    def given(name: str, default: float) -> float:
        value = getattr(args, name, None)
        return default if value is None else float(value)

    return FileLimits(  # a tiny positive limit becomes 1, never 0
        max_image_bytes=max(1, int(given("max_image_mb", DEFAULT_LIMITS.max_image_bytes / MiB) * MiB)),
        max_video_bytes=max(1, int(given("max_video_mb", DEFAULT_LIMITS.max_video_bytes / MiB) * MiB)),
        max_pixels=max(1, int(given("max_megapixels", DEFAULT_LIMITS.max_pixels / 1e6) * 1_000_000)),
        max_video_frames=int(given("max_video_frames", DEFAULT_LIMITS.max_video_frames)),
        max_seconds=given("max_seconds", DEFAULT_LIMITS.max_seconds),
    )


def run(args: argparse.Namespace) -> int:
    from hardware.decoders import decoder_by_name

    try:
        decoder = decoder_by_name(args.decoder)
    except ValueError as error:
        print(f"possim scan: {error}", file=sys.stderr)
        return 2
    camera: int | None = getattr(args, "camera", None)
    try:
        if camera is not None:
            return _scan_camera(camera, decoder, getattr(args, "frames", 300), args.json)
        if not args.files:
            print("possim scan: give files to scan, or --camera INDEX", file=sys.stderr)
            return 2
        return _scan_files(args.files, args.decoder, args.json, file_limits(args))
    except BrokenPipeError:  # `possim scan ... | head -1`: the reader left; stop quietly (Python's advice)
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _scan_files(files: list[str], decoder_name: str, as_json: bool, limits: FileLimits) -> int:
    """Each file with a decoder of its own: a decoder remembers where its last code was, for one camera."""
    from hardware.decoders import decoder_by_name
    from hardware.scan_files import scan_path

    failed = 0
    for path in files:
        report = scan_path(path, decoder_by_name(decoder_name), limits=limits)
        if report.error:
            failed += 1
            print(f"possim scan: {report.error}", file=sys.stderr, flush=True)
        if as_json:
            print(json.dumps(report.as_json(), ensure_ascii=False), flush=True)
        elif report.error:
            print(f"{path}: error: {report.error.removeprefix(f'{path}: ')}", flush=True)
        else:
            found = ", ".join(f"{kind} {text}" for text, kind in report.codes) or "no code"
            cut = f"; stopped at the limit of {report.stopped_by}" if report.truncated else ""
            print(f"{path}: {found} ({report.ms:.1f} ms{cut})", flush=True)
    return 1 if failed else 0


def _scan_camera(index: int, decoder: Decoder, max_frames: int, as_json: bool) -> int:
    """Read a webcam until a code shows (or ``max_frames`` pass): hold the wallet up to it."""
    from hardware.frames import FrameSourceError, VideoSource
    from hardware.scanner import scan_once

    started = time.perf_counter()
    try:
        with VideoSource(index) as source:
            result = scan_once(source, decoder, max_frames=max_frames)
    except FrameSourceError as error:
        print(f"possim scan: {error}", file=sys.stderr)
        return 1
    ms = round((time.perf_counter() - started) * 1000, 2)
    codes = [{"text": result.text, "format": result.format}] if result else []
    if as_json:
        print(json.dumps({"file": f"camera:{index}", "codes": codes, "ms": ms}), flush=True)
    else:
        print(f"camera {index}: {result.format + ' ' + result.text if result else 'no code'} ({ms} ms)", flush=True)
    return 0 if result else 1
