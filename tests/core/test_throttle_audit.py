"""Every try the throttle holds back before the password has its audit line (``signin.attempt``), so the
incident report, which counts only the audit, sees them: sign-ins held while a service-wide list-attack
alert is up (``throttled``), tries from an address the throttle blocked for a list attack and from an
operator's blocked range or country (``blocked``). Real cores on both stores; the clock is moved."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from payment_core import accounts, devices, incident
from payment_core.core import Core
from payment_core.incident_report import build_report
from payment_core.models import Account, AddressBlock, AuditEvent
from possim.world import new_core
from protocol import ManualClock
from tests.conftest import Database
from tests.signins import CHEAP_HASHING, from_address, try_new_phone
from tests.support import PASSWORD, fresh_otp


@pytest.fixture
def guarded(database: Database, clock: ManualClock) -> Iterator[Core]:
    core = new_core(database.url, db_schema=database.schema, clock=clock, passwords=CHEAP_HASHING)
    yield core
    core.close()


def attempt(core: Core, address: str, email: str, password: str = "hunter2") -> str:
    return try_new_phone(core, address, email, password)


def held_events(core: Core) -> list[AuditEvent]:
    with core.read() as session:
        query = select(AuditEvent).where(AuditEvent.action == "signin.attempt").order_by(AuditEvent.id)
        return list(session.scalars(query))


def owner(core: Core, clock: ManualClock) -> Account:
    account = accounts.create_account(core, "owner@example.jp", PASSWORD, actor="test")
    with core.transaction() as session:
        session.execute(update(Account).where(Account.id == account.id).values(email_verified_at=clock()))
    with from_address("127.200.0.10"):
        devices.enroll_device(core, account.email, PASSWORD, fresh_otp(core, clock, account.id), "home phone")
    return account


def test_sign_ins_held_during_a_list_attack_alert_are_audited_and_reported(guarded: Core, clock: ManualClock) -> None:
    core = guarded
    started = clock()
    outcomes = [attempt(core, f"127.{10 + n // 200}.{n % 200}.7", f"leaked{n}@example.com") for n in range(80)]
    assert "held" in outcomes
    held = [event for event in held_events(core) if json.loads(event.detail).get("by") == "signin.list_attack"]
    assert len(held) == outcomes.count("held") > 0
    assert all(event.result == "throttled" and event.target.startswith("address:127.") for event in held)
    with core.read() as session:
        report = build_report(session, started - timedelta(minutes=1), clock() + timedelta(minutes=1))
    assert report["signins"]["held_before_password"] == outcomes.count("held")


def test_tries_from_an_address_blocked_for_a_list_attack_are_audited(guarded: Core, clock: ManualClock) -> None:
    core = guarded
    tried = core.config.throttling.list_attack_accounts
    outcomes = []
    for n in range(tried + 5):
        outcomes.append(attempt(core, "127.50.0.7", f"list{n}@example.com"))
        clock.advance(1)
    with core.read() as session:
        block = session.get_one(AddressBlock, "127.50.0.7")
        refused_by_block = block.refused
    assert refused_by_block > 0
    blocked = [event for event in held_events(core) if event.result == "blocked"]
    assert len(blocked) == refused_by_block
    assert {event.target for event in blocked} == {"address:127.50.0.7"}
    assert {json.loads(event.detail)["by"] for event in blocked} == {"list_attack"}
    # an address nobody blocked tries as ever, unaudited until it fails
    assert attempt(core, "127.51.0.7", "someone@example.com") == "refused"
    assert len([event for event in held_events(core) if event.result == "blocked"]) == refused_by_block


def test_tries_from_an_operators_blocked_country_and_range_are_audited(guarded: Core, clock: ManualClock) -> None:
    core = guarded
    account = owner(core, clock)
    assert incident.block(core, incident.block_spec("country", "US"), "admin:test", "takeovers from abroad")
    assert incident.block(core, incident.block_spec("cidr", "127.90.0.0/16"), "admin:test")
    assert attempt(core, "127.130.1.1", account.email, PASSWORD) == "held"  # US
    assert attempt(core, "127.90.3.4", account.email, PASSWORD) == "held"  # the blocked range
    blocked = [event for event in held_events(core) if event.result == "blocked"]
    assert [(event.target, json.loads(event.detail)["by"]) for event in blocked] == [
        ("address:127.130.1.1", "country"),
        ("address:127.90.3.4", "cidr"),
    ]
    # the owner at home is not held, and nothing more is written for them
    assert attempt(core, "127.200.0.10", account.email, "a typo") == "refused"
    assert len(held_events(core)) == 2
