"""``possim bench``: the suite checks what it reports, never how fast anything was."""

from __future__ import annotations

import json

import pytest

from possim.cli import main


def test_the_enumeration_bench_reports_each_case_with_its_statistics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--only", "enumeration", "--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    enumeration = report["enumeration"]
    assert enumeration["samples"] == 8
    assert enumeration["alpha"] == 0.001
    for case in ("power_check", "sign_in", "sign_up", "reset"):
        row = enumeration[case]
        assert set(row) == {"median_ms", "p_value", "differs", "as_expected"}
        assert len(row["median_ms"]) == 2 and all(value > 0 for value in row["median_ms"])
        assert 0.0 <= row["p_value"] <= 1.0
        assert row["differs"] == (row["p_value"] < 0.001)
