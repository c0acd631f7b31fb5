"""Issue 13, incident controls: every lever 7pay pulled over a month, pulled at once through the admin API.

Each kill switch takes effect on the very next request (in another process too: the switch is a row,
read each time), is audited with its operator, and lifting it restores service. Blocked ranges and
countries are refused before any password work; the throttle's own blocks can be listed and lifted;
a forced reset ends sessions, voids the old password and mails a reset code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from payment_core import admin_keys
from payment_core.core import Core
from payment_core.models import Account, AddressBlock, AuditEvent, AuthSession, Device, SigninAttempt
from payment_core.server import ServerThread
from possim.world import new_core, serve
from protocol import ManualClock, ProtocolError
from tests.conftest import Database
from tests.support import PASSWORD, PHONE, SignedCaller, balance, error_code, fresh_otp, mailbox, mailed_reset_token
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

CARD, BANK = "4242424242424242", "0001234"
NEW_PASSWORD = "a brand new passphrase for hanako"


def operator_client(core: Core, base_url: str, name: str = "ops") -> httpx.Client:
    token = admin_keys.create_key(core, name, admin_keys.OPERATOR, "admin:test").token
    return httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def ops(core: Core, server: ServerThread) -> Iterator[httpx.Client]:
    with operator_client(core, server.url) as client:
        yield client


@pytest.fixture
def phone(wallet: WalletState, clock: ManualClock) -> Iterator[WalletClient]:
    with WalletClient(wallet.core_url, clock=clock) as client:
        yield client


def from_address(base_url: str, address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any 127.x.y.z is this machine's loopback)."""
    return httpx.Client(base_url=base_url, timeout=30, transport=httpx.HTTPTransport(local_address=address))


def events(core: Core, action: str) -> list[AuditEvent]:
    with core.read() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def cash(terminal: SignedCaller, topup_id: str, code: str, amount: int = 1000) -> httpx.Response:
    return terminal.call("POST", "/v1/topups/cash", {"topup_id": topup_id, "amount": amount, "code": code})


def paused_answer(response: httpx.Response, words: str) -> None:
    assert (response.status_code, error_code(response)) == (503, "service_paused")
    assert words in response.json()["error"]["message"]
    assert "Your balance is safe" in response.json()["error"]["message"] or "sign-ups" in words
    assert int(response.headers["Retry-After"]) > 0


def test_pausing_cash_top_ups_refuses_the_next_one_and_resuming_restores_them(
    core: Core, ops: httpx.Client, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState
) -> None:
    paused = ops.post("/v1/admin/switches/topup-cash/pause", json={"reason": "codes seen abroad"})
    assert paused.status_code == 200 and paused.json()["paused"] == ["topup-cash"]
    code = minter.mint().numeric
    refused = cash(terminal, "cash-1", code)
    paused_answer(refused, "Top-ups are paused for a while for your security.")
    assert balance(core, wallet) == 0
    (event,) = events(core, "incident.pause")
    assert (event.actor, event.target, json.loads(event.detail)["reason"]) == (
        "admin:ops",
        "switch:topup-cash",
        "codes seen abroad",
    )
    listed = {row["name"]: row for row in ops.get("/v1/admin/switches").json()["data"]}
    assert listed["topup-cash"]["paused"] and listed["topup-cash"]["by"] == "admin:ops"
    assert not listed["topup-card"]["paused"]

    assert ops.post("/v1/admin/switches/topup-cash/resume").json()["resumed"] == ["topup-cash"]
    assert cash(terminal, "cash-1", code).status_code == 200  # the same code: the refusal did not use it up
    assert balance(core, wallet) == 1000
    (lifted,) = events(core, "incident.resume")
    assert (lifted.actor, lifted.target) == ("admin:ops", "switch:topup-cash")


def test_pausing_all_top_ups_stops_card_and_bank_without_spending_the_code(
    core: Core, ops: httpx.Client, phone: WalletClient, wallet: WalletState, clock: ManualClock
) -> None:
    assert ops.post("/v1/admin/switches/topups/pause").json()["paused"] == ["topup-cash", "topup-card", "topup-bank"]
    otp = fresh_otp(core, clock, wallet.account_id)
    for method, detail in (("card", CARD), ("bank", BANK)):
        with pytest.raises(ProtocolError) as refused:
            getattr(phone, f"topup_{method}")(wallet, 1000, detail, otp)
        assert (refused.value.status, refused.value.code) == (503, "service_paused")
        assert "Top-ups are paused" in refused.value.message
    assert {event.actor for event in events(core, "incident.pause")} == {"admin:ops"}
    assert len(events(core, "incident.pause")) == 3

    assert ops.post("/v1/admin/switches/topups/resume").status_code == 200
    assert phone.topup_card(wallet, 1000, CARD, otp)["status"] == "succeeded"  # the TOTP code was not burned
    assert balance(core, wallet) == 1000
    assert len(events(core, "incident.resume")) == 3


