"""``possim scan FILE... [--json]``: decode images and videos, one line per file."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("scan", help="decode codes in images or videos")
    parser.add_argument("files", nargs="+", metavar="FILE")
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
