"""``possim bench --plot FILE.png``: throughput and p99 against concurrency and against ledger size.

Four panels from whatever the run measured: approved payments a second and p99 latency against the
number of registers paying at once (the ``growth`` section's sweep on its smallest ledger, and the
``core`` section's SQLite and PostgreSQL runs), and against the ledger's size (``growth``). A panel with
nothing to draw says so. Drawn with matplotlib's Agg canvas (no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

Series = dict[str, list[tuple[float, float, float]]]  # label -> (x, paid/s, p99 ms) points


def draw(results: dict[str, Any], path: Path) -> Path:
    """Draw the figures in ``results`` (sections by name, as ``possim bench`` holds them) to ``path`` (PNG)."""
    figure = Figure(figsize=(11, 8), layout="constrained")
    FigureCanvasAgg(figure)
    (throughput_c, p99_c), (throughput_l, p99_l) = figure.subplots(2, 2)
    concurrency, ledger = by_concurrency(results), by_ledger_size(results)
    _panel(throughput_c, concurrency, 1, "registers paying at once", "approved payments/s")
    _panel(p99_c, concurrency, 2, "registers paying at once", "p99 latency, ms")
    _panel(throughput_l, ledger, 1, "ledger entries", "approved payments/s", log=True)
    _panel(p99_l, ledger, 2, "ledger entries", "p99 latency, ms", log=True)
    figure.suptitle("possim bench: payments through the core")
    figure.savefig(path, format="png", dpi=100)
    return path


def by_concurrency(results: dict[str, Any]) -> Series:
    series: Series = {}
    growth = results.get("growth")
    if growth:
        label = f"SQLite, {growth['sizes'][0]:,} entries (growth)"
        series[label] = [_point(int(k), row) for k, row in growth["concurrency"].items()]
    core = results.get("core")
    if core:
        for store in ("sqlite", "postgresql"):
            if store in core:
                series[f"{store} (core)"] = [_point(core["terminals"], core[store])]
    return series


def by_ledger_size(results: dict[str, Any]) -> Series:
    growth = results.get("growth")
    if not growth:
        return {}
    return {"SQLite (growth)": [_point(size, growth[str(size)]) for size in growth["sizes"]]}


def _point(x: float, row: dict[str, Any]) -> tuple[float, float, float]:
    return float(x), float(row["payments_per_s"]), float(row["p99_ms"])


def _panel(axes: Axes, series: Series, column: int, xlabel: str, ylabel: str, *, log: bool = False) -> None:
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    if not series:
        axes.text(0.5, 0.5, "not measured in this run", ha="center", va="center", transform=axes.transAxes)
        return
    if log:
        axes.set_xscale("log")
    for label, points in series.items():
        ordered = sorted(points)
        axes.plot([p[0] for p in ordered], [p[column] for p in ordered], marker="o", label=label)
    highest = max(point[column] for points in series.values() for point in points)
    axes.set_ylim(bottom=0, top=highest * 1.15 or 1)
    axes.legend(fontsize="small")
