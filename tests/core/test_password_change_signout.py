"""Issue 13: changing the password left the other phones signed in and minting payment codes.

A thief who enrolled a phone while the old password (and a phished authenticator code) worked kept paying
with it after the owner changed the password. The change now signs every other device out by default
(``sign_out_other_devices``, default true): its codes fail at the register, its signed requests and its
sessions end; the phone the owner changed it on goes on. The owner may keep the others (``false``)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from payment_core.core import Core
from payment_core.models import AuditEvent, Device
from payment_core.server import ServerThread
from protocol import ManualClock, ProtocolError
from tests.support import PASSWORD, SignedCaller, balance, error_code, fresh_otp, mailbox
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

EMAIL = "hanako@example.jp"  # the conftest's wallet
NEW_PASSWORD = "a brand new passphrase 2026"


def _events(core: Core, action: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    with core.transaction() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()
    return [(row.actor, row.target, row.result, json.loads(row.detail)) for row in rows]


def _statuses(core: Core, account_id: int) -> dict[int, str]:
    with core.transaction() as session:
        rows = session.scalars(select(Device).where(Device.account_id == account_id)).all()
    return {row.id: row.status for row in rows}


def _changed_mails(core: Core) -> list[str]:
    return [body for body in mailbox(core, EMAIL) if "password of your possim wallet was changed" in body]


def _refused(call: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as refused:
        call()
    return refused.value


def test_a_password_change_signs_the_other_phones_out_by_default_and_keeps_this_one(
    core: Core,
    server: ServerThread,
    clock: ManualClock,
    terminal: SignedCaller,
    wallet: WalletState,
    minter: CodeMinter,
    funded: int,
) -> None:
    with WalletClient(server.url, clock=clock) as client:
        # The attack step: with the leaked password and a phished authenticator code, a thief enrolls a phone.
        thief = client.enroll(EMAIL, PASSWORD, fresh_otp(core, clock, wallet.account_id), "thief's phone")
        thief_minter = CodeMinter(thief.device_id, thief.secret, clock)
        assert terminal.pay("thief-before", 100, thief_minter.mint().numeric).status_code == 200
        thief_access, _kept = client.refresh(thief)
        # A session that does not know the current password changes nothing (and revokes nothing).
        wrong = _refused(lambda: client.change_password(thief_access, "not the password at all", NEW_PASSWORD))
        assert (wrong.status, wrong.code) == (401, "credentials_invalid")
        assert set(_statuses(core, wallet.account_id).values()) == {"active"}
        # The owner notices and changes the password on their own phone, without naming any option.
        access, _state = client.refresh(wallet)
        thief_code = thief_minter.mint()  # minted offline before the change, shown after it
        answer = client.change_password(access, PASSWORD, NEW_PASSWORD)
        assert answer == {"password_changed": True, "other_devices_signed_out": 1}
        # It fails: the thief's phone is revoked. Its codes fail at the register, fresh or minted earlier...
        for order, code in (("thief-after-1", thief_code), ("thief-after-2", thief_minter.mint())):
            refused = terminal.pay(order, 100, code.numeric)
            assert (refused.status_code, error_code(refused)) == (402, "device_revoked")
        # ...its signed requests are refused, and its session is over.
        assert _refused(lambda: client.balance(thief)).code == "signature_invalid"
        assert _refused(lambda: client.account_security(thief_access)).code == "token_invalid"
        # The owner's phone stays: its session goes on, it signs requests and its codes pay.
        assert client.account_security(access)["sessions"] == 1
        paid = terminal.pay("owner-after", 300, minter.mint().numeric)
        assert paid.status_code == 200, paid.text
        assert client.balance(wallet) == funded - 100 - 300
        notices = [notice["message"] for notice in client.notifications(wallet) if notice["kind"] == "password_changed"]
    assert notices == ["Your password was changed. 1 other device signed out."]
    assert [body for body in _changed_mails(core) if "1 other device signed out." in body] == _changed_mails(core)
    assert len(_changed_mails(core)) == 1
    assert _statuses(core, wallet.account_id) == {wallet.device_id: "active", thief.device_id: "revoked"}
    actor = f"account:{wallet.account_id}"
    (change,) = _events(core, "password.change")
    assert change[:3] == (actor, actor, "succeeded")
    assert change[3] == {"sign_out_other_devices": True, "devices_revoked": 1, "sessions_ended": 1}
    assert (actor, f"device:{thief.device_id}", "succeeded") in [event[:3] for event in _events(core, "device.revoke")]
    assert balance(core, wallet) == funded - 400


def test_the_owner_may_keep_the_other_phones_enrolled_their_sessions_still_end(
    core: Core, server: ServerThread, clock: ManualClock, terminal: SignedCaller, wallet: WalletState, funded: int
) -> None:
    with WalletClient(server.url, clock=clock) as client:
        tablet = client.enroll(EMAIL, PASSWORD, fresh_otp(core, clock, wallet.account_id), "own tablet")
        tablet_access, _kept = client.refresh(tablet)
        access, _state = client.refresh(wallet)
        answer = client.change_password(access, PASSWORD, NEW_PASSWORD, sign_out_other_devices=False)
        assert answer == {"password_changed": True, "other_devices_signed_out": 0}
        # The tablet stays enrolled: its codes pay and it signs requests; only its session ended.
        paid = terminal.pay("tablet", 100, CodeMinter(tablet.device_id, tablet.secret, clock).mint().numeric)
        assert paid.status_code == 200, paid.text
        assert client.balance(tablet) == funded - 100
        assert _refused(lambda: client.account_security(tablet_access)).code == "token_invalid"
        assert _refused(lambda: client.sign_in(tablet, PASSWORD)).code == "credentials_invalid"  # the old one
        assert client.sign_in(tablet, NEW_PASSWORD).refresh_token
        assert client.account_security(access)["sessions"] == 2  # the owner's phone and the tablet's new one
    assert set(_statuses(core, wallet.account_id).values()) == {"active"}
    (mail,) = _changed_mails(core)
    assert "signed out" not in mail
    (change,) = _events(core, "password.change")
    assert change[3] == {"sign_out_other_devices": False, "devices_revoked": 0, "sessions_ended": 1}
    assert _events(core, "device.revoke") == []


def test_the_option_is_a_strict_boolean_published_in_the_openapi_with_default_true(
    core: Core, server: ServerThread, clock: ManualClock, wallet: WalletState
) -> None:
    schema = httpx.get(f"{server.url}/openapi.json").json()
    body = schema["paths"]["/v1/account/password"]["post"]["requestBody"]
    field = body["content"]["application/json"]["schema"]["properties"]["sign_out_other_devices"]
    assert (field["type"], field["default"]) == ("boolean", True)
    assert "sign_out_other_devices" not in body["content"]["application/json"]["schema"]["required"]
    with WalletClient(server.url, clock=clock) as client:
        access, _state = client.refresh(wallet)
    for value in ("no", 0, None):
        refused = httpx.post(
            f"{server.url}/v1/account/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "sign_out_other_devices": value},
            headers={"authorization": f"Bearer {access}"},
        )
        assert (refused.status_code, error_code(refused)) == (422, "parameter_invalid"), refused.text
        assert refused.json()["error"]["param"] == "sign_out_other_devices"
    assert _events(core, "password.change") == []
