"""Sessions (access tokens, refresh rotation and reuse detection, sign-out everywhere), password reset
(single use, 15 minutes, signs everything out, unlocks), recovery codes (single use), password policy at
sign-up and at a change, top-up limits, and the account lock after ten failures."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from payment_core.core import Core
from payment_core.models import Account, PasswordReset, RecoveryCode
from payment_core.server import ServerThread
from protocol import ManualClock, ProtocolError
from tests.security.conftest import Victim, enroll_body, from_address
from tests.support import PASSWORD, PHONE, error_code, mailbox, mailed_reset_token
from wallet_app.client import WalletClient

NEW_PASSWORD = "a brand new passphrase 2026"


def _refused(call: object, code: str = "credentials_invalid") -> ProtocolError:
    with pytest.raises(ProtocolError) as refused:
        call()  # type: ignore[operator]
    assert refused.value.code == code, refused.value.message
    return refused.value


def test_access_tokens_expire_and_refresh_tokens_rotate_with_reuse_detection(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim
) -> None:
    with WalletClient(server.url, clock=clock) as client:
        access, state = client.refresh(victim.phone)
        assert client.account_security(access)["recovery_codes_left"] == 10
        clock.advance(core.config.sessions.access_token_seconds)
        _refused(lambda: client.account_security(access), "token_invalid")  # five minutes and it is dead
        stolen = state  # a copy of the refresh token taken by someone else
        access, state = client.refresh(state)  # the owner rotates: a new pair, the old token is used up
        assert client.account_security(access)["sessions"] == 1
        _refused(lambda: client.refresh(stolen), "token_invalid")  # the thief replays the old one...
        _refused(lambda: client.account_security(access), "token_invalid")  # ...and the session is over
        _refused(lambda: client.refresh(state), "token_invalid")  # for the owner's new tokens too
        assert any(n["kind"] == "security" for n in client.notifications(victim.phone))
        # The phone is still enrolled: it signs in again with its key and the password (no second factor).
        _refused(lambda: client.sign_in(victim.phone, "not my password"))
        again = client.sign_in(victim.phone, PASSWORD)
        access, again = client.refresh(again)
        assert client.account_security(access)["sessions"] == 1
        # Forged or foreign tokens are refused.
        for bad in ("", "Bearer", "Bearer x.y.z", access[:-2] + "xx"):
            answer = httpx.get(f"{server.url}/v1/account", headers={"authorization": bad})
            assert (answer.status_code, error_code(answer)) == (401, "token_invalid")
        # Sign out everywhere ends the sessions and the devices.
        assert client.sign_out_everywhere(victim.phone) == 1
        _refused(lambda: client.account_security(access), "token_invalid")
        _refused(lambda: client.refresh(again), "token_invalid")


def test_password_reset_is_single_use_short_lived_and_signs_out_everything(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim
) -> None:
    with WalletClient(server.url, clock=clock) as client:
        client.request_password_reset(victim.email)
        stale = mailed_reset_token(core, victim.email)
        clock.advance(15 * 60)
        _refused(lambda: client.reset_password(stale, NEW_PASSWORD))  # 15 minutes: expired
        client.request_password_reset(victim.email)
        first = mailed_reset_token(core, victim.email)
        client.request_password_reset(victim.email)
        token = mailed_reset_token(core, victim.email)
        assert first != token  # a newer request does not void it (tests/core/test_reset_abuse.py)...
        assert len(token) >= 32  # 192 random bits, URL-safe base64
        _refused(lambda: client.reset_password(token, "password"), "parameter_invalid")  # the policy holds
        client.reset_password(token, NEW_PASSWORD)
        _refused(lambda: client.reset_password(token, NEW_PASSWORD + "!"))  # single use
        _refused(lambda: client.reset_password(first, NEW_PASSWORD + "!"))  # ...but using one voids the rest
        # Every device and session is signed out: the phone's codes and requests fail.
        _refused(lambda: client.balance(victim.phone), "signature_invalid")
        _refused(lambda: client.enroll(victim.email, PASSWORD, victim.totp(), "phone"))  # old password
        phone = client.enroll(victim.email, NEW_PASSWORD, victim.totp(), "phone again")
        assert client.balance(phone) == 0
    assert "Your password of your possim wallet was changed" not in mailbox(core, victim.email)[0]
    assert "password of your possim wallet was changed" in mailbox(core, victim.email)[1]
    with core.transaction() as session:
        stored = set(session.scalars(select(PasswordReset.token_hash)))
    assert token not in stored and all(len(value) == 64 for value in stored)


def test_ten_failures_lock_the_account_for_thirty_minutes_or_until_a_reset(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim
) -> None:
    limit = core.config.throttling
    for index in range(limit.account_max_failures):  # from ten addresses: a distributed attack
        with from_address(server.url, f"127.0.3.{index + 1}") as client:
            answer = client.post("/v1/devices", json=enroll_body(victim.email, f"guess number {index}", "000000"))
        assert answer.status_code == 401
    with WalletClient(server.url, clock=clock) as client:
        locked = _refused(lambda: client.enroll(victim.email, PASSWORD, victim.totp(), "own phone"))
        assert "Sign-in paused" in "".join(mailbox(core, victim.email)) or any(
            "signing in\nwith your password is paused" in body or "is paused until" in body
            for body in mailbox(core, victim.email)
        )
        assert locked.status == 401  # the same answer as a wrong password: the lock tells nothing
        clock.advance(limit.account_lock_minutes * 60 - 120)  # each totp() is 30 s more
        _refused(
            lambda: client.enroll(victim.email, PASSWORD, victim.totp(), "own phone")
        )  # 29 minutes on: still locked
        client.request_password_reset(victim.email)  # a reset ends the lock at once
        client.reset_password(mailed_reset_token(core, victim.email), NEW_PASSWORD)
        assert client.enroll(victim.email, NEW_PASSWORD, victim.totp(), "own phone").device_id > 0


def test_recovery_codes_sign_in_once_each_and_a_new_set_voids_the_old(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim
) -> None:
    code = victim.recovery_codes[0]
    with WalletClient(server.url, clock=clock) as client:
        replacement = client.enroll(victim.email, PASSWORD, code.upper(), "replacement phone")
        clock.advance(10)
        _refused(lambda: client.enroll(victim.email, PASSWORD, code, "another phone"))  # used up
        access, _state = client.refresh(replacement)
        assert client.account_security(access)["recovery_codes_left"] == 9
        _refused(lambda: client.new_recovery_codes(access, PASSWORD))  # needs the authenticator
        fresh = client.new_recovery_codes(access, victim.totp())
        assert len(fresh) == 10 and not set(fresh) & set(victim.recovery_codes)
        clock.advance(10)
        _refused(lambda: client.enroll(victim.email, PASSWORD, victim.recovery_codes[1], "old code"))
        clock.advance(10)
        assert client.enroll(victim.email, PASSWORD, fresh[0], "new code").device_id > 0
    with core.transaction() as session:
        hashes = list(session.scalars(select(RecoveryCode.code_hash)))
    assert not any(value in hashes or value.replace("-", "") in hashes for value in fresh)


def test_passwords_follow_the_policy_at_sign_up_and_at_a_change(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim
) -> None:
    with WalletClient(server.url, clock=clock) as client:
        for bad, why in (
            ("short pw", "characters"),
            ("qwerty123456", "breaches"),
            ("newcomer@example.jp", "e-mail"),
            (PHONE, "phone"),
        ):
            refused = _refused(lambda bad=bad: client.sign_up("newcomer@example.jp", PHONE, bad), "parameter_invalid")
            assert why in refused.message.lower() or why in refused.message, (bad, refused.message)
        access, _state = client.refresh(victim.phone)
        _refused(lambda: client.change_password(access, "not the password", NEW_PASSWORD), "credentials_invalid")
        _refused(lambda: client.change_password(access, PASSWORD, "1qaz2wsx3edc"), "parameter_invalid")
        other = client.sign_in(victim.phone, PASSWORD)  # a second session, on the same phone
        client.change_password(access, PASSWORD, NEW_PASSWORD)
        _refused(lambda: client.refresh(other), "token_invalid")  # other sessions end
        assert client.account_security(access)["sessions"] == 1  # this one goes on
    with core.transaction() as session:
        stored = session.scalars(select(Account.password_hash).where(Account.email == victim.email)).one()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and NEW_PASSWORD not in stored
    assert "Your password was changed" in "".join(mailbox(core, victim.email)) or any(
        "was changed" in body for body in mailbox(core, victim.email)
    )


def test_top_up_limits_per_top_up_per_day_and_for_a_new_device(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim
) -> None:
    limits = core.config.limits
    card = "4242424242424242"
    with WalletClient(server.url, clock=clock) as client:
        # A phone enrolled minutes ago (7pay's pattern: new phone, top up, spend the same day).
        new_device = _refused(lambda: client.topup_card(victim.phone, 10_001, card, victim.totp()), "limit_exceeded")
        assert "72 hours" in new_device.message
        client.topup_card(victim.phone, 10_000, card, victim.totp())
        client.topup_card(victim.phone, 10_000, card, victim.totp())
        least = limits.topup_min_yen
        _refused(lambda: client.topup_card(victim.phone, least, card, victim.totp()), "limit_exceeded")  # 20,000 a day
        clock.advance(limits.new_device_hours * 3600)  # three days on: the ordinary limits
        _refused(
            lambda: client.topup_card(victim.phone, limits.topup_max_yen + 1, card, victim.totp()), "limit_exceeded"
        )
        for _ in range(limits.topup_daily_count):
            client.topup_card(victim.phone, 1_000, card, victim.totp())
        count = _refused(lambda: client.topup_card(victim.phone, 1_000, card, victim.totp()), "limit_exceeded")
        assert "3 top-ups a day" in count.message
        clock.advance(24 * 3600)
        client.topup_card(victim.phone, limits.topup_max_yen, card, victim.totp())
        client.topup_card(victim.phone, limits.topup_max_yen, card, victim.totp())
        total = _refused(lambda: client.topup_card(victim.phone, least, card, victim.totp()), "limit_exceeded")
        assert "200,000" in total.message
        assert client.balance(victim.phone) == 20_000 + 3_000 + 2 * limits.topup_max_yen