def test_pausing_sign_ups_refuses_the_next_one_and_resuming_restores_them(
    core: Core, ops: httpx.Client, server: ServerThread
) -> None:
    body = {"email": "jiro@example.jp", "phone": PHONE, "password": PASSWORD}
    assert ops.post("/v1/admin/switches/signups/pause").status_code == 200
    with httpx.Client(base_url=server.url, timeout=30) as anyone:
        refused = anyone.post("/v1/accounts", json=body)
        paused_answer(refused, "New sign-ups are paused")
        core.drain()
        assert mailbox(core, "jiro@example.jp") == []
        assert ops.post("/v1/admin/switches/signups/resume").status_code == 200
        assert anyone.post("/v1/accounts", json=body).status_code == 202
    core.drain()
    assert len(mailbox(core, "jiro@example.jp")) == 1
    assert [event.actor for event in events(core, "incident.resume")] == ["admin:ops"]


def test_pausing_enrollment_refuses_new_phones_before_any_password_work_and_keeps_old_ones(
    core: Core, ops: httpx.Client, phone: WalletClient, wallet: WalletState, clock: ManualClock
) -> None:
    tried = select(func.count()).select_from(SigninAttempt)
    with core.read() as session:
        before = session.scalar(tried)
    assert ops.post("/v1/admin/switches/enrollment/pause").status_code == 200
    otp = fresh_otp(core, clock, wallet.account_id)
    with pytest.raises(ProtocolError) as refused:
        phone.enroll(wallet.email, PASSWORD, otp, "thief's phone")
    assert (refused.value.status, refused.value.code) == (503, "service_paused")
    assert "Phones already signed in keep working" in refused.value.message
    with core.read() as session:
        assert session.scalar(tried) == before  # refused before the password was looked at
    assert phone.wallet(wallet)["balance"] == 0  # the enrolled phone goes on as ever
    assert ops.post("/v1/admin/switches/enrollment/resume").status_code == 200
    assert phone.enroll(wallet.email, PASSWORD, otp, "second phone").device_id != wallet.device_id
    assert [event.actor for event in events(core, "incident.pause")] == ["admin:ops"]


def test_a_switch_pulled_in_one_process_holds_in_another_on_its_next_request(
    database: Database, clock: ManualClock
) -> None:
    """Two cores on one database stand for two workers of ``possim core serve --workers 2``."""
    first = new_core(database.url, db_schema=database.schema, clock=clock)
    second = Core(first.config)  # the same database and server key, its own engine and pool
    body = {"email": "saburo@example.jp", "phone": PHONE, "password": PASSWORD}
    try:
        with (
            serve(first) as one,
            serve(second) as other,
            operator_client(first, one.url) as ops,
            httpx.Client(base_url=other.url, timeout=30) as anyone,
        ):
            assert anyone.post("/v1/accounts", json=body).status_code == 202  # seen running once
            assert ops.post("/v1/admin/switches/signups/pause").status_code == 200
            assert anyone.post("/v1/accounts", json=body).status_code == 503
            assert ops.post("/v1/admin/switches/signups/resume").status_code == 200
            assert anyone.post("/v1/accounts", json=body).status_code == 202
    finally:
        first.close()
        second.close()


def _sign_up(client: httpx.Client, email: str) -> httpx.Response:
    return client.post("/v1/accounts", json={"email": email, "phone": PHONE, "password": PASSWORD})


def test_a_blocked_country_is_refused_sign_in_sign_up_and_reset_before_any_password_work(
    core: Core, ops: httpx.Client, server: ServerThread, wallet: WalletState, clock: ManualClock
) -> None:
    """127.144.0.0/12 stands for China in the fixtures' map; 127.0.0.1 is Japan."""
    blocked = ops.post("/v1/admin/blocks/add", json={"kind": "country", "value": "cn", "reason": "7pay day 3"})
    assert blocked.json() == {"kind": "country", "value": "CN", "blocked": True, "new": True}
    otp = fresh_otp(core, clock, wallet.account_id)
    enroll = {"email": wallet.email, "password": PASSWORD, "otp": otp, "device_name": "abroad"}
    with from_address(server.url, "127.144.0.9") as abroad, from_address(server.url, "127.0.0.9") as home:
        answers = [
            abroad.post("/v1/devices", json=enroll),
            _sign_up(abroad, "wang@example.jp"),
            abroad.post("/v1/password-reset", json={"email": wallet.email}),
        ]
        for answer in answers:
            assert (answer.status_code, error_code(answer)) == (429, "rate_limited")
            assert "Signing in from your network is not possible" in answer.json()["error"]["message"]
            assert int(answer.headers["Retry-After"]) > 0
        assert events(core, "signin.new_device")[-1].source != "127.144.0.9"  # the password was never checked
        assert home.post("/v1/password-reset", json={"email": wallet.email}).status_code == 202
        listed = ops.get("/v1/admin/blocks").json()["operator"]
        assert [(row["kind"], row["value"], row["by"]) for row in listed] == [("country", "CN", "admin:ops")]

        lifted = ops.post("/v1/admin/blocks/lift", json={"kind": "country", "value": "CN"})
        assert lifted.json()["lifted"] is True
        assert _sign_up(abroad, "wang@example.jp").status_code == 202
    assert [event.actor for event in events(core, "incident.block")] == ["admin:ops"]
    assert [event.target for event in events(core, "incident.unblock")] == ["country:CN"]


