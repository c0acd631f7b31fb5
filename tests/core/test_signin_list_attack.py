"""7pay's own attack, spread over many addresses: every address tries a few accounts and moves on, so the
per-address throttle never fires. The risk engine sees it over the whole service within a minute, tells
the operator, and slows sign-ins from places new to each account, while owners at their usual places
sign in as ever. Real cores on both stores; the clock is moved, never slept on."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import select, update

from payment_core import accounts, devices
from payment_core.core import Core
from payment_core.models import Account, AuditEvent, RiskAlert
from payment_core.risk import Verdict
from payment_core.risk.signin_attack import place_of
from protocol import ManualClock
from tests.signins import from_address, try_new_phone
from tests.support import PASSWORD, fresh_otp, mailbox

pytestmark = pytest.mark.cheap_hashing  # many sign-ups and sign-ins: argon2id at its cheapest

OWNERS = 6


def owner_place(number: int) -> str:
    return f"127.200.{number}.10"


def open_accounts(core: Core, clock: ManualClock) -> list[Account]:
    """Owners with verified addresses, each with a phone enrolled from home (``owner_place``)."""
    made = []
    for number in range(OWNERS):
        account = accounts.create_account(core, f"owner{number}@example.jp", PASSWORD, actor="test")
        with core.transaction() as session:
            session.execute(update(Account).where(Account.id == account.id).values(email_verified_at=clock()))
        with from_address(owner_place(number)):
            devices.enroll_device(core, account.email, PASSWORD, fresh_otp(core, clock, account.id), "home phone")
        made.append(account)
    return made


def attempt(core: Core, address: str, email: str, password: str, factor: str | None = "000000") -> str:
    return try_new_phone(core, address, email, password, factor)


def leaked_list(owners: list[Account], size: int) -> list[tuple[str, str]]:
    """A list attack's list: mostly addresses with no account; the owners with wrong passwords, and two of
    them with their real password (re-used elsewhere and leaked)."""
    entries = [(f"leaked{n}@example.com", f"hunter{n}") for n in range(size)]
    for number, owner in enumerate(owners):
        entries[number * 5] = (owner.email, PASSWORD if number < 3 else "wrong password 1")
    return entries


def attacker_address(n: int) -> str:
    return f"127.{10 + n // 200}.{n % 200}.7"  # every try from a range of its own


def alerts(core: Core) -> list[RiskAlert]:
    with core.transaction() as session:
        return list(session.scalars(select(RiskAlert)).all())


def test_a_list_attack_over_many_addresses_is_seen_within_a_minute_and_slowed(core: Core, clock: ManualClock) -> None:
    owners = open_accounts(core, clock)
    clock.advance(3600)
    rule = core.config.risk.signin_list_attack
    started = clock()
    outcomes = []
    for n, (email, password) in enumerate(leaked_list(owners, 120)):
        outcomes.append(attempt(core, attacker_address(n), email, password))
        clock.advance(1)
    (alert,) = alerts(core)
    assert (alert.opened_at - started).total_seconds() < 60, "seen within a minute"
    signals = json.loads(alert.signals)
    assert signals["failures"] >= rule.min_failures and signals["ranges"] >= rule.ranges
    assert signals["right_password_accounts"] >= 1
    assert "enrolled" not in outcomes  # TOTP held even for the right passwords
    before_alert = int((alert.opened_at - started).total_seconds()) + 1
    checked_after = outcomes[before_alert:].count("refused")
    held = outcomes[before_alert:].count("held")
    assert held > 0.6 * len(outcomes[before_alert:])  # most of the rest never reached a password check
    assert checked_after <= rule.unfamiliar_failures_per_minute * 2 + 1  # a minute and a bit at the shared pace
    with core.transaction() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "signin.list_attack")).one()
    assert event.actor == "risk" and event.target == "service" and event.result == "alerted"
    (mail,) = mailbox(core, core.config.operator_email)
    assert "saw a sign-in list attack" in mail and "failed sign-ins" in mail
    assert any("Your password is known to someone else" in m for m in mailbox(core, owners[0].email))
    # meanwhile an owner at their usual place signs in on a new phone as ever
    with from_address(owner_place(4).replace(".10", ".99")):  # same /24 as home
        enrolled = devices.enroll_device(core, owners[4].email, PASSWORD, fresh_otp(core, clock, owners[4].id), "new")
    assert enrolled.device.account_id == owners[4].id


def test_an_ordinary_hour_of_typos_raises_no_alert(core: Core, clock: ManualClock) -> None:
    owners = open_accounts(core, clock)
    for _ in range(5):
        for number, owner in enumerate(owners):
            assert attempt(core, owner_place(number), owner.email, "a typo in it") == "refused"
            clock.advance(60)
    assert alerts(core) == []


def test_with_decline_every_new_place_waits_and_the_alert_ends_on_its_own(core: Core, clock: ManualClock) -> None:
    rule = replace(core.config.risk.signin_list_attack, action=Verdict.DECLINE)
    core.config = replace(core.config, risk=replace(core.config.risk, signin_list_attack=rule))
    owners = open_accounts(core, clock)
    entries = leaked_list(owners, rule.min_failures + 5)
    for n, (email, password) in enumerate(entries):
        attempt(core, attacker_address(n), email, password)
        clock.advance(1)
    assert len(alerts(core)) == 1
    assert attempt(core, "127.99.1.1", "someone@example.com", "x") == "held"
    clock.advance(rule.alert_minutes * 60 + 1)
    assert attempt(core, "127.99.1.1", "someone@example.com", "x") == "refused"  # checked again


def test_places_are_ranges() -> None:
    assert place_of("127.10.3.7") == "127.10.3.0/24"
    assert place_of("2001:db8:1:2::/64") == "2001:db8:1::/48"
    assert place_of("unknown") == "unknown"


def test_alerts_are_dated(core: Core, clock: ManualClock) -> None:
    """An alert's times are the core's clock, stored in UTC."""
    owners = open_accounts(core, clock)
    for n, (email, password) in enumerate(leaked_list(owners, 40)):
        attempt(core, attacker_address(n), email, password)
    (alert,) = alerts(core)
    assert isinstance(alert.opened_at, datetime) and alert.opened_at == clock()
