"""One attack replay: a fresh core seeded with the scenario's customers (``seeding``), served by
``possim core serve --defenses NAME`` as a subprocess on 127.0.0.1; the attacker's sign-in workers and
cash-out workers, the shoppers and (with ``operator``) the operator, all on threads, all bounded by the
scenario's deadline; then the figures, counted from the database after the server stopped (``outcome``).
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from possim.attack import card_testing, outcome
from possim.attack.attacker import Attacker
from possim.attack.defences import profile
from possim.attack.operator import Operator
from possim.attack.reset_door import ResetDoor
from possim.attack.scenario import Scenario, build_world
from possim.attack.seeding import Seeded, add_mules, seed
from possim.attack.shoppers import Shoppers
from possim.bench.served import cpu_seconds, served

CASH_OUT_WORKERS = 2
JOIN_GRACE_SECONDS = 60.0

Progress = Callable[[int, int], None]  # (attempts so far, attempts in all)


def run_attack(
    scenario: Scenario,
    defences: str,
    *,
    operator: bool = False,
    folder: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the scenario against a core with ``defences`` (``7pay`` or ``hardened``); the figures."""
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="possim-attack-") as scratch:
            return run_attack(scenario, defences, operator=operator, folder=Path(scratch), progress=progress)
    chosen = profile(defences)
    world = build_world(scenario)
    setup_started = time.monotonic()
    seeded = seed(world, chosen, folder)
    command = _core_command(seeded, defences, scenario)
    with served(command, folder / "core.log") as (url, pid):
        server_cpu_before, client_cpu_before = _tree_cpu(pid), time.process_time()
        setup_s = time.monotonic() - setup_started
        since = datetime.now(UTC) - timedelta(seconds=1)
        started = time.monotonic()
        deadline = started + scenario.max_seconds
        attacker = Attacker(
            url,
            world,
            seeded.colluding_registers,
            chosen.limits.topup_max_yen,
            chosen.limits.topup_daily_count,
            deadline,
        )
        attacker.tally.started = started
        door = ResetDoor(
            url,
            seeded.db,
            [entry.email for entry in world.leaked],
            frozenset(n for n, entry in enumerate(world.leaked) if entry.customer is not None),
            world.attacker_addresses,
            attacker.stolen,
            deadline,
            scenario.reset_asks_per_second,
        )
        attacker.wrong_password = door.wrong_password
        shoppers = Shoppers(url, seeded.shoppers, seeded.legit_registers, scenario.seed)
        watcher = Operator(url, seeded.admin_token, world.attacker_addresses, started) if operator else None
        signing = [_thread(attacker.sign_in_worker, n) for n in range(scenario.sign_in_workers)]
        cashing = [_thread(attacker.cash_out_worker, n) for n in range(CASH_OUT_WORKERS)]
        resetting = [_thread(door.ask_worker), _thread(door.mailbox_worker)]
        shopping = _thread(shoppers.run, deadline)
        operating = _thread(watcher.run, deadline) if watcher is not None else None
        while any(t.is_alive() for t in signing) and time.monotonic() < deadline + JOIN_GRACE_SECONDS:
            if progress is not None:
                progress(attacker.tally.attempts, len(world.leaked))
            signing[0].join(timeout=0.5)
        door.finish()
        for thread in resetting:
            thread.join(timeout=max(1.0, deadline + JOIN_GRACE_SECONDS - time.monotonic()))
        for _ in cashing:
            attacker.stolen.put(None)
        for thread in cashing:
            thread.join(timeout=max(1.0, deadline + JOIN_GRACE_SECONDS - time.monotonic()))
        shoppers.stop.set()
        shopping.join(timeout=JOIN_GRACE_SECONDS)
        if watcher is not None and operating is not None:
            watcher.stop.set()
            operating.join(timeout=JOIN_GRACE_SECONDS)
        duration = time.monotonic() - started
        until = datetime.now(UTC) + timedelta(seconds=1)
        server_cpu = _tree_cpu(pid) - server_cpu_before
        client_cpu = time.process_time() - client_cpu_before
        if progress is not None:
            progress(attacker.tally.attempts, len(world.leaked))
    devices = [state.device_id for state in [*attacker.tally.takeovers, *door.takeovers]]
    counted = outcome.count(seeded.db, devices, since, until)
    tally, shopped = attacker.tally, shoppers.tally
    legit_total = shopped.approved + shopped.declined
    result: dict[str, Any] = {
        "scenario": "credential-stuffing",
        "defenses": defences,
        "seed": scenario.seed,
        "accounts": scenario.accounts,
        "attempts_planned": len(world.leaked),
        "list_hits": world.hits,
        "list_stale": world.stale,
        "login_attempts": tally.attempts,
        "sign_in_outcomes": dict(sorted(tally.sign_ins.items())),
        "reset_door": dict(sorted(door.outcomes.items())),
        "reset_codes_mailed_elsewhere": counted["reset_codes_mailed_elsewhere"],
        "accounts_taken_over": counted["accounts_taken_over"],
        "victims": counted["victims"],
        "yen_lost": counted["yen_lost"],
        "yen_taken_seen_by_attacker": tally.yen_taken,
        "topups_blocked": sum(n for outcome_, n in tally.topups.items() if outcome_ != "succeeded"),
        "topups_credited": tally.topups["succeeded"],
        "payments_declined_by_risk": counted["payments_declined_by_risk"],
        "legit_payments": shopped.approved,
        "legit_payments_declined": shopped.declined,
        "legit_decline_rate": round(shopped.declined / legit_total, 4) if legit_total else 0.0,
        "legit_stepped_up": shopped.stepped_up,
        "legit_outcomes": dict(sorted(shopped.outcomes.items())),
        "detected_at_s": counted["detected_at_s"],
        "contained_at_s": counted["contained_at_s"],
        "duration_s": round(duration, 1),
        "setup_s": round(setup_s, 1),
        "cpu_s": {"core": round(server_cpu, 1), "attack_and_shoppers": round(client_cpu, 1)},
        "cut_short": tally.attempts < len(world.leaked),
        "sign_ins_reaching_a_password": counted["sign_ins_reaching_a_password"],
        "core": list(chosen.notes),
        "timeline": _timeline(tally.attempts_by_second, tally.yen_by_second, duration),
        "report": counted["report"],
    }
    if watcher is not None:
        result["operator"] = {
            "noticed_at_s": watcher.log.noticed_at_s,
            "actions": watcher.log.actions,
            "card_topups_after_pause": counted["card_topups_after_pause"],
        }
    return result


