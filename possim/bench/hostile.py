"""What does a hostile file cost ``possim scan``? The fuzz set of ``possim.bench.hostile_inputs``, timed.

Every file of the set (corrupt, truncated, bit-flipped, decompression bombs, huge headers, sparse files
over the size limits, FIFOs, directories, misnamed files, broken videos, and the real files they were
made from) goes through ``hardware.scan_files.scan_path`` with a fresh default decoder, as
``possim scan`` reads it, one after the other in this process. For each file: the wall-clock seconds,
and how far the process's resident memory rose above what it held before the file (the kernel's peak,
``VmHWM``, reset before each file through ``/proc/self/clear_refs``; None without ``/proc``).

The report: how many inputs of each kind, how they ended (refused by reason, read), the files that
did not end as the set expects (``unexpected``: should be empty), the slowest file and the file that
raised memory most, and the process's resident memory before and after the whole set.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hardware.decoders import default_decoder
from hardware.scan_files import ScanReport, scan_path
from possim.bench.hostile_inputs import REASONS, HostileFile, make_hostile_files, unlock
from possim.bench.served import memory_mb

SEED = 20
FLIPS = {False: 20, True: 2}  # bit-flipped copies of each real file, by ``quick``


def run(quick: bool = False) -> dict[str, Any]:
    """Scan the whole fuzz set once; see the module docstring for the figures."""
    with tempfile.TemporaryDirectory(prefix="possim-hostile-") as folder:
        files = make_hostile_files(Path(folder), seed=SEED, flips=FLIPS[quick])
        try:
            return _measure(files, Path(folder))
        finally:
            unlock(files)


def _measure(files: list[HostileFile], folder: Path) -> dict[str, Any]:
    before = memory_mb()
    rows = []
    for hostile in files:
        reset = _reset_peak()
        resident = memory_mb()["now"]
        started = time.perf_counter()
        report = scan_path(hostile.path, default_decoder())
        seconds = time.perf_counter() - started
        peak = memory_mb()["peak"]
        growth = round(peak - resident, 1) if reset and peak is not None and resident is not None else None
        rows.append((hostile, report, seconds, growth))
    after = memory_mb()
    slowest = max(rows, key=lambda row: row[2])
    hungriest = max(rows, key=lambda row: row[3] or 0.0)
    return {
        "seed": SEED,
        "inputs": len(files),
        "kinds": dict(Counter(hostile.kind for hostile in files)),
        "refused": dict(Counter(reason(report) for _, report, _, _ in rows if report.error)),
        "read": sum(1 for _, report, _, _ in rows if not report.error),
        "unexpected": [
            str(hostile.path.relative_to(folder)) for hostile, report, _, _ in rows if not met(hostile, report)
        ],
        "p50_ms": round(statistics.median(seconds for _, _, seconds, _ in rows) * 1000, 2),
        "worst_seconds": _which(slowest[0], folder, round(slowest[2], 3)),
        "worst_rss_growth_mb": _which(hungriest[0], folder, hungriest[3]),
        "rss_mb": {"before": before["now"], "after": after["now"]},
    }


def reason(report: ScanReport) -> str:
    """The refusal's reason without the file's name or the details in brackets: "too many pixels"."""
    text = (report.error or "").removeprefix(f"{report.file}: ")
    return re.split(r" \(|: ", text, maxsplit=1)[0]


def met(hostile: HostileFile, report: ScanReport) -> bool:
    """Whether the file ended as the set expects it to, in one line with a known reason when refused."""
    if report.error is not None:
        clear = report.error.startswith(f"{hostile.path}: ") and "\n" not in report.error
        if not clear or not any(known in report.error for known in REASONS) or hostile.outcome == "read":
            return False
        return hostile.outcome == "either" or any(expected in report.error for expected in hostile.reasons)
    texts = {text for text, _ in report.codes}
    return hostile.outcome != "error" and hostile.codes <= texts


def _which(hostile: HostileFile, folder: Path, value: float | None) -> dict[str, Any]:
    return {"file": str(hostile.path.relative_to(folder)), "kind": hostile.kind, "value": value}


def _reset_peak() -> bool:
    """Reset the kernel's record of this process's peak resident memory (``VmHWM``): True if it could."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def print_table(console: Console, result: dict[str, Any]) -> None:
    """The section as a table: what the set held and how it ended, then the worst file for each cost."""
    table = Table(title=f"hostile files: {result['inputs']} inputs (seed {result['seed']})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, count in sorted(result["refused"].items()):
        table.add_row(f"refused: {name}", str(count))
    table.add_row("read", str(result["read"]))
    table.add_row("not as expected", ", ".join(result["unexpected"]) or "none")
    table.add_row("p50 ms a file", f"{result['p50_ms']:.2f}")
    worst, hungriest = result["worst_seconds"], result["worst_rss_growth_mb"]
    table.add_row(f"slowest ({worst['kind']}: {worst['file']}), s", str(worst["value"]))
    table.add_row(f"most memory ({hungriest['kind']}: {hungriest['file']}), MiB", str(hungriest["value"]))
    table.add_row("resident MiB before / after", f"{result['rss_mb']['before']} / {result['rss_mb']['after']}")
    console.print(table)
