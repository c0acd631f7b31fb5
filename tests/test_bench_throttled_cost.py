"""``possim.bench.throttled_cost``: the report's shape and that its counts add up, never how fast anything was.

It runs the real thing, small: a ``possim core serve`` subprocess on SQLite, one loopback address blocked
by the throttle, its refused sign-ins and then approved payments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from possim.bench import throttled_cost

pytestmark = pytest.mark.slow

_PHASE = {"count", "expected", "errors", "by_outcome", "cpu_ms_per_request", "p50_ms", "p99_ms", "seconds", "cut_short"}


def _check_phase(row: dict[str, Any], outcome: str, measured: int) -> None:
    assert set(row) == _PHASE
    assert row["cut_short"] == 0
    assert row["count"] == measured == sum(row["by_outcome"].values())
    assert row["by_outcome"] == {outcome: measured}  # every one as expected, nothing else
    assert (row["expected"], row["errors"]) == (measured, 0)
    assert row["cpu_ms_per_request"] > 0
    assert 0 < row["p50_ms"] <= row["p99_ms"]
    assert row["seconds"] > 0


def test_a_blocked_address_is_refused_with_429_and_payments_are_approved(tmp_path: Path) -> None:
    result = throttled_cost.run_throttled_cost("sqlite", quick=True, folder=tmp_path)
    assert result["store"] == "sqlite"
    assert result["address"] == throttled_cost.ADDRESS
    _check_phase(result["refused_429"], throttled_cost.REFUSED, throttled_cost.QUICK.refused)
    _check_phase(result["payment"], "approved", throttled_cost.QUICK.payments)
    ratio = result["refused_429"]["cpu_ms_per_request"] / result["payment"]["cpu_ms_per_request"]
    assert result["ratio_429_to_payment"] == pytest.approx(ratio, abs=1e-3)
    approach = result["approach"]
    assert approach["retry_after_s"] > 900  # a block, beyond any backoff
    assert sum(approach["by_outcome"].values()) == approach["signins"]
    # the free failures (and any whose backoff had passed on a busy machine), then 429s
    assert approach["by_outcome"]["http_401:credentials_invalid"] >= 5
    assert set(approach["by_outcome"]) == {"http_401:credentials_invalid", throttled_cost.REFUSED}
    assert result["synchronous"] in ("OFF", "NORMAL", "FULL", "EXTRA")
