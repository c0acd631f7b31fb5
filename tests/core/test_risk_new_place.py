"""The new_place rule: a phone enrolled, or an enrolled phone signed in, from an address range or a country
new to the account. 7pay's takeovers added phones from abroad with leaked passwords; here a new phone from
a new country is refused with words that say how to go on, and the owner is told. Real cores on both
stores, sources set as a request sets them (``current_source``, 127.x.y.z aliases standing for addresses
abroad); the clock is moved, never slept on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from payment_core import accounts, devices, outbox
from payment_core.core import Core
from payment_core.models import Account, AccountPlace, AuditEvent, Device, Notification, RiskDecision
from payment_core.risk import RiskSettingsError, Verdict, explain, load_settings
from payment_core.risk.explain import explain_lines, explain_transaction
from payment_core.risk.new_place import ENROLL_DECLINED, OWNER_SUBJECTS, SIGNIN_DECLINED
from payment_core.server import ServerThread
from possim.world import new_core
from protocol import ErrorCode, ManualClock, ProtocolError
from tests.conftest import Database
from tests.signins import CHEAP_HASHING, from_address
from tests.support import PASSWORD, fresh_otp
from wallet_app.state import WalletState

HOME = "127.200.0.10"  # JP
NEAR_HOME = "127.90.0.5"  # JP, another range
ABROAD = "127.130.0.5"  # US


@pytest.fixture
def placed(database: Database, clock: ManualClock) -> Iterator[Core]:
    core = new_core(database.url, db_schema=database.schema, clock=clock, passwords=CHEAP_HASHING)
    yield core
    core.close()


def new_account(core: Core, clock: ManualClock) -> Account:
    """A verified account with no phone and no known place yet."""
    account = accounts.create_account(core, "owner@example.jp", PASSWORD, actor="test")
    with core.transaction() as session:
        session.execute(update(Account).where(Account.id == account.id).values(email_verified_at=clock()))
    return account


def open_account(core: Core, clock: ManualClock) -> tuple[Account, Device]:
    """A verified account with a phone enrolled from ``HOME`` (its first known place)."""
    account = new_account(core, clock)
    return account, enroll(core, clock, account, HOME)


def enroll(core: Core, clock: ManualClock, account: Account, address: str) -> Device:
    with from_address(address):
        made = devices.enroll_device(core, account.email, PASSWORD, fresh_otp(core, clock, account.id), "phone")
    return made.device


def decisions(core: Core) -> list[RiskDecision]:
    with core.read() as session:
        return list(session.scalars(select(RiskDecision).order_by(RiskDecision.id)))


def events(core: Core, action: str) -> list[AuditEvent]:
    with core.read() as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(session.scalars(query))


def subjects(core: Core, address: str) -> list[str]:
    return [message.subject for message in outbox.messages(core, to=address)]


def security_notices(core: Core, account_id: int) -> list[str]:
    with core.read() as session:
        query = select(Notification.message).where(
            Notification.account_id == account_id, Notification.kind == "security"
        )
        return list(session.scalars(query))


def places(core: Core, account_id: int) -> set[str]:
    with core.read() as session:
        return set(session.scalars(select(AccountPlace.place).where(AccountPlace.account_id == account_id)))


def test_a_new_phone_from_a_new_country_is_refused_kept_explained_and_the_owner_told(
    placed: Core, clock: ManualClock
) -> None:
    core = placed
    account, _home_phone = open_account(core, clock)
    clock.advance(3600)
    with from_address(ABROAD), pytest.raises(ProtocolError) as refused:
        devices.enroll_device(core, account.email, PASSWORD, fresh_otp(core, clock, account.id), "iPhone")
    assert refused.value.code == ErrorCode.RISK_DECLINED
    assert refused.value.message == ENROLL_DECLINED["country"]
    assert "new country" in refused.value.message and "contact support" in refused.value.message
    with core.read() as session:
        assert session.scalar(select(Device.id).where(Device.name == "iPhone")) is None  # not added
    (decision,) = decisions(core)
    assert (decision.subject_kind, decision.verdict, decision.account_id) == ("enrollment", "decline", account.id)
    (finding,) = json.loads(decision.findings)
    assert finding["rule"] == "new_place" and finding["inputs"]["country"] == "US"
    assert finding["inputs"]["known_countries"] == ["JP"] and finding["inputs"]["new"] == "country"
    # the audit names the decision, and explain reads it back by that name
    refusal = events(core, "device.enroll")[-1]
    detail = json.loads(refusal.detail)
    assert refusal.result == "risk_declined" and detail["risk_subject"] == decision.subject_id
    assert detail["risk"] == "decline" and detail["rules"] == ["new_place"] and detail["new_country"] == "US"
    signin = events(core, "signin.new_device")[-1]
    assert signin.result == "failed" and json.loads(signin.detail)["risk_subject"] == decision.subject_id
    with core.read() as session:
        assert explain(session, decision.subject_id)[0]["verdict"] == "decline"
        explained = explain_transaction(session, decision.subject_id)
    assert explained is not None and explained["kind"] == "enrollment"
    assert any("new_place asked to decline" in line for line in explain_lines(explained))
    # the owner is told by mail and on the phone; the foreign range is not remembered as a usual place
    assert OWNER_SUBJECTS[("enrollment", True)] in subjects(core, account.email)
    (notice,) = security_notices(core, account.id)
    assert "US" in notice and "not added" in notice
    assert places(core, account.id) == {"127.200.0.0/24"}
    # and it stays refused from there
    with from_address(ABROAD), pytest.raises(ProtocolError):
        devices.enroll_device(core, account.email, PASSWORD, fresh_otp(core, clock, account.id), "iPhone")


def test_a_new_phone_from_a_new_range_at_home_is_added_and_the_finding_kept(placed: Core, clock: ManualClock) -> None:
    core = placed
    account, _home_phone = open_account(core, clock)
    device = enroll(core, clock, account, NEAR_HOME)
    assert device.account_id == account.id
    (decision,) = decisions(core)
    assert (decision.subject_kind, decision.verdict) == ("enrollment", "allow")
    (finding,) = json.loads(decision.findings)
    assert finding["inputs"]["new"] == "range" and finding["inputs"]["place"] == "127.90.0.0/24"
    added = events(core, "device.enroll")[-1]
    assert added.target == f"device:{device.id}" and json.loads(added.detail)["risk_subject"] == decision.subject_id
    assert subjects(core, account.email).count("New device signed in") == 2  # told as ever
    assert security_notices(core, account.id) == []
    assert places(core, account.id) == {"127.200.0.0/24", "127.90.0.0/24"}
    # from the usual places nothing is kept
    enroll(core, clock, account, HOME.replace(".10", ".99"))
    assert len(decisions(core)) == 1


def test_a_newcomer_is_never_new_and_the_cores_own_calls_are_not_judged(placed: Core, clock: ManualClock) -> None:
    core = placed
    account = new_account(core, clock)
    first = enroll(core, clock, account, ABROAD)  # the first phone, from abroad: no place known yet
    assert first.account_id == account.id
    assert decisions(core) == []
    code = fresh_otp(core, clock, account.id)
    with from_address(HOME), pytest.raises(ProtocolError) as refused:  # now US is its country: JP is new
        devices.enroll_device(core, account.email, PASSWORD, code, "second")
    assert refused.value.code == ErrorCode.RISK_DECLINED
    local = enroll(core, clock, account, "local")  # no client address (the core's own commands)
    assert local.account_id == account.id and len(decisions(core)) == 1


def test_an_enrolled_phone_signing_in_from_abroad_goes_through_and_the_owner_is_told(
    placed: Core, clock: ManualClock
) -> None:
    core = placed
    account, phone = open_account(core, clock)
    clock.advance(3600)
    with from_address(ABROAD):
        tokens = devices.sign_in(core, phone, PASSWORD)  # the phone's key is already a factor
    assert tokens.view()["access_token"]
    (decision,) = decisions(core)
    assert (decision.subject_kind, decision.verdict) == ("signin", "step_up")
    signin = events(core, "signin.known_device")[-1]
    assert signin.result == "succeeded" and json.loads(signin.detail)["risk_subject"] == decision.subject_id
    assert OWNER_SUBJECTS[("signin", False)] in subjects(core, account.email)
    (notice,) = security_notices(core, account.id)
    assert "US" in notice and "went through" in notice
    with from_address(NEAR_HOME):  # a new range at home: kept, nobody bothered
        devices.sign_in(core, phone, PASSWORD)
    assert [row.verdict for row in decisions(core)] == ["step_up", "allow"]
    assert len(security_notices(core, account.id)) == 1


def test_an_operator_may_refuse_sign_ins_from_new_countries_or_freeze(placed: Core, clock: ManualClock) -> None:
    core = placed
    rule = replace(core.config.risk.new_place, signin_country_action=Verdict.DECLINE)
    core.config = replace(core.config, risk=replace(core.config.risk, new_place=rule))
    account, phone = open_account(core, clock)
    with from_address(ABROAD), pytest.raises(ProtocolError) as refused:
        devices.sign_in(core, phone, PASSWORD)
    assert refused.value.code == ErrorCode.RISK_DECLINED and refused.value.message == SIGNIN_DECLINED["country"]
    assert events(core, "signin.known_device")[-1].result == "failed"
    assert OWNER_SUBJECTS[("signin", True)] in subjects(core, account.email)
    # freeze: refused, and the account frozen until an operator looks
    rule = replace(rule, action=Verdict.FREEZE)
    core.config = replace(core.config, risk=replace(core.config.risk, new_place=rule))
    with from_address("127.150.0.9"), pytest.raises(ProtocolError):  # CN
        devices.enroll_device(core, account.email, PASSWORD, fresh_otp(core, clock, account.id), "another")
    with core.read() as session:
        assert session.get_one(Account, account.id).status == "frozen"
    assert [row.verdict for row in decisions(core)] == ["decline", "freeze"]
    assert events(core, "account.frozen")[-1].target == f"account:{account.id}"


def test_the_rule_can_be_switched_off(placed: Core, clock: ManualClock) -> None:
    core = placed
    rule = replace(core.config.risk.new_place, enabled=False)
    core.config = replace(core.config, risk=replace(core.config.risk, new_place=rule))
    account, _ = open_account(core, clock)
    assert enroll(core, clock, account, ABROAD).account_id == account.id
    assert decisions(core) == []


def test_the_settings_are_read_and_checked(tmp_path: Path) -> None:
    shipped = load_settings().new_place
    assert shipped.enabled and shipped.action == Verdict.DECLINE
    assert shipped.enrollment_range_action == Verdict.ALLOW and shipped.signin_range_action == Verdict.ALLOW
    assert shipped.signin_country_action == Verdict.STEP_UP
    path = tmp_path / "risk.toml"
    path.write_text('[new_place]\nsignin_range_action = "step_up"\n', encoding="utf-8")
    assert load_settings(path).new_place.signin_range_action == Verdict.STEP_UP
    path.write_text('[new_place]\nsignin_range_action = "maybe"\n', encoding="utf-8")
    with pytest.raises(RiskSettingsError, match="unknown action 'maybe'"):
        load_settings(path)
    path.write_text("[new_place]\nrange_action = 1\n", encoding="utf-8")
    with pytest.raises(RiskSettingsError, match=r"\[new_place\] has no setting 'range_action'"):
        load_settings(path)


def test_over_http_a_phone_from_abroad_gets_clear_words_and_one_from_home_is_added(
    core: Core, server: ServerThread, wallet: WalletState, clock: ManualClock
) -> None:
    """The wallet's phone was enrolled over HTTP from 127.0.0.1 (Japan); a new phone is asked for from
    127.130.0.9 (the map's United States) and from 127.0.0.9, both real connections from those addresses."""
    abroad = httpx.Client(base_url=server.url, timeout=30, transport=httpx.HTTPTransport(local_address=ABROAD))
    home = httpx.Client(base_url=server.url, timeout=30, transport=httpx.HTTPTransport(local_address="127.0.0.9"))
    with abroad, home:
        body = {"email": wallet.email, "password": PASSWORD, "device_name": "second"}
        refused = abroad.post("/v1/devices", json=body | {"otp": fresh_otp(core, clock, wallet.account_id)})
        assert refused.status_code == 402
        assert refused.json()["error"]["code"] == "risk_declined"
        assert refused.json()["error"]["message"] == ENROLL_DECLINED["country"]
        assert "Traceback" not in refused.text
        added = home.post("/v1/devices", json=body | {"otp": fresh_otp(core, clock, wallet.account_id)})
        assert added.status_code == 201 and added.json()["account_id"] == wallet.account_id
    (decision,) = decisions(core)
    assert decision.verdict == "decline" and json.loads(decision.findings)[0]["inputs"]["country"] == "US"
