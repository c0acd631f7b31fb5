"""``possim demo``: the whole payment path in one command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("demo", help="run the payment path end to end")
    parser.add_argument(
        "--headless", action="store_true", help="no TUI: run N payments through the scan path and print a summary"
    )
    parser.add_argument("--payments", type=int, default=20, help="how many payments (default 20)")
    parser.add_argument("--seed", type=int, default=7, help="seed for amounts and camera noise")
    parser.add_argument("--json", action="store_true", help="print only a JSON summary")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from possim.headless_demo import run_headless_demo

    if not 1 <= args.payments <= 10_000:
        print("possim demo: --payments must be 1..10000", file=sys.stderr)
        return 2
    if not args.headless:
        return _run_tui(args.seed)
    if args.json:
        summary = run_headless_demo(args.payments, args.seed)
    else:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task("payments through the camera", total=args.payments)
            summary = run_headless_demo(args.payments, args.seed, lambda _n, done, _t: bar.update(task, completed=done))
    result = summary.as_dict()
    if args.json:
        print(json.dumps(result))
    else:
        _print_human(result)
    ok = result["audit"] == "balanced" and result["approved"] == result["payments"]
    return 0 if ok else 1


def _run_tui(seed: int) -> int:
    from possim.tui_demo import demo_register

    if not sys.stdout.isatty():
        print("possim demo: the register needs a terminal; use --headless for a run without one.", file=sys.stderr)
        return 2
    with demo_register(seed) as demo:
        try:
            demo.app.run()
        finally:
            print(receipts_note(demo.receipts), file=sys.stderr)
    return 0


def receipts_note(receipts: Path) -> str:
    """The line the demo leaves on stderr: where its receipts are kept (the folder outlives the demo)."""
    text = receipts.with_suffix(".txt")
    printed = f"this run's: {text.name}" if text.exists() else "none printed this run"
    return f"possim demo: receipts are kept in {text.parent}/ ({printed})"


def _print_human(result: dict[str, Any]) -> None:
    latency = result["scan_to_decision_ms"]
    print(f"payments   {result['approved']}/{result['payments']} approved through the virtual camera")
    print(
        f"refused    {result['replays_rejected']} replays, {result['expired_rejected']} expired, "
        f"{result['forged_rejected']} forged codes"
    )
    print(f"latency    scan to decision p50 {latency['p50']} ms, p99 {latency['p99']} ms ({result['decoder']})")
    print(f"books      {result['audit']}")
