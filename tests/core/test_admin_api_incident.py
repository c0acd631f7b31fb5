"""The incident controls on the admin API (issue 13): lifting a risk alert, compensating a victim, sweeping
unanswered confirmations, the victims list and the incident report, each with an admin token.

A read key reads the victims and the report but pulls no lever (403); a register's signature is no admin
credential (401); every use is audited with its operator. The answers are the domain's (and so the
CLI's ``--json``). Real cores on both stores and a real server; the clock is moved, never slept on."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from payment_core import admin_keys
from payment_core.core import Core
from payment_core.incident_report import build_report
from payment_core.models import AuditEvent, Payment, RiskAlert
from payment_core.risk import Verdict
from payment_core.risk.signin_attack import KIND as LIST_ATTACK
from payment_core.server import ServerThread
from payment_core.victims import find_victims
from possim.cli import main
from possim.runtime import open_core
from possim.world import add_terminal, new_core, serve
from protocol import ManualClock
from tests.conftest import Database
from tests.core.test_admin_api import bearer
from tests.core.test_incident_report import Incident, build_incident
from tests.signins import CHEAP_HASHING, try_new_phone
from tests.support import SignedCaller, assert_books_balance, balance, error_code, fund_wallet
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

NEW_PLACE = "127.99.1.1"  # a range no account has signed in from


@pytest.fixture
def ops(core: Core, server: ServerThread) -> Iterator[httpx.Client]:
    with bearer(server, admin_keys.create_key(core, "ops", admin_keys.OPERATOR, "admin:test").token) as client:
        yield client


@pytest.fixture
def watcher(core: Core, server: ServerThread) -> Iterator[httpx.Client]:
    with bearer(server, admin_keys.create_key(core, "watcher", admin_keys.READ, "admin:test").token) as client:
        yield client


def audited(core: Core, action: str) -> list[dict[str, Any]]:
    with core.read() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        return [{"actor": e.actor, "target": e.target, "result": e.result, **json.loads(e.detail)} for e in events]


def raise_alert(core: Core) -> int:
    """A list-attack alert up for half an hour, as ``signin_attack.watch`` raises it."""
    now = core.now()
    with core.transaction() as session:
        alert = RiskAlert(
            kind=LIST_ATTACK, opened_at=now, last_seen=now, until=now + timedelta(minutes=30), signals="{}"
        )
        session.add(alert)
        session.flush()
        return alert.id


def decline_new_places(core: Core) -> None:
    """While an alert is up, every sign-in from a place new to its account waits (``action = "decline"``)."""
    rule = replace(core.config.risk.signin_list_attack, action=Verdict.DECLINE)
    core.config = replace(core.config, risk=replace(core.config.risk, signin_list_attack=rule))


# -- alerts --------------------------------------------------------------------------------------------


def test_lifting_an_alert_lets_a_sign_in_from_a_new_place_through(
    core: Core, ops: httpx.Client, watcher: httpx.Client, terminal: SignedCaller
) -> None:
    decline_new_places(core)
    alert_id = raise_alert(core)
    assert try_new_phone(core, NEW_PLACE, "someone@example.com", "wrong") == "held"  # before any password work
    assert [row["id"] for row in watcher.get("/v1/admin/alerts").json()["data"]] == [alert_id]
    refused = watcher.post(f"/v1/admin/alerts/{alert_id}/lift")
    assert (refused.status_code, error_code(refused)) == (403, "forbidden")
    assert terminal.call("POST", f"/v1/admin/alerts/{alert_id}/lift").status_code == 401
    assert try_new_phone(core, NEW_PLACE, "someone@example.com", "wrong") == "held"  # neither lifted it

    lifted = ops.post(f"/v1/admin/alerts/{alert_id}/lift")
    assert lifted.status_code == 200
    assert lifted.json() == {"id": alert_id, "kind": LIST_ATTACK, "lifted": True, "lifted_by": "admin:ops"}
    assert try_new_phone(core, NEW_PLACE, "someone@example.com", "wrong") == "refused"  # the password was checked
    assert watcher.get("/v1/admin/alerts").json()["data"] == []
    again = ops.post(f"/v1/admin/alerts/{alert_id}/lift")
    assert again.json() == {"id": alert_id, "kind": LIST_ATTACK, "lifted": False, "lifted_by": "admin:ops"}
    missing = ops.post("/v1/admin/alerts/999999/lift")
    assert (missing.status_code, error_code(missing)) == (404, "resource_missing")
    assert [(e["actor"], e["target"], e["found"]) for e in audited(core, "incident.alert_lift")] == [
        ("admin:ops", f"alert:{alert_id}", True),
        ("admin:ops", f"alert:{alert_id}", False),
    ]


def test_alert_lift_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["admin", "--db", str(tmp_path / "core.db"), "--key-file", str(tmp_path / "server.key")]
    made = ["terminal-add", "--store", "Ueno", "--secret-file", str(tmp_path / "t.secret")]
    assert main([*args, *made]) == 0
    core = open_core(argparse.Namespace(db=str(tmp_path / "core.db"), db_schema=None, key_file=tmp_path / "server.key"))
    try:
        alert_id = raise_alert(core)
        capsys.readouterr()
        assert main([*args, "alert-lift", str(alert_id)]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["id"] == alert_id and printed["lifted"] is True
        assert printed["lifted_by"].startswith("admin:")
        with core.read() as session:
            assert session.get_one(RiskAlert, alert_id).lifted_by == printed["lifted_by"]
        assert main([*args, "alert-lift", "424242"]) == 1
        assert "resource_missing" in capsys.readouterr().err
    finally:
        core.close()


# -- compensation --------------------------------------------------------------------------------------


def test_a_compensation_through_the_api_is_paid_once_and_the_books_balance(
    core: Core,
    ops: httpx.Client,
    watcher: httpx.Client,
    terminal: SignedCaller,
    wallet: WalletState,
    funded: int,
) -> None:
    body = {"compensation_id": "inc-7-hanako", "account_id": wallet.account_id, "amount": 3_000, "reason": "takeover"}
    refused = watcher.post("/v1/admin/compensations", json=body)
    assert (refused.status_code, error_code(refused)) == (403, "forbidden")
    assert terminal.call("POST", "/v1/admin/compensations", body).status_code == 401
    assert balance(core, wallet) == funded

    first = ops.post("/v1/admin/compensations", json=body)
    assert first.status_code == 200
    paid = first.json()
    assert {key: paid[key] for key in ("compensation_id", "account_id", "amount", "replayed")} == {
        "compensation_id": "inc-7-hanako",
        "account_id": wallet.account_id,
        "amount": 3_000,
        "replayed": False,
    }
    repeat = ops.post("/v1/admin/compensations", json=body)
    assert repeat.json() == paid | {"replayed": True}  # the first result, nothing moved
    assert balance(core, wallet) == funded + 3_000
    conflict = ops.post("/v1/admin/compensations", json=body | {"amount": 4_000})
    assert (conflict.status_code, error_code(conflict)) == (409, "idempotency_conflict")
    assert conflict.json()["error"]["param"] == "compensation_id"
    elsewhere = ops.post("/v1/admin/compensations", json=body | {"account_id": wallet.account_id + 1})
    assert (elsewhere.status_code, error_code(elsewhere)) == (409, "idempotency_conflict")
    assert balance(core, wallet) == funded + 3_000
    assert_books_balance(core)
    events = audited(core, "compensation")
    assert [(e["actor"], e["result"], e["amount"]) for e in events] == [
        ("admin:ops", "succeeded", 3_000),
        ("admin:ops", "refused_conflict", 4_000),
        ("admin:ops", "refused_conflict", 3_000),
    ]


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"compensation_id": "-starts-badly", "account_id": 1, "amount": 100}, 422, "parameter_invalid", None),
        ({"compensation_id": "c-1", "account_id": 1, "amount": "100"}, 422, "parameter_invalid", "amount"),
        ({"compensation_id": "c-1", "account_id": 1, "amount": 0}, 400, "amount_invalid", "amount"),
        ({"compensation_id": "c-1", "account_id": 1, "amount": 100, "extra": 1}, 422, "parameter_invalid", "extra"),
        ({"compensation_id": "c-1", "account_id": 999_999, "amount": 100}, 404, "resource_missing", "account_id"),
    ],
)
def test_a_bad_compensation_is_one_clean_error(
    core: Core, ops: httpx.Client, body: dict[str, Any], status: int, code: str, param: str | None
) -> None:
    answer = ops.post("/v1/admin/compensations", json=body)
    assert (answer.status_code, error_code(answer)) == (status, code)
    if param is not None:
        assert answer.json()["error"]["param"] == param
    assert audited(core, "compensation") == []
    assert_books_balance(core)


# -- sweep ---------------------------------------------------------------------------------------------


def test_a_sweep_through_the_api_closes_unanswered_confirmations(
    core: Core,
    ops: httpx.Client,
    watcher: httpx.Client,
    terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    clock: ManualClock,
) -> None:
    fund_wallet(terminal, minter, 50_000)
    clock.advance(1)
    waiting = terminal.pay("sweep-api-1", 12_000, minter.mint().numeric)  # above confirm_above_yen
    assert waiting.status_code == 202
    payment_id = waiting.json()["id"]
    clock.advance(core.config.limits.confirm_window_seconds + 1)
    assert watcher.post("/v1/admin/sweep").status_code == 403
    assert terminal.call("POST", "/v1/admin/sweep").status_code == 401
    with core.read() as session:
        assert session.get_one(Payment, payment_id).status == "awaiting_customer"  # nobody swept yet

    swept = ops.post("/v1/admin/sweep")
    assert swept.status_code == 200
    assert swept.json() == {"object": "sweep", "closed": 1, "payment_ids": [payment_id]}
    with core.read() as session:
        payment = session.get_one(Payment, payment_id)
        assert (payment.status, payment.decline_code) == ("declined", "confirmation_expired")
    assert ops.post("/v1/admin/sweep").json()["closed"] == 0
    assert [(e["actor"], e["closed"]) for e in audited(core, "payments.sweep")] == [("admin:ops", 1), ("admin:ops", 0)]
    assert balance(core, wallet) == 50_000
    assert_books_balance(core)


# -- victims and the report ----------------------------------------------------------------------------


@pytest.fixture
def incident_core(database: Database, clock: ManualClock) -> Iterator[Core]:
    core = new_core(database.url, db_schema=database.schema, clock=clock, passwords=CHEAP_HASHING)
    yield core
    core.close()


def test_the_victims_and_the_report_through_the_api_are_the_domains(incident_core: Core, clock: ManualClock) -> None:
    core = incident_core
    with serve(core) as server:
        incident = build_incident(core, clock, server.url)
        read_token = admin_keys.create_key(core, "watcher", admin_keys.READ, "admin:test").token
        made = add_terminal(core, "Ueno", "register-9", "test")
        with bearer(server, read_token) as watcher, SignedCaller(server.url, made.id, made.secret, clock) as terminal:
            check_victims_and_report(core, incident, watcher, terminal)


def check_victims_and_report(core: Core, incident: Incident, watcher: httpx.Client, terminal: SignedCaller) -> None:
    since, until = incident.started - timedelta(minutes=5), incident.ended + timedelta(minutes=5)
    window = {"since": since.isoformat(), "until": until.isoformat()}

    victims = watcher.get("/v1/admin/victims")
    assert victims.status_code == 200
    with core.read() as session:
        expected = {"victims": [victim.as_json() for victim in find_victims(session)]}
    assert victims.json() == json.loads(json.dumps(expected))  # `possim admin victims --json` prints this
    assert [row["account_id"] for row in victims.json()["victims"]] == incident.owners[:2]
    before = watcher.get("/v1/admin/victims", params={"until": incident.started.isoformat()})
    assert before.json() == {"victims": []}
    tokyo = since.astimezone(timezone(timedelta(hours=9))).isoformat()
    assert watcher.get("/v1/admin/victims", params={"since": tokyo}).json() == victims.json()
    for loose in (since.replace(tzinfo=None).isoformat(), "0.5", "2019-07-03"):  # RFC 3339 only
        bad = watcher.get("/v1/admin/victims", params={"since": loose})
        assert (bad.status_code, error_code(bad), bad.json()["error"]["param"]) == (422, "parameter_invalid", "since")

    report = watcher.get("/v1/admin/report", params=window)
    assert report.status_code == 200
    with core.read() as session:
        domain = build_report(session, since, until)  # `possim admin report --json` prints this
    assert report.json() == json.loads(json.dumps(domain))
    assert report.json()["victims"] == 2 and report.json()["yen_lost"] == 8_000

    assert terminal.call("GET", "/v1/admin/report").status_code == 401
    for params, param in (
        ({}, None),
        ({"since": "yesterday"}, "since"),
        ({**window, "until": window["since"]}, "until"),
    ):
        bad = watcher.get("/v1/admin/report", params=params)
        assert (bad.status_code, error_code(bad)) == (422, "parameter_invalid")
        if param is not None:
            assert bad.json()["error"]["param"] == param
    reads = [e["target"] for e in audited(core, "admin.read") if e["actor"] == "admin:watcher"]
    assert reads == ["victims"] * 3 + ["report"]  # (build_incident has a read of its own, by admin:test)
