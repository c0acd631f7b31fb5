"""``possim.world`` builds a world that works through the real paths: the customer it enrolls signs in and
enrolls another phone with the authenticator key it kept, the wallet holds what it was funded with, its
register pays with the phone's code, and all of it on the clock it was given."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from payment_core.config import Limits, SessionPolicy
from payment_core.ledger import audit_books
from possim.world import (
    DEMO_LIMITS,
    DEMO_RISK,
    Customer,
    FundingFailed,
    World,
    add_terminal,
    demo_customer,
    enroll_customer,
    fund,
    new_core,
    open_world,
    serve,
)
from protocol import ErrorCode, ManualClock, PaymentStatus, TopupStatus, parse_code
from tests.support import PASSWORD, PHONE, mailbox
from wallet_app.client import WalletClient

FIXED = datetime(2026, 11, 22, 3, 15, tzinfo=UTC)  # not now: every part must run on the world's clock
FUNDS = 25_000
HANAKO = Customer("hanako@example.jp", PASSWORD, PHONE, "Hanako")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(FIXED)


@pytest.fixture
def world(tmp_path: Path, clock: ManualClock) -> Iterator[World]:
    with open_world(
        tmp_path,
        HANAKO,
        store="Shibuya 1-chome",
        device_name="Hanako's phone",
        wallet_name="Hanako's wallet",
        funds=FUNDS,
        limits=Limits(new_device_hours=0),
        clock=clock,
        actor="test",
    ) as built:
        yield built


def test_the_customer_signs_in_on_the_enrolled_phone(world: World, clock: ManualClock) -> None:
    phone = world.customer.wallet
    assert (phone.email, phone.wallet_name, phone.core_url) == (HANAKO.email, "Hanako's wallet", world.url)
    with WalletClient(world.url, clock=clock) as client:
        signed_in = client.sign_in(phone, HANAKO.password)
        access, _ = client.refresh(signed_in)
        security = client.account_security(access)
        view = client.wallet(signed_in)
    assert signed_in.refresh_token and signed_in.refresh_token != phone.refresh_token
    assert (security["account_id"], security["sessions"]) == (phone.account_id, 2)  # enrolled, then signed in
    assert (view["email"], view["display_name"], view["account_id"]) == (HANAKO.email, "Hanako", phone.account_id)
    assert any("verification code" in body for body in mailbox(world.core, HANAKO.email))


def test_the_wallet_holds_what_it_was_funded_with(world: World, clock: ManualClock) -> None:
    with WalletClient(world.url, clock=clock) as client:
        assert client.balance(world.customer.wallet) == FUNDS
        (topup,) = client.history(world.customer.wallet)
    assert (topup["kind"], topup["amount"], topup["status"], topup["source"]) == ("topup", FUNDS, "succeeded", "cash")


def test_the_register_pays_with_the_phone_code(world: World, clock: ManualClock) -> None:
    code = world.minter.mint()
    assert parse_code(code.numeric).device_id == world.customer.wallet.device_id
    with world.register() as register:
        paid = register.pay("order-1", 1_280, code.numeric)
        again = register.pay("order-2", 100, code.numeric)
    assert (paid.status, paid.amount, paid.balance_after) == (PaymentStatus.SUCCEEDED, 1_280, FUNDS - 1_280)
    assert again.decline_code == ErrorCode.CODE_ALREADY_USED  # the world's minter is the phone: one code, one use
    with WalletClient(world.url, clock=clock) as client:
        assert client.balance(world.customer.wallet) == FUNDS - 1_280
        payment = client.history(world.customer.wallet)[0]
    assert (payment["kind"], payment["store"], payment["order_id"]) == ("payment", "Shibuya 1-chome", "order-1")
    with world.core.transaction() as session:
        assert audit_books(session).balanced


def test_everything_runs_on_the_clock_it_was_given(world: World, clock: ManualClock) -> None:
    assert world.core.now() == FIXED
    code = world.minter.mint()
    assert code.minted_at == int(FIXED.timestamp())
    with world.register() as register:
        assert register.pay("order-1", 500, code.numeric).status == PaymentStatus.SUCCEEDED
    with WalletClient(world.url, clock=clock) as client:
        created = [datetime.fromisoformat(item["created"]) for item in client.history(world.customer.wallet)]
    assert [moment.replace(tzinfo=UTC) for moment in created] == [FIXED, FIXED]


def test_the_kept_authenticator_key_and_recovery_codes_enroll_more_phones(world: World, clock: ManualClock) -> None:
    enrolled = world.customer
    assert len(enrolled.verified.recovery_codes) == SessionPolicy().recovery_codes
    clock.advance(30)  # the authenticator's code of a step is taken once
    with WalletClient(world.url, clock=clock) as client:
        tablet = client.enroll(HANAKO.email, HANAKO.password, enrolled.verified.totp(clock), "tablet")
        spare = client.enroll(HANAKO.email, HANAKO.password, enrolled.verified.recovery_codes[0], "spare")
        devices = {device["id"] for device in client.devices(tablet)}
    assert tablet.account_id == spare.account_id == enrolled.wallet.account_id
    assert devices == {enrolled.wallet.device_id, tablet.device_id, spare.device_id}


def test_the_steps_compose_without_open_world(tmp_path: Path, clock: ManualClock) -> None:
    core = new_core(tmp_path / "core.db", clock=clock, limits=DEMO_LIMITS, risk=DEMO_RISK)  # funds in quick top-ups
    try:
        first = add_terminal(core, "Shinjuku 3-chome", "register-1", "test")
        second = add_terminal(core, "Shinjuku 3-chome", "register-2", "test")
        with serve(core) as server:
            enrolled = enroll_customer(core, server.url, demo_customer(), device_name="demo phone")
            minter = enrolled.minter(clock)
            with first.client(server.url, clock=clock) as register:
                # Over the core's per-top-up cap: split into the top-ups it allows.
                topups = fund(register, minter, 250_000, per_topup=core.config.limits.topup_max_yen)
            with second.client(server.url, clock=clock) as register:
                paid = register.pay("order-1", 3_000, minter.mint().numeric)
            with WalletClient(server.url, clock=clock) as client:
                balance = client.balance(enrolled.wallet)
    finally:
        core.close()
    assert [topup.amount for topup in topups] == [100_000, 100_000, 50_000]
    assert all(topup.status == TopupStatus.SUCCEEDED for topup in topups)
    assert first.id != second.id
    assert paid.status == PaymentStatus.SUCCEEDED
    assert balance == 250_000 - 3_000


def test_funding_a_new_phone_past_its_limit_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    """The default limits hold: a phone enrolled a moment ago tops up at most ¥10,000 at a time."""
    with open_world(tmp_path, HANAKO, store="Store", device_name="phone", clock=clock) as built:
        with built.register() as register, pytest.raises(FundingFailed) as refused:
            fund(register, built.minter, 20_000)
        with WalletClient(built.url, clock=clock) as client:
            assert client.balance(built.customer.wallet) == 0
    assert (refused.value.outcome.status, refused.value.outcome.decline_code) == (
        TopupStatus.DECLINED,
        ErrorCode.LIMIT_EXCEEDED,
    )
    assert "limit_exceeded" in str(refused.value)
