"""The wallet contract (docs/WALLET_API.md) over a real server: enrollment with password, TOTP and a
verified address; notifications; history; devices and revocation; card and bank top-ups with a TOTP."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from payment_core import otp
from payment_core.core import Core
from payment_core.models import Account, AuditEvent, Topup
from payment_core.server import ServerThread
from protocol import ManualClock, ProtocolError
from tests.support import (
    PASSWORD,
    PHONE,
    SignedCaller,
    balance,
    error_code,
    fresh_otp,
    mailbox,
    mailed_code,
    sign_up_verified,
    totp_now,
)
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

EMAIL = "hanako@example.jp"  # the ``wallet`` fixture's account


def _refused(attempt: Any, clock: ManualClock | None = None) -> ProtocolError:
    if clock is not None:  # past the per-address backoff of the failures before (at most 2^(n-5) s)
        clock.advance(10)
    with pytest.raises(ProtocolError) as refused:
        attempt()
    assert (refused.value.status, refused.value.code) == (401, "credentials_invalid")
    return refused.value


def test_enrollment_needs_a_verified_address_and_a_fresh_totp_code(
    core: Core, server: ServerThread, clock: ManualClock
) -> None:
    email = "jiro@example.jp"
    with WalletClient(server.url, clock=clock) as client:
        client.sign_up(email, PHONE, PASSWORD)
        code_mail = mailed_code(core, email)
        with core.transaction() as session:  # the user has no key yet; the test derives it as the core does
            account = session.scalars(select(Account).where(Account.email == email)).one()
        secret = otp.account_totp_secret(core, account)
        unverified = _refused(lambda: client.enroll(email, PASSWORD, totp_now(secret, clock), "phone"))
        assert client.verify_email(email, code_mail)["totp_secret"] == secret
        wrong_otp = _refused(lambda: client.enroll(email, PASSWORD, "000000", "phone"), clock)
        no_otp = _refused(lambda: client.enroll(email, PASSWORD, "", "phone"), clock)
        password_as_otp = _refused(lambda: client.enroll(email, PASSWORD, PASSWORD, "phone"), clock)
        wrong_password = _refused(lambda: client.enroll(email, PASSWORD + "!", totp_now(secret, clock), "phone"), clock)
        unknown = _refused(
            lambda: client.enroll("nobody@example.jp", PASSWORD, totp_now(secret, clock), "phone"), clock
        )
        messages = {
            error.message for error in (unverified, wrong_otp, no_otp, password_as_otp, wrong_password, unknown)
        }
        assert len(messages) == 1
        clock.advance(10)
        code = totp_now(secret, clock)
        state = client.enroll(email, PASSWORD, code, "first phone")
        assert client.wallet(state)["email"] == email
        _refused(lambda: client.enroll(email, PASSWORD, code, "replayed phone"))  # the same code again
    with core.transaction() as session:
        results = session.scalars(select(AuditEvent.result).where(AuditEvent.action == "device.enroll")).all()
    assert {"refused_unverified", "refused_second_factor", "succeeded"} <= set(results)


def test_a_new_device_is_announced_to_the_other_devices_and_by_mail(
    core: Core, server: ServerThread, wallet: WalletState, clock: ManualClock
) -> None:
    with WalletClient(server.url, clock=clock) as client:
        assert client.notifications(wallet) == []
        second = client.enroll(EMAIL, PASSWORD, fresh_otp(core, clock, wallet.account_id), "tablet")
        notices = client.notifications(wallet)
        assert [notice["kind"] for notice in notices] == ["new_device"]
        assert "tablet" in notices[0]["message"]
        assert client.notifications(second) == []  # the new device is not told about itself
    assert "tablet" in mailbox(core, EMAIL)[0]


def test_history_shows_payments_with_their_store_refunds_and_topups(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int, clock: ManualClock
) -> None:
    paid = terminal.pay("hist-1", 1_200, minter.mint().numeric)
    assert paid.status_code == 200, paid.text
    clock.advance(1)
    refund = terminal.call("POST", f"/v1/payments/{paid.json()['id']}/refunds", {"refund_id": "r-1", "amount": 200})
    assert refund.status_code == 200, refund.text
    with WalletClient(wallet.core_url, clock=clock) as client:
        rows = client.history(wallet)
        kinds = [(row["kind"], row["amount"], row["store"], row["source"]) for row in rows]
        assert kinds == [
            ("refund", 200, "Shibuya 1-chome", None),
            ("payment", 1_200, "Shibuya 1-chome", None),
            ("topup", 10_000, None, "cash"),
        ]
        assert rows[0]["payment_id"] == rows[1]["id"] == paid.json()["id"]
        assert [row["status"] for row in rows] == ["succeeded", "succeeded", "succeeded"]
        notices = client.notifications(wallet)
    assert [notice["kind"] for notice in notices] == ["refund", "payment", "topup"]
    assert "Shibuya 1-chome" in notices[1]["message"]


def test_devices_are_listed_and_a_revoked_device_codes_fail_at_the_register(
    core: Core,
    server: ServerThread,
    terminal: SignedCaller,
    wallet: WalletState,
    minter: CodeMinter,
    funded: int,
    clock: ManualClock,
) -> None:
    with WalletClient(server.url, clock=clock) as client:
        second = client.enroll(EMAIL, PASSWORD, fresh_otp(core, clock, wallet.account_id), "tablet")
        listed = client.devices(second)
        assert [(d["id"], d["status"], d["this_device"]) for d in listed] == [
            (wallet.device_id, "active", False),
            (second.device_id, "active", True),
        ]
        code = minter.mint()
        revoked = client.revoke_device(second, wallet.device_id)
        assert (revoked["id"], revoked["status"], revoked["this_device"]) == (wallet.device_id, "revoked", False)
        with pytest.raises(ProtocolError) as gone:
            client.balance(wallet)
        assert (gone.value.status, gone.value.code) == (401, "signature_invalid")
        assert "device_revoked" in [notice["kind"] for notice in client.notifications(second)]
        stranger = client_for_stranger(client, core, clock)
        with pytest.raises(ProtocolError) as foreign:
            client.revoke_device(stranger, second.device_id)
        assert (foreign.value.status, foreign.value.code) == (404, "resource_missing")
    refused = terminal.pay("after-revoke", 100, code.numeric)
    assert (refused.status_code, error_code(refused)) == (402, "device_revoked")
    assert balance(core, wallet) == funded


def client_for_stranger(client: WalletClient, core: Core, clock: ManualClock) -> WalletState:
    made = sign_up_verified(client, core, "taro@example.jp")
    return client.enroll("taro@example.jp", PASSWORD, totp_now(str(made["totp_secret"]), clock), "taro's phone")


def test_sign_out_everywhere_revokes_every_device(
    core: Core, server: ServerThread, wallet: WalletState, clock: ManualClock
) -> None:
    with WalletClient(server.url, clock=clock) as client:
        second = client.enroll(EMAIL, PASSWORD, fresh_otp(core, clock, wallet.account_id), "tablet")
        assert client.sign_out_everywhere(second) == 2
        for state in (wallet, second):
            with pytest.raises(ProtocolError) as out:
                client.devices(state)
            assert out.value.code == "signature_invalid"
        again = client.enroll(EMAIL, PASSWORD, fresh_otp(core, clock, wallet.account_id), "new phone")
        assert [d["status"] for d in client.devices(again)] == ["revoked", "revoked", "active"]


def test_card_topups_need_a_totp_code_not_the_password(
    core: Core, server: ServerThread, wallet: WalletState, clock: ManualClock
) -> None:
    with WalletClient(server.url, clock=clock) as client:
        body = {"topup_id": "card-no-otp", "amount": 1_000, "card_number": "4242424242424242"}
        _refused(lambda: client.signed(wallet, "POST", "/v1/topups/card", body))
        _refused(lambda: client.topup_card(wallet, 1_000, "4242424242424242", PASSWORD, topup_id="card-pw"))
        _refused(lambda: client.topup_card(wallet, 1_000, "4242424242424242", "123456", topup_id="card-x"))
        code = fresh_otp(core, clock, wallet.account_id)
        made = client.topup_card(wallet, 1_000, "4242424242424242", code, topup_id="card-ok")
        assert (made["status"], made["method"], made["balance_after"]) == ("succeeded", "card", 1_000)
        _refused(lambda: client.topup_card(wallet, 1_000, "4242424242424242", code, topup_id="card-replay"))
        assert client.balance(wallet) == 1_000
    with core.transaction() as session:
        stored = set(session.scalars(select(Topup.topup_key)).all())
    assert stored == {"card-ok"}  # a refused code leaves nothing behind: the same id can be retried


def test_bank_topups(core: Core, server: ServerThread, wallet: WalletState, clock: ManualClock) -> None:
    with WalletClient(server.url, clock=clock) as client:
        made = client.topup_bank(wallet, 5_000, "000-1234", fresh_otp(core, clock, wallet.account_id), "bank-1")
        assert (made["status"], made["method"], made["balance_after"]) == ("succeeded", "bank", 5_000)
        with pytest.raises(ProtocolError) as declined:
            client.topup_bank(wallet, 5_000, "0009999", fresh_otp(core, clock, wallet.account_id), "bank-2")
        assert (declined.value.status, declined.value.code) == (402, "card_declined")
        assert declined.value.message == "The bank declined the transfer."
        with pytest.raises(ProtocolError) as replayed:  # the stored decline again, without a new code
            client.topup_bank(wallet, 5_000, "0009999", "000000", "bank-2")
        assert replayed.value.message == declined.value.message
        _refused(lambda: client.topup_bank(wallet, 5_000, "0001234", "", "bank-3"))
        rows = client.history(wallet)
        assert [(row["source"], row["status"]) for row in rows] == [("bank", "declined"), ("bank", "succeeded")]
        assert client.balance(wallet) == 5_000
        assert client.notifications(wallet)[0]["kind"] == "topup"
