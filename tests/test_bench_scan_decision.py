"""The scan-to-decision bench's report: its shape and that its counts add up, never how fast anything was.

``run(quick=True)`` runs the real thing, small: a ``possim core serve`` subprocess on SQLite, frames of
fresh codes read by the register's decoder and paid through its client, while 8 other registers pay from
two client processes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from possim.bench import scan_decision

pytestmark = pytest.mark.slow  # SQLite only: no PostgreSQL server needed

_STAGES = ("decode", "decision")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    result = scan_decision.run(quick=True)
    return dict(json.loads(json.dumps(result, allow_nan=False)))  # plain JSON all the way down


def test_the_measured_payments_add_up(report: dict[str, Any]) -> None:
    assert set(report) >= {"p50", "p99", "payments", "approved", "declined", "errors", "codes", "cut_short"}
    assert 0 < report["payments"] == report["approved"] + report["declined"] + report["errors"]
    assert report["payments"] + report["cut_short"] == scan_decision.QUICK.payments
    codes = report["codes"]
    assert sum(codes.values()) == report["declined"] + report["errors"]
    assert all(outcome.split(":", 1)[0] in ("declined", "error") for outcome in codes)
    assert report["p50"] <= report["p99"]


def test_each_stage_is_reported(report: dict[str, Any]) -> None:
    stages = report["stages_ms"]
    assert set(stages) == set(_STAGES)
    for stage in _STAGES:
        assert set(stages[stage]) == {"p50", "p99"}
        assert 0 <= stages[stage]["p50"] <= stages[stage]["p99"]
    assert report["frame"] == "1280x720" and report["store"] == "sqlite"


def test_eight_other_registers_paid_meanwhile(report: dict[str, Any]) -> None:
    assert report["background_terminals"] == 8
    background = report["background"]
    assert background["rounds"] == 1 and isinstance(background["covered"], bool)
    assert 0 <= background["approved"] <= background["sent"]
    assert sum(background["codes"].values()) == background["sent"] - background["approved"]
    assert report["background_payments_per_s"] >= 0
