"""``possim attack card-testing``, small: leaked card numbers linked to the attacker's wallets, their
security codes guessed. Against a core set up as 7pay was the thief links cards and charges them; against
possim as shipped it links none, is detected and blocked, and every customer's own card still links. Each
run is a real ``possim core serve`` subprocess on 127.0.0.1, bounded by its time limit. (Apart from the
list attack's file so that the two long runs go to two test processes.)"""

from __future__ import annotations

from typing import Any

import pytest

from possim.attack import defences
from possim.attack.run import run_card_testing
from possim.attack.scenario import Scenario

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def card_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """7pay's core with a budget that finds codes (each worker can walk a card's 1,000 codes); possim's for
    25 s, which is enough: its authenticator paces the thief to three codes a phone every 30 s."""
    budget = 2 * 1_000
    return {
        defences.SEVEN_PAY: run_card_testing(
            Scenario(accounts=300, attempts=budget, sign_in_workers=2, max_seconds=180),
            defences.SEVEN_PAY,
            folder=tmp_path_factory.mktemp("cards-7pay"),
        ),
        defences.HARDENED: run_card_testing(
            Scenario(accounts=300, attempts=budget, sign_in_workers=2, max_seconds=25),
            defences.HARDENED,
            folder=tmp_path_factory.mktemp("cards-hardened"),
        ),
    }


def test_card_testing_links_and_charges_cards_with_7pays_defences(card_runs: dict[str, Any]) -> None:
    run = card_runs[defences.SEVEN_PAY]
    assert run["card_code_attempts"] <= 2_000  # the budget, no more
    assert run["cards_linked"] > 0 and run["yen_lost"] > 0
    assert run["yen_lost"] == run["yen_charged_seen_by_attacker"]  # the ledger's count is the thief's
    assert run["cards_blocked"] == 0 and run["detected_at_s"] is None
    assert run["legit_cards"] == {"linked_and_topped_up": 200}


def test_card_testing_gets_nowhere_against_possim(card_runs: dict[str, Any]) -> None:
    run = card_runs[defences.HARDENED]
    assert 0 < run["card_code_attempts"] <= 2_000
    assert run["cards_linked"] == 0 and run["yen_lost"] == 0 and run["topups_credited"] == 0
    assert run["cards_blocked"] > 0 and run["detected_at_s"] is not None
    outcomes = run["link_outcomes"]
    assert outcomes.get("rate_limited", 0) + outcomes.get("risk_declined", 0) > 0
    assert run["legit_cards"] == {"linked_and_topped_up": 200}  # every customer's own card still links
    assert run["legit_payments"] > 0 and "risk_declined" not in run["legit_outcomes"]
