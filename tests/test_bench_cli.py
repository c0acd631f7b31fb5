"""``possim bench``: the suite checks what it reports, never how fast anything was."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import ANY

import pytest

from possim.bench import enumeration as enumeration_bench
from possim.cli import main
from possim.commands import bench


def test_the_enumeration_bench_reports_each_case_with_its_statistics(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(enumeration_bench, "QUICK_SAMPLES", 5)  # the shape is the same at any size
    assert main(["bench", "--only", "enumeration", "--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    enumeration = report["enumeration"]
    assert enumeration["samples"] == 5
    assert enumeration["alpha"] == 0.001
    for case in ("power_check", "sign_in", "sign_up", "reset"):
        row = enumeration[case]
        assert set(row) == {"median_ms", "p_value", "differs", "as_expected"}
        assert len(row["median_ms"]) == 2 and all(value > 0 for value in row["median_ms"])
        assert 0.0 <= row["p_value"] <= 1.0
        assert row["differs"] == (row["p_value"] < 0.001)


def test_a_section_whose_module_is_missing_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(bench.MODULES, "workers", "not_written_yet")
    assert main(["bench", "--only", "workers", "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"errors": {"workers": ANY}}
    assert captured.err.count("\n") == 1 and "possim.bench.not_written_yet" in captured.err
    assert "Traceback" not in captured.err


def test_the_json_keys_are_the_issues() -> None:
    core: dict[str, Any] = {"ceiling_per_s": 1.0}
    workers: dict[str, Any] = {"1": {}, "2": {}}
    on_sqlite: dict[str, Any] = {"1": {"payments_per_s": 1.0}, "2": {"payments_per_s": 2.0}}
    results = {"core": core, "workers": workers, "scan_to_decision": {"p50": 1}, "memory": {"core": 1}, "growth": {}}
    assert bench._report(results | {"workers_sqlite": on_sqlite}) == {
        "core": core | {"workers": workers, "workers_sqlite": on_sqlite},
        "scan_to_decision_ms": {"p50": 1},
        "memory_mb": {"core": 1},
        "growth": {},
    }
    assert bench._report({"workers": workers}) == {"workers": workers}  # no core run: the workers stand alone
    assert bench._report({"workers_sqlite": on_sqlite}) == {"workers_sqlite": on_sqlite}
    throttled: dict[str, Any] = {"sqlite": {"ratio_429_to_payment": 0.5}}
    assert bench._report({"core": core, "throttled": throttled}) == {"core": core | {"throttled": throttled}}


def test_the_sqlite_workers_section_runs_its_own_function(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(bench.RUNS, "workers_sqlite", "not_written_yet")
    assert main(["bench", "--only", "workers_sqlite", "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"errors": {"workers_sqlite": ANY}}
    assert "possim.bench.core_workers has no not_written_yet(quick)" in captured.err
