"""``possim bench --only scan``'s report: its shape and that its counts agree, never how fast anything was.

``run(quick=True)`` reads a few frames of each condition with every reader; the section is not wired
into ``possim bench`` yet, so the module is called directly.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from rich.console import Console

from hardware.hard_frames import FORMS, HARD_CONDITIONS
from possim.bench import scan

pytestmark = pytest.mark.slow

READERS = ("zxing-cpp", "pyzbar", "opencv", "chain", "pipeline")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    result = scan.run(quick=True)
    return dict(json.loads(json.dumps(result)))  # what --json prints: plain JSON all the way down


def test_the_report_has_every_section(report: dict[str, Any]) -> None:
    assert set(report) >= {"frames", "seed", "conditions", "forms", "pipeline", "union", "targets", *READERS}
    per_condition = scan.PER_CONDITION[True]
    assert report["frames"] == len(HARD_CONDITIONS) * len(FORMS) * per_condition
    assert set(report["conditions"]) == set(HARD_CONDITIONS)
    assert set(report["forms"]) == set(FORMS)
    assert set(report["targets"]) == {"beats_union", "read_rate", "p95", "no_misreads"}
    assert all(isinstance(ok, bool) for ok in report["targets"].values())


def test_each_reader_has_a_rate_misreads_and_times(report: dict[str, Any]) -> None:
    for name in READERS:
        row = report[name]
        assert 0 <= row["read_rate"] <= 100 and row["misreads"] >= 0
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["max_ms"]
        assert 0 < row["wall_p50_ms"] <= row["wall_p95_ms"]
    assert report["union"]["of"] == ["zxing-cpp", "pyzbar"]
    assert report["pipeline"]["decoder"] == "zxing-cpp+pyzbar"
    assert report["pipeline"]["budget_ms"] > 0
    assert set(report["pipeline"]["retries"]) <= {"crop", "clahe", "deblur", "pyzbar-crop", "whole"}
    steps = report["pipeline"]["steps"]
    assert steps["first"]["runs"] == report["frames"]  # every frame gets the first try
    assert set(steps) <= {"first", "locate", "crop", "clahe", "deblur", "pyzbar-crop", "whole"}
    for step, count in report["pipeline"]["retries"].items():
        assert steps[step]["reads"] == count
    assert all(row["mean_ms"] >= 0 and row["reads"] <= row["runs"] for row in steps.values())


def test_buckets_add_up(report: dict[str, Any]) -> None:
    conditions, forms = report["conditions"], report["forms"]
    assert sum(row["frames"] for row in conditions.values()) == report["frames"]
    assert sum(row["frames"] for row in forms.values()) == report["frames"]
    for name in (*READERS, "union"):
        read = sum(row[name] * row["frames"] / 100 for row in conditions.values())
        assert read == pytest.approx(report[name]["read_rate"] * report["frames"] / 100, abs=0.1)


def test_the_union_is_at_least_each_library_and_the_chain_is_the_union(report: dict[str, Any]) -> None:
    union = report["union"]["read_rate"]
    assert union >= max(report["zxing-cpp"]["read_rate"], report["pyzbar"]["read_rate"])
    assert report["chain"]["read_rate"] == union  # zxing-cpp, then pyzbar when it reads nothing


def test_the_pipeline_never_misreads(report: dict[str, Any]) -> None:
    assert report["pipeline"]["misreads"] == 0 and report["targets"]["no_misreads"]


def test_the_tables_print(report: dict[str, Any]) -> None:
    console = Console(record=True, width=120)
    scan.print_table(console, report)
    text = console.export_text()
    assert "scan: read rate %" in text and "pipeline" in text and "targets" in text
    for condition in HARD_CONDITIONS:
        assert condition in text
