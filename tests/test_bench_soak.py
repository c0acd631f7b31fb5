"""``possim bench --only soak``: the report's shape and that its counts add up, never how fast it was.

A real run, small: registers of a served ``possim core serve`` on SQLite paying in rounds."""

from __future__ import annotations

import dataclasses
import json

import pytest

from possim.bench import soak
from possim.cli import main

pytestmark = pytest.mark.slow


def test_the_soak_reports_rounds_errors_and_memory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # smaller than --quick (the shape is the same at any size): two rounds of a few seconds
    monkeypatch.setattr(soak, "QUICK", dataclasses.replace(soak.QUICK, phones=8, payments=256, seconds=4.0))
    monkeypatch.setitem(soak.DURATION, True, 1.0)
    assert main(["bench", "--only", "soak", "--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["soak"]
    assert (report["terminals"], report["phones"], report["synchronous"]) == (64, 8, "FULL")
    assert report["rounds"] >= 1
    assert report["approved"] + report["declined"] + report["errors"] == report["sent"] > 0
    assert report["errors"] == 0 and report["declined"] == 0 and report["codes"] == {}
    rss = report["rss_mb"]
    assert len(rss["each_round"]) == report["rounds"] and rss["end"] == rss["each_round"][-1]
    assert all(value > 0 for value in [rss["start"], *rss["each_round"]])
    assert report["growth_mb"] == pytest.approx(rss["end"] - rss["each_round"][0], abs=0.11)
