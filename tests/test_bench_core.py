"""``possim bench --only core``: the report's shape and that its counts add up, never how fast anything was.

It runs the real thing, small: a ceiling app and two ``possim core serve`` subprocesses (SQLite, then a
schema of its own on the test PostgreSQL server), enrolled phones, two client processes.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from possim.bench import core_load
from possim.bench.floor_app import FloorStore
from possim.cli import main
from tests.conftest import POSTGRES_URL

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SENT, FLOOD_SENT = 80, 40
_TIMING = {"payments_per_s", "answers_per_s", "p50_ms", "p99_ms", "seconds", "server_cpu", "client_cpu"}
_ROW = _TIMING | {"approved", "declined", "errors", "codes", "sent", "cut_short"}


def _check_counts(row: dict[str, Any], sent: int) -> None:
    assert set(row) >= _ROW
    assert row["sent"] == sent
    assert row["approved"] + row["declined"] + row["errors"] == sent
    codes = row["codes"]
    assert sum(codes.values()) == row["declined"] + row["errors"]
    assert all(outcome.split(":", 1)[0] in ("declined", "error") for outcome in codes)
    assert row["p50_ms"] <= row["p99_ms"]


def test_the_core_bench_reports_the_ceiling_and_each_store(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_load, "POSTGRES_URL", POSTGRES_URL)  # the suite's server ($POSSIM_TEST_POSTGRES)
    # smaller than --quick: the shape and the counts are the same at any size, and the suite has 15 minutes
    monkeypatch.setattr(
        core_load, "QUICK", dataclasses.replace(core_load.QUICK, payments=SENT, flood_payments=FLOOD_SENT)
    )
    assert main(["bench", "--only", "core", "--quick", "--json"]) == 0
    core = json.loads(capsys.readouterr().out)["core"]
    assert (core["terminals"], core["phones"], core["payments"]) == (4, 5, SENT)
    assert core["synchronous"] in ("OFF", "NORMAL", "FULL", "EXTRA")
    assert core["limits"] == "defaults"
    ceiling = core["ceiling"]
    _check_counts(ceiling, SENT)
    assert ceiling["approved"] == SENT and ceiling["cut_short"] == 0
    assert core["ceiling_per_s"] == ceiling["answers_per_s"] > 0
    floor = core["floor"]
    _check_counts(floor, SENT)
    assert floor["approved"] == SENT and floor["cut_short"] == 0
    assert floor["ratio"] == pytest.approx(floor["answers_per_s"] / core["ceiling_per_s"], abs=5e-5)
    for store in ("sqlite", "postgresql"):
        row = core[store]
        _check_counts(row, SENT - row["cut_short"])
        assert row["approved"] > 0
        # the ratio is rounded to 4 places: a small one (0.0245) is off its unrounded value by more than 0.1%
        assert row["ratio"] == pytest.approx(row["payments_per_s"] / core["ceiling_per_s"], abs=5e-5)
    assert core["postgresql"]["synchronous_commit"]
    for store in ("sqlite", "postgresql"):
        _check_flood(core[store]["flood"])


def _check_flood(flood: dict[str, Any]) -> None:
    """The flood's shape and counts: payments still answered, sign-ins all tallied, /healthz polled."""
    assert set(flood) >= {"payments_per_s", "p50_ms", "p99_ms", "approved", "signins"}
    assert set(flood) >= {"healthz_saturated_seen", "healthz_p99_ms"}
    assert 0 <= flood["approved"] <= flood["sent"] == FLOOD_SENT - flood["cut_short"]
    assert flood["p50_ms"] <= flood["p99_ms"]
    signins = flood["signins"]
    assert 0 < signins["sent"] <= 2_000
    assert sum(signins["by_status"].values()) == signins["sent"]
    assert all(status in ("401", "503") or status.startswith("error:") for status in signins["by_status"])
    assert isinstance(flood["healthz_saturated_seen"], bool)
    assert flood["healthz_polls"] > 0 and flood["healthz_p99_ms"] is not None


def test_the_floor_writes_each_payment_whole_and_durably(tmp_path: Path) -> None:
    """The floor's stand-in store: every charge is its ten rows in one WAL transaction with synchronous=FULL,
    the books balance, and a nonce seen twice is refused with nothing written."""
    store = FloorStore(str(tmp_path / "floor.db"))
    for number in range(5):
        answer = store.charge({"order_id": f"o{number}", "amount": 100, "code": "c"}, nonce=f"n{number}")
        assert answer == {"id": f"pay_{number + 1}", "order_id": f"o{number}", "status": "succeeded", "amount": 100}
    with pytest.raises(sqlite3.IntegrityError):
        store.charge({"order_id": "again", "amount": 100, "code": "c"}, nonce="n0")
    with sqlite3.connect(tmp_path / "floor.db") as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        counts = [check.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in _FLOOR_TABLES]
        assert counts == [5, 5, 5, 5, 10, 5, 5]
        assert check.execute("SELECT sum(amount) FROM postings").fetchone() == (0,)
        assert check.execute("SELECT balance FROM books WHERE id = 2").fetchone() == (500,)
    assert store.synchronous() == "FULL"


_FLOOR_TABLES = ("nonces", "used_codes", "payments", "journals", "postings", "notifications", "audit")
