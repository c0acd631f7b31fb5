"""``possim scan FILE... [--json]``: decode images and videos, one line per file."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("scan", help="decode codes in images or videos")
    parser.add_argument("files", nargs="*", metavar="FILE")
    parser.add_argument("--camera", type=int, default=None, metavar="INDEX", help="read a webcam instead of files")
    parser.add_argument("--frames", type=int, default=300, help="with --camera: give up after this many frames")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--decoder", default="auto", choices=["auto", "zxing", "pyzbar", "opencv"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hardware.decoders import decoder_by_name
    from hardware.scan_files import scan_path

    try:
        decoder = decoder_by_name(args.decoder)
    except ValueError as error:
        print(f"possim scan: {error}", file=sys.stderr)
        return 2
    if args.camera is not None:
        return _scan_camera(args.camera, decoder, args.frames, args.json)
    if not args.files:
        print("possim scan: give files to scan, or --camera INDEX", file=sys.stderr)
        return 2
    failed = 0
    for path in args.files:
        report = scan_path(path, decoder)
        if report.error:
            failed += 1
            print(f"possim scan: {report.error}", file=sys.stderr)
        if args.json:
            print(json.dumps(report.as_json()), flush=True)
        elif not report.error:
            found = ", ".join(f"{kind} {text}" for text, kind in report.codes) or "no code"
            print(f"{path}: {found} ({report.ms:.1f} ms)")
    return 1 if failed else 0


def _scan_camera(index: int, decoder: Any, max_frames: int, as_json: bool) -> int:
    """Read a webcam until a code shows (or ``max_frames`` pass): hold the wallet up to it."""
    import time

    from hardware.frames import FrameSourceError, VideoSource
    from hardware.scanner import scan_once

    started = time.perf_counter()
    try:
        with VideoSource(index) as camera:
            result = scan_once(camera, decoder, max_frames=max_frames)
    except FrameSourceError as error:
        print(f"possim scan: {error}", file=sys.stderr)
        return 1
    ms = round((time.perf_counter() - started) * 1000, 2)
    codes = [{"text": result.text, "format": result.format}] if result else []
    if as_json:
        print(json.dumps({"file": f"camera:{index}", "codes": codes, "ms": ms}))
    else:
        print(f"camera {index}: {result.format + ' ' + result.text if result else 'no code'} ({ms} ms)")
    return 0 if result else 1
