"""``possim attack credential-stuffing``, small and seeded: the same list attack against a core set up as
7pay was and against possim as shipped, each a real ``possim core serve`` subprocess on 127.0.0.1 reached
from 127.x.y.z aliases. The 7pay core loses money, possim's loses none and takes over no account; the
figures are counted from the ledger and equal the incident report's; an operator's kill switch stops the
card top-ups on the next request. Bounded by the scenario's time limit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from payment_core.config import PasswordPolicy
from payment_core.passwords import SALTED_SHA256, PasswordHasher
from possim.attack import defences
from possim.attack.run import run_attack
from possim.attack.scenario import Scenario, attacker_address, build_world

pytestmark = pytest.mark.slow

SMALL = Scenario(accounts=300, attempts=1_500, seed=7, max_seconds=90)
KEYS = (
    "login_attempts",
    "accounts_taken_over",
    "victims",
    "yen_lost",
    "topups_blocked",
    "payments_declined_by_risk",
    "legit_payments",
    "legit_payments_declined",
    "detected_at_s",
    "contained_at_s",
    "duration_s",
)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both runs through the command line, as a user types it, with the chart."""
    folder = tmp_path_factory.mktemp("attack")
    chart = folder / "attack.png"
    command = [sys.executable, "-m", "possim", "attack", "credential-stuffing", "--json", "--plot", str(chart)]
    command += ["--accounts", str(SMALL.accounts), "--attempts", str(SMALL.attempts), "--seed", str(SMALL.seed)]
    command += ["--max-seconds", str(SMALL.max_seconds)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = {run["defenses"]: run for run in json.loads(done.stdout)["runs"]}
    return {"runs": runs, "chart": chart}


def test_the_7pay_core_loses_money_to_the_list(both: dict[str, Any]) -> None:
    run = both["runs"][defences.SEVEN_PAY]
    assert all(key in run for key in KEYS)
    assert run["login_attempts"] == SMALL.attempts and not run["cut_short"]
    # every right password on the list worked, and 7pay's reset form mailed every stale entry's code to
    # the attacker's drop box, which took those accounts over without their passwords
    door = run["reset_door"]
    assert door["taken_over"] == door["codes_received"] == run["reset_codes_mailed_elsewhere"] == run["list_stale"]
    assert run["accounts_taken_over"] == run["list_hits"] + run["list_stale"] and run["list_hits"] > 0
    assert run["victims"] > 0 and run["yen_lost"] > 0
    assert run["topups_credited"] > 0 and run["topups_blocked"] == 0  # the owners' cards, no second factor
    assert run["detected_at_s"] is None  # nothing watched
    assert run["contained_at_s"] > 0
    assert any("salted SHA-256" in note for note in run["core"])  # the report says how it stored passwords


def test_possim_as_shipped_loses_nothing_and_keeps_its_customers_shopping(both: dict[str, Any]) -> None:
    run = both["runs"][defences.HARDENED]
    assert all(key in run for key in KEYS)
    assert run["login_attempts"] == SMALL.attempts and not run["cut_short"]
    assert run["accounts_taken_over"] == 0 and run["victims"] == 0 and run["yen_lost"] == 0
    # every entry whose password was wrong went to the reset door, and the form refused the second address
    assert run["reset_door"] == {"refused_422": run["sign_in_outcomes"]["refused"]} and run["reset_door"]
    assert run["reset_codes_mailed_elsewhere"] == 0
    assert run["detected_at_s"] is not None and run["detected_at_s"] < run["duration_s"]
    # nearly every try was refused before any password work
    assert run["sign_ins_reaching_a_password"] < SMALL.attempts // 10
    assert run["sign_in_outcomes"].get("held", 0) > SMALL.attempts // 2
    assert run["legit_payments"] > 0
    assert "risk_declined" not in run["legit_outcomes"]
    assert 0.0 <= run["legit_decline_rate"] <= 1.0


@pytest.mark.parametrize("name", defences.NAMES)
def test_the_figures_are_the_ledgers_and_equal_the_incident_report(both: dict[str, Any], name: str) -> None:
    run = both["runs"][name]
    report = run["report"]
    assert run["yen_lost"] == report["yen_lost"] == run["yen_taken_seen_by_attacker"]
    assert run["victims"] == report["victims"]
    # the report counts a takeover once the stolen phone was used; the run, every phone the thief enrolled
    assert report["accounts_taken_over"] == run["victims"] <= run["accounts_taken_over"]
    assert run["sign_ins_reaching_a_password"] == report["signins"]["attempts"]
    if name == defences.HARDENED:
        held = run["sign_in_outcomes"].get("held", 0)
        assert report["signins"]["held_before_password"] == held  # every 429 is in the audit


def test_the_chart_is_drawn(both: dict[str, Any]) -> None:
    chart: Path = both["chart"]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000


def test_an_operator_mid_attack_stops_card_top_ups_at_once(tmp_path: Path) -> None:
    run = run_attack(SMALL, defences.SEVEN_PAY, operator=True, folder=tmp_path)
    log = run["operator"]
    assert log["noticed_at_s"] is not None
    done = [action["action"] for action in log["actions"] if action["status"] == 200]
    assert "POST /v1/admin/switches/topup-card/pause" in done
    assert "POST /v1/admin/switches/enrollment/pause" in done
    assert log["card_topups_after_pause"] == 0
    assert run["topups_blocked"] > 0 or run["topups_credited"] == 3 * run["accounts_taken_over"]


def test_the_world_is_the_seeds() -> None:
    first, again, other = build_world(SMALL), build_world(SMALL), build_world(Scenario(accounts=300, attempts=1_500))
    assert first == again
    assert [e.email for e in other.leaked] == [e.email for e in first.leaked]  # seed 7 is the default
    changed = build_world(Scenario(accounts=300, attempts=1_500, seed=8))
    assert [e.email for e in changed.leaked] != [e.email for e in first.leaked]
    assert first.hits == round(300 * SMALL.reused_share)
    assert len(set(first.attacker_addresses)) == len(first.attacker_addresses)
    assert all(address.startswith("127.") for address in map(attacker_address, range(5_000)))


def test_a_fast_hash_is_never_accepted_by_a_core_on_argon2id() -> None:
    fast = PasswordHasher(PasswordPolicy(scheme=SALTED_SHA256))
    stored = fast.hash("correct horse battery staple")
    assert fast.verify(stored, "correct horse battery staple") and not fast.verify(stored, "wrong")
    assert not PasswordHasher(PasswordPolicy()).verify(stored, "correct horse battery staple")
    assert PasswordHasher(PasswordPolicy()).needs_rehash(stored)
    with pytest.raises(ValueError, match="unknown password scheme"):
        PasswordHasher(PasswordPolicy(scheme="md5"))