def test_a_blocked_range_is_refused_and_its_neighbours_are_not(
    core: Core, ops: httpx.Client, server: ServerThread
) -> None:
    assert ops.post("/v1/admin/blocks/add", json={"kind": "cidr", "value": "127.193.4.0/24"}).status_code == 200
    with from_address(server.url, "127.193.4.4") as inside, from_address(server.url, "127.193.5.4") as beside:
        assert _sign_up(inside, "a@example.jp").status_code == 429
        assert _sign_up(beside, "b@example.jp").status_code == 202
        assert ops.post("/v1/admin/blocks/lift", json={"kind": "cidr", "value": "127.193.4.0/24"}).status_code == 200
        assert _sign_up(inside, "a@example.jp").status_code == 202


def test_the_throttles_own_blocks_are_listed_and_lifted(
    core: Core, ops: httpx.Client, server: ServerThread, clock: ManualClock
) -> None:
    now = clock()
    with core.transaction() as session:  # as the throttle leaves a list attack's address
        session.add(
            AddressBlock(
                source="127.0.0.7",
                reason="list_attack",
                blocked_at=now,
                blocked_until=now + timedelta(minutes=30),
                accounts_tried=12,
                refused=0,
            )
        )
    with from_address(server.url, "127.0.0.7") as flagged:
        assert flagged.post("/v1/password-reset", json={"email": "x@example.jp"}).status_code == 429
        (row,) = ops.get("/v1/admin/blocks").json()["throttle"]
        assert (row["address"], row["reason"], row["accounts_tried"]) == ("127.0.0.7", "list_attack", 12)
        assert ops.post("/v1/admin/address-blocks/lift", json={"address": "127.0.0.7"}).json()["lifted"] is True
        assert flagged.post("/v1/password-reset", json={"email": "x@example.jp"}).status_code == 202
    assert ops.get("/v1/admin/blocks").json()["throttle"] == []
    (event,) = events(core, "incident.address_unblock")
    assert (event.actor, event.target) == ("admin:ops", "address:127.0.0.7")


def test_a_forced_reset_voids_the_password_ends_sessions_and_mails_a_code(
    core: Core, ops: httpx.Client, phone: WalletClient, wallet: WalletState, clock: ManualClock
) -> None:
    with core.read() as session:
        live = select(func.count()).select_from(AuthSession).where(AuthSession.revoked_at.is_(None))
        assert session.scalar(live) == 1
    forced = ops.post("/v1/admin/password-resets", json={"account_ids": [wallet.account_id]})
    assert forced.json() == {"object": "forced_resets", "accounts": 1, "sessions_ended": 1, "devices_revoked": False}
    with core.read() as session:
        assert session.scalar(live) == 0
    with pytest.raises(ProtocolError) as old:
        phone.sign_in(wallet, PASSWORD)
    assert (old.value.status, old.value.code) == (401, "credentials_invalid")
    (event,) = events(core, "password.reset_forced")
    assert (event.actor, event.target) == ("admin:ops", f"account:{wallet.account_id}")

    token = mailed_reset_token(core, wallet.email)
    assert "Your balance is safe" in mailbox(core, wallet.email)[0]
    phone.reset_password(token, NEW_PASSWORD)
    otp = fresh_otp(core, clock, wallet.account_id)
    assert phone.enroll(wallet.email, NEW_PASSWORD, otp, "hanako again").account_id == wallet.account_id


def test_a_forced_reset_can_revoke_devices_and_names_unknown_accounts(
    core: Core, ops: httpx.Client, wallet: WalletState
) -> None:
    missing = ops.post("/v1/admin/password-resets", json={"account_ids": [wallet.account_id, 999_999]})
    assert (missing.status_code, error_code(missing)) == (404, "resource_missing")
    assert mailbox(core, wallet.email)[0].find("Reset code") == -1  # nothing was done for anyone
    everyone = ops.post("/v1/admin/password-resets", json={"everyone": True, "revoke_devices": True})
    assert everyone.json()["accounts"] == 1
    with core.read() as session:
        device = session.get_one(Device, wallet.device_id)
        account = session.get_one(Account, wallet.account_id)
    assert device.status == "revoked" and account.status == "active"
    (event,) = events(core, "incident.force_reset")
    assert (event.actor, event.target) == ("admin:ops", "account:all")
