"""A slow list attack from one address range: each address stays under the per-address throttle, the whole
service under the list-attack alert (a try every four minutes), but many accounts fail from one /24 (or
IPv6 /48) within the hour. The range is held before any password work, for strangers only (owners who
use the range sign in as ever), the operator is told, and the hold is listed, lifted and ends on its own.
Real cores on both stores; the clock is moved, never slept on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import select, update

from payment_core import accounts, devices, incident
from payment_core.core import Core
from payment_core.models import Account, AddressBlock, AuditEvent
from payment_core.risk import Verdict
from payment_core.risk.range_burst import KIND, REASON
from payment_core.throttle import Throttled
from possim.world import new_core
from protocol import ManualClock
from tests.conftest import Database
from tests.signins import CHEAP_HASHING, from_address, try_new_phone
from tests.support import PASSWORD, fresh_otp, mailbox

SLOW = 4 * 60  # seconds between tries: far under every per-minute signal
RANGE = "127.40.5.0/24"


@pytest.fixture
def core(database: Database, clock: ManualClock) -> Iterator[Core]:
    made = new_core(database.url, db_schema=database.schema, clock=clock, passwords=CHEAP_HASHING)
    yield made
    made.close()


def owner_at(core: Core, clock: ManualClock, email: str, address: str) -> Account:
    """An account whose phone was enrolled from ``address`` (so its range is the owner's usual place)."""
    account = accounts.create_account(core, email, PASSWORD, actor="test")
    with core.transaction() as session:
        session.execute(update(Account).where(Account.id == account.id).values(email_verified_at=clock()))
    with from_address(address):
        devices.enroll_device(core, account.email, PASSWORD, fresh_otp(core, clock, account.id), "own phone")
    return account


def slow_burst(core: Core, clock: ManualClock, addresses: list[str], accounts_tried: int) -> list[str]:
    """``accounts_tried`` different (unknown) e-mail addresses, each once, from ``addresses`` in turn."""
    outcomes = []
    for n in range(accounts_tried):
        outcomes.append(try_new_phone(core, addresses[n % len(addresses)], f"slow{n}@example.com", "hunter2"))
        clock.advance(SLOW)
    return outcomes


def events(core: Core, action: str) -> list[AuditEvent]:
    with core.read() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def held_by_range(core: Core) -> list[AuditEvent]:
    return [e for e in events(core, "signin.attempt") if json.loads(e.detail).get("by") == REASON]


def test_a_slow_burst_from_one_range_is_held_for_strangers_and_the_operator_is_told(
    core: Core, clock: ManualClock
) -> None:
    owner = owner_at(core, clock, "owner@example.jp", "127.40.5.200")  # the owner's home is in that range
    clock.advance(3600)
    accounts_needed = core.config.risk.signin_range_burst.accounts
    outcomes = slow_burst(core, clock, [f"127.40.5.{n}" for n in range(1, 7)], accounts_needed)
    assert outcomes == ["refused"] * accounts_needed  # every try reached the password: nothing fast to see
    assert events(core, "signin.list_attack") == []  # neither the address throttle nor the alert fired
    [raised] = events(core, KIND)
    detail = json.loads(raised.detail)
    assert raised.target == f"range:{RANGE}" and raised.result == "blocked"
    assert detail["accounts_failed"] == accounts_needed and detail["addresses"] == 6
    assert any(RANGE in body for body in mailbox(core, core.config.operator_email))
    # a new address in the range, naming a new account: held before any password work, in customer words
    with from_address("127.40.5.77"), pytest.raises(Throttled) as refused:
        devices.enroll_device(core, "slow99@example.com", "hunter2", "000000", "attacker")
    assert "paused" in refused.value.message and refused.value.retry_after > 60
    [held] = held_by_range(core)
    assert held.result == "blocked" and held.target == "address:127.40.5.77"
    # the owner, whose usual place this range is, signs in as ever (a new phone from a new address in it)
    assert try_new_phone(core, "127.40.5.201", owner.email, PASSWORD, fresh_otp(core, clock, owner.id)) == "enrolled"
    # the hold is listed with the throttle's blocks
    [listed] = [b for b in incident.list_address_blocks(core) if b["reason"] == REASON]
    assert listed["address"] == RANGE and listed["accounts_tried"] == accounts_needed and listed["refused"] == 1


def test_the_same_tries_spread_over_many_ranges_or_from_one_address_hold_no_range(
    core: Core, clock: ManualClock
) -> None:
    accounts_needed = core.config.risk.signin_range_burst.accounts
    spread = slow_burst(core, clock, [f"127.41.{n}.9" for n in range(accounts_needed)], accounts_needed)
    alone = slow_burst(core, clock, ["127.42.0.9"], accounts_needed)  # one address: the throttle's to judge
    assert "held" not in spread and events(core, KIND) == []
    assert alone.count("refused") >= 5 and events(core, KIND) == []
    with core.read() as session:
        assert session.scalars(select(AddressBlock).where(AddressBlock.reason == REASON)).all() == []


def test_a_lift_lets_the_range_try_again_and_it_is_measured_afresh(core: Core, clock: ManualClock) -> None:
    accounts_needed = core.config.risk.signin_range_burst.accounts
    slow_burst(core, clock, ["127.40.5.1", "127.40.5.2"], accounts_needed)
    assert try_new_phone(core, "127.40.5.3", "late@example.com", "hunter2") == "held"
    assert incident.lift_address_block(core, "127.40.5.9/24", "admin:test")  # any form of the range
    [lifted] = events(core, "incident.address_unblock")
    assert lifted.target == f"address:{RANGE}" and json.loads(lifted.detail)["found"] is True
    # the failures that raised the hold do not raise it again: the next tries reach the password
    assert slow_burst(core, clock, ["127.40.5.4", "127.40.5.5"], accounts_needed - 1) == ["refused"] * (
        accounts_needed - 1
    )
    assert len(events(core, KIND)) == 1
    assert try_new_phone(core, "127.40.5.6", "one-more@example.com", "hunter2") == "refused"  # the 12th: held next
    assert len(events(core, KIND)) == 2
    assert not incident.lift_address_block(core, "127.99.0.0/24", "admin:test")  # nothing there


def test_a_hold_ends_on_its_own(core: Core, clock: ManualClock) -> None:
    rule = core.config.risk.signin_range_burst
    slow_burst(core, clock, ["127.40.5.1", "127.40.5.2"], rule.accounts)
    assert try_new_phone(core, "127.40.5.3", "late@example.com", "hunter2") == "held"
    clock.advance(rule.hold_minutes * 60 + 1)
    assert try_new_phone(core, "127.40.5.3", "later@example.com", "hunter2") == "refused"


def test_with_decline_owners_in_the_range_wait_too_and_allow_holds_nothing(core: Core, clock: ManualClock) -> None:
    owner = owner_at(core, clock, "owner@example.jp", "127.40.5.200")
    rule = core.config.risk.signin_range_burst
    core.config = replace(
        core.config, risk=replace(core.config.risk, signin_range_burst=replace(rule, action=Verdict.DECLINE))
    )
    slow_burst(core, clock, ["127.40.5.1", "127.40.5.2"], rule.accounts)
    assert try_new_phone(core, "127.40.5.201", owner.email, PASSWORD, fresh_otp(core, clock, owner.id)) == "held"
    core.config = replace(
        core.config, risk=replace(core.config.risk, signin_range_burst=replace(rule, action=Verdict.ALLOW))
    )
    assert try_new_phone(core, "127.40.5.201", owner.email, PASSWORD, fresh_otp(core, clock, owner.id)) == "enrolled"


def test_ipv6_addresses_in_one_48_are_one_range(core: Core, clock: ManualClock) -> None:
    accounts_needed = core.config.risk.signin_range_burst.accounts
    addresses = [f"2001:db8:40:{n}::7" for n in range(1, 5)]  # four /64s (four throttle keys) in one /48
    assert "held" not in slow_burst(core, clock, addresses, accounts_needed)
    assert try_new_phone(core, "2001:db8:40:99::1", "late@example.com", "hunter2") == "held"
    [raised] = events(core, KIND)
    assert raised.target == "range:2001:db8:40::/48"