def _core_command(seeded: Seeded, defences: str, scenario: Scenario) -> list[str]:
    """``possim core serve`` on the seeded database with ``defences``, as a user would start it."""
    command = [sys.executable, "-m", "possim", "core", "serve", "--db", f"sqlite:///{seeded.db}"]
    command += ["--key-file", str(seeded.key_file), "--host", "127.0.0.1", "--defenses", defences]
    return [*command, "--workers", str(scenario.core_workers), "--no-access-log"]


def _tree_cpu(pid: int) -> float:
    """CPU seconds of the core and its worker processes (``--workers``), from /proc."""
    total = cpu_seconds(pid) or 0.0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(cpu_seconds(int(child)) or 0.0 for child in children)


def _thread(target: Callable[..., None], *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _timeline(attempts: dict[int, int], yen: dict[int, int], duration: float) -> dict[str, list[int]]:
    """Cumulative sign-in attempts and yen lost at the end of each second (as the attacker saw them)."""
    seconds = int(duration) + 1
    tried, lost, cumulative_tried, cumulative_lost = 0, 0, [], []
    for second in range(seconds):
        tried += attempts.get(second, 0)
        lost += yen.get(second, 0)
        cumulative_tried.append(tried)
        cumulative_lost.append(lost)
    return {"attempts": cumulative_tried, "yen_lost": cumulative_lost}


def run_card_testing(
    scenario: Scenario, defences: str, *, folder: Path | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """PayPay's card testing (``possim.attack.card_testing``) against a core with ``defences``; the figures."""
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="possim-attack-") as scratch:
            return run_card_testing(scenario, defences, folder=Path(scratch), progress=progress)
    chosen = profile(defences)
    world = build_world(scenario)
    setup_started = time.monotonic()
    seeded = seed(world, chosen, folder)
    mules = add_mules(seeded, [f"mule{n}@example.org" for n in range(card_testing.MULES)], "!")
    needs_authenticator = chosen.defences.code_for_owner_topups
    command = _core_command(seeded, defences, scenario)
    with served(command, folder / "core.log") as (url, _pid):
        setup_s = time.monotonic() - setup_started
        since = datetime.now(UTC) - timedelta(seconds=1)
        started = time.monotonic()
        deadline = started + scenario.max_seconds
        own_cards = card_testing.link_own_cards(url, seeded.shoppers, world.shoppers, needs_authenticator)
        limits = chosen.limits
        tester = card_testing.CardTester(
            url,
            scenario,
            mules,
            seeded.colluding_registers,
            (min(limits.topup_max_yen, limits.new_device_topup_max_yen), limits.topup_daily_count),
            needs_authenticator,
            deadline,
        )
        tester.tally.started = started
        shoppers = Shoppers(url, seeded.shoppers, seeded.legit_registers, scenario.seed)
        testing = [_thread(tester.worker, n) for n in range(scenario.sign_in_workers)]
        shopping = _thread(shoppers.run, deadline)
        while any(t.is_alive() for t in testing) and time.monotonic() < deadline + JOIN_GRACE_SECONDS:
            if progress is not None:
                progress(tester.tally.attempts, scenario.attempts)
            testing[0].join(timeout=0.5)
        for thread in testing:
            thread.join(timeout=max(1.0, deadline + JOIN_GRACE_SECONDS - time.monotonic()))
        shoppers.stop.set()
        shopping.join(timeout=JOIN_GRACE_SECONDS)
        tester.close()
        duration = time.monotonic() - started
        until = datetime.now(UTC) + timedelta(seconds=1)
    counted = outcome.count_card_testing(seeded.db, [m.account_id for m in mules], since, until)
    tally, shopped = tester.tally, shoppers.tally
    legit_total = shopped.approved + shopped.declined
    return {
        "scenario": "card-testing",
        "defenses": defences,
        "seed": scenario.seed,
        "accounts": scenario.accounts,
        "attempts_planned": scenario.attempts,
        **card_testing.summary(tally),
        "thief_gave_up": tester.gave_up,
        "cards_linked": counted["cards_linked"],
        "victims": counted["cards_linked"],
        "yen_lost": counted["yen_lost"],
        "topups_blocked": sum(n for outcome_, n in tally.topups.items() if outcome_ != "succeeded"),
        "topups_credited": tally.topups["succeeded"],
        "payments_declined_by_risk": counted["payments_declined_by_risk"],
        "cards_blocked": counted["cards_blocked"],
        "legit_cards": dict(sorted(own_cards.items())),
        "legit_payments": shopped.approved,
        "legit_payments_declined": shopped.declined,
        "legit_decline_rate": round(shopped.declined / legit_total, 4) if legit_total else 0.0,
        "legit_outcomes": dict(sorted(shopped.outcomes.items())),
        "detected_at_s": counted["detected_at_s"],
        "contained_at_s": counted["contained_at_s"],
        "duration_s": round(duration, 1),
        "setup_s": round(setup_s, 1),
        "core": list(chosen.notes),
        "timeline": _timeline(tally.attempts_by_second, tally.yen_by_second, duration),
    }
