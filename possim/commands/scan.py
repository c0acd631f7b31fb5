"""possim scan FILE... [--json] [--decoder auto|zxing|pyzbar|opencv]: decode images and videos.

One line per file on stdout: "FILE: FORMAT TEXT (MS ms)", "FILE: no code (MS ms)" or
"FILE: error: WHY". With --json each line is {"file", "codes": [{"text", "format"}], "ms"}, plus
"error" for a file that could not be read. A bad file is also named on stderr, and the exit status
is 1 when any file failed (2 for a usage error or an unusable decoder).
--camera INDEX reads a webcam instead, until a code shows or --frames frames have passed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hardware.decoders import Decoder

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
    parser.set_defaults(func=run)


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
        return _scan_files(args.files, decoder, args.json)
    except BrokenPipeError:  # `possim scan ... | head -1`: the reader left; stop quietly (Python's advice)
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _scan_files(files: list[str], decoder: Decoder, as_json: bool) -> int:
    from hardware.scan_files import scan_path

    failed = 0
    for path in files:
        report = scan_path(path, decoder)
        if report.error:
            failed += 1
            print(f"possim scan: {report.error}", file=sys.stderr, flush=True)
        if as_json:
            print(json.dumps(report.as_json(), ensure_ascii=False), flush=True)
        elif report.error:
            print(f"{path}: error: {report.error.removeprefix(f'{path}: ')}", flush=True)
        else:
            found = ", ".join(f"{kind} {text}" for text, kind in report.codes) or "no code"
            print(f"{path}: {found} ({report.ms:.1f} ms)", flush=True)
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
