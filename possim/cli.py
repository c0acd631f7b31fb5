"""The ``possim`` command. Each sub-command lives in ``possim.commands.<name>`` and registers itself."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = ("scan", "core", "admin", "demo", "register", "wallet", "outbox", "bench", "attack", "chaos")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="possim", description="Point-of-sale barcode payment simulator.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"possim.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("possim: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
