"""``possim bench --only growth --only memory --quick --plot``: the report's shape, never how fast anything was.

One run for the module (both sections share one enrolled template core): a seeded ledger at each quick
size served by ``possim core serve`` and loaded, the core's and a headless register's memory, the plot.
The seed itself is checked on its own: the books balance after it.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.orm import Session

from payment_core.ledger import audit_books
from possim.bench import growth
from possim.cli import main
from possim.world import add_terminal, new_core

_ROW = {"payments_per_s", "p50_ms", "p99_ms", "seed_s", "entries", "throughput_ratio", "p99_ratio"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    plot = tmp_path_factory.mktemp("plot") / "bench.png"
    out = io.StringIO()  # a module-scoped fixture cannot take capsys
    with contextlib.redirect_stdout(out):
        code = main(["bench", "--only", "growth", "--only", "memory", "--quick", "--json", "--plot", str(plot)])
    assert code == 0
    return json.loads(out.getvalue()), plot


@pytest.mark.slow
def test_growth_reports_each_quick_size_against_the_smallest(run: tuple[dict[str, Any], Path]) -> None:
    report, _ = run
    assert set(report) == {"growth", "memory_mb"}
    result = report["growth"]
    assert result["sizes"] == list(growth.QUICK_SIZES)
    for size in growth.QUICK_SIZES:
        row = result[str(size)]
        assert set(row) >= _ROW
        assert row["entries"] == size
        assert row["approved"] > 0 and row["sent"] == result["payments"] - row["cut_short"]
        assert row["p50_ms"] <= row["p99_ms"]
        assert row["seed_s"] >= 0
        # the seeded history is a day old and more: possim admin prune forgets its used codes
        assert row["prune"]["seconds"] >= 0 and 0 < row["prune"]["by_table"]["used_codes"] <= row["prune"]["rows"]
    smallest = result[str(growth.QUICK_SIZES[0])]
    assert smallest["throughput_ratio"] == smallest["p99_ratio"] == 1
    assert isinstance(result["within_20_percent"], bool)
    assert list(result["concurrency"]) == [str(result["terminals"])]  # no sweep in a quick run


@pytest.mark.slow
def test_memory_reports_the_core_and_a_register(run: tuple[dict[str, Any], Path]) -> None:
    memory = run[0]["memory_mb"]
    assert memory["measure"] == "VmHWM"
    for process in ("core", "register"):
        assert memory[process] is None or memory[process] > 0
    assert memory["core_load"]["approved"] > 0
    paid = memory["register_payments"]
    assert paid["payments"] == sum(paid["states"].values()) and paid["approved"] > 0


@pytest.mark.slow
def test_the_plot_is_a_png(run: tuple[dict[str, Any], Path]) -> None:
    plot = run[1]
    assert plot.stat().st_size > 0
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.width > 0 and image.height > 0


def test_the_seeded_books_balance(tmp_path: Path) -> None:
    db = tmp_path / "core.db"
    core = new_core(str(db))
    try:
        terminals = [add_terminal(core, f"Store {n // 2}", f"register-{n}", actor="test") for n in range(3)]
        growth.seed(db, 2_345, terminals)
        with Session(core.engine) as session:
            books = audit_books(session)
        assert books.balanced, books.problems
        assert books.journals == 2_345
    finally:
        core.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("payments", "postings", "topups", "used_codes", "notifications")
        }
    customers = -(-2_345 // growth.PER_CUSTOMER)
    assert counts == {
        "payments": 2_345 - customers,
        "postings": 2 * 2_345,
        "topups": customers,
        "used_codes": 2_345 - customers,
        "notifications": 2_345,
    }
