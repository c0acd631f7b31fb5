"""Secrets never appear in logs, and every account action is audited with who, what, from where and
the result. The whole account life runs through the real server with every logger at DEBUG; then the
captured log records (all threads: the server's, the deferred mail work's, the client's) are searched
for every secret the run handled."""

from __future__ import annotations

import base64
import logging

import pytest
from sqlalchemy import select

from payment_core.core import Core
from payment_core.models import AuditEvent
from payment_core.server import ServerThread
from protocol import ManualClock, ProtocolError
from tests.security.conftest import enroll_body, from_address
from tests.support import PASSWORD, PHONE, mailed_code, mailed_reset_token, totp_now
from wallet_app.client import WalletClient

EMAIL = "secretive@example.jp"
NEW_PASSWORD = "another long passphrase 77"


def test_no_secret_reaches_a_log_and_every_step_is_audited_with_its_source(
    core: Core, server: ServerThread, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets_seen: list[str] = [PASSWORD, NEW_PASSWORD]
    with WalletClient(server.url, clock=clock) as client:
        client.sign_up(EMAIL, PHONE, PASSWORD)
        code = mailed_code(core, EMAIL)
        kit = client.verify_email(EMAIL, code)
        totp_secret = str(kit["totp_secret"])
        clock.advance(30)
        otp = totp_now(totp_secret, clock)
        phone = client.enroll(EMAIL, PASSWORD, otp, "phone")
        access, phone = client.refresh(phone)
        assert phone.refresh_token is not None
        secrets_seen += [code, totp_secret, otp, access, phone.refresh_token, *kit["recovery_codes"]]
        secrets_seen += [base64.urlsafe_b64encode(phone.secret).decode().rstrip("="), phone.secret.hex()]
        with pytest.raises(ProtocolError):
            client.topup_card(phone, 1_000, "4242424242424242", PASSWORD)  # the password as a factor: refused
        client.request_password_reset(EMAIL)
        token = mailed_reset_token(core, EMAIL)
        secrets_seen.append(token)
        client.reset_password(token, NEW_PASSWORD)
    with from_address(server.url, "127.0.0.77") as stranger:
        stranger.post("/v1/devices", json=enroll_body(EMAIL, "a wrong password here", "000000"))
    core.drain()
    logged = "\n".join(f"{record.name} {record.getMessage()} {record.args!r}" for record in caplog.records)
    assert caplog.records, "nothing was logged at all: the check would prove nothing"
    for secret in secrets_seen:
        assert secret not in logged
    with core.transaction() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    text = "\n".join(f"{e.actor} {e.action} {e.target} {e.result} {e.detail}" for e in events)
    for secret in secrets_seen:
        assert secret not in text
    actions = {(e.action, e.result, e.source) for e in events}
    for wanted in (
        ("account.create", "succeeded", "127.0.0.1"),
        ("account.verify", "succeeded", "127.0.0.1"),
        ("recovery_codes.issue", "succeeded", "127.0.0.1"),
        ("device.enroll", "succeeded", "127.0.0.1"),
        ("session.start", "succeeded", "127.0.0.1"),
        ("session.refresh", "succeeded", "127.0.0.1"),
        ("otp.check", "rejected", "127.0.0.1"),
        ("password.reset_request", "sent", "127.0.0.1"),
        ("password.reset", "succeeded", "127.0.0.1"),
        ("device.revoke", "succeeded", "127.0.0.1"),
        ("session.revoke_all", "succeeded", "127.0.0.1"),
        ("signin.new_device", "failed", "127.0.0.77"),
    ):
        assert wanted in actions, wanted
    assert all(event.source for event in events)
