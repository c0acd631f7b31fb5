"""Sign-up's second factors: the TOTP secret and the e-mail code are never stored in plain text, the
e-mail code expires and burns, TOTP codes are not replayable, and ``possim outbox`` shows the mail."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from payment_core import accounts, otp
from payment_core.config import CoreConfig, load_server_key
from payment_core.core import Core
from payment_core.models import Account, AuditEvent
from payment_core.server import ServerThread
from possim.cli import main
from protocol import ManualClock, ProtocolError
from tests.conftest import Database
from tests.support import PASSWORD, PHONE, mailbox, mailed_code, sign_up_verified, totp_now
from wallet_app.client import WalletClient

EMAIL = "sakura@example.jp"


def _all_values(core: Core, skip: set[str]) -> list[str]:
    """Every stored value of every table but ``skip``, as text (bytes both raw and hex)."""
    values: list[str] = []
    with core.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            if table in skip:
                continue
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, bytes):
                        values += [value.hex(), value.decode("latin-1")]
                    else:
                        values.append(str(value))
    return values


def test_sign_up_shows_the_totp_secret_once_and_mails_a_code_but_stores_neither(
    core: Core, server: ServerThread, database: Database, clock: ManualClock
) -> None:
    with WalletClient(server.url, clock=clock) as client:
        answer = client.sign_up(EMAIL, "+81 90-1234-5678", PASSWORD, "Sakura")
        assert set(answer) == {"object", "message"}  # nothing about the account before the address is proven
        code = mailed_code(core, EMAIL)
        made = client.verify_email(EMAIL, code)
    secret = str(made["totp_secret"])
    assert made["email_verified"] is True and made["phone"] == PHONE
    assert len(base64.b32decode(secret)) == 20
    assert made["totp_uri"].startswith("otpauth://totp/") and f"secret={secret}" in made["totp_uri"]
    assert len(code) == 6 and code not in json.dumps(made)
    recovery_codes = [str(item) for item in made["recovery_codes"]]
    assert len(set(recovery_codes)) == 10

    raw_secret = base64.b32decode(secret)
    everything = _all_values(core, skip=set())
    for value in everything:
        assert secret not in value and PASSWORD not in value
        assert not any(item in value or item.replace("-", "") in value for item in recovery_codes)
        assert raw_secret.hex() not in value and raw_secret.decode("latin-1") not in value
    # Only the mail itself (the user's simulated mailbox) holds the code.
    assert not [value for value in _all_values(core, skip={"outbox"}) if code in value]
    if database.schema is None:  # SQLite: the raw bytes of the file and its write-ahead log
        files = [Path(database.url), Path(database.url + "-wal")]
        raw = b"".join(path.read_bytes() for path in files if path.exists())
        for needle in (secret.encode(), raw_secret, PASSWORD.encode()):
            assert needle not in raw


def test_a_wrong_code_five_times_burns_it_and_a_new_one_is_mailed(
    core: Core, server: ServerThread, clock: ManualClock
) -> None:
    with WalletClient(server.url, clock=clock) as client:
        client.sign_up(EMAIL, PHONE, PASSWORD)
        right = mailed_code(core, EMAIL)
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        for _ in range(5):
            with pytest.raises(ProtocolError) as refused:
                client.verify_email(EMAIL, wrong)
            assert (refused.value.status, refused.value.code) == (401, "credentials_invalid")
        with pytest.raises(ProtocolError) as throttled:  # five failures from one address: it waits a second
            client.verify_email(EMAIL, right)
        assert (throttled.value.status, throttled.value.code) == (429, "rate_limited")
        clock.advance(2)
        with pytest.raises(ProtocolError) as burnt:
            client.verify_email(EMAIL, right)
        assert burnt.value.code == "credentials_invalid"
        client.resend_verification(EMAIL)  # within a minute of the last mail: nothing new is sent
        assert len(mailbox(core, EMAIL)) == 1
        clock.advance(61)
        client.resend_verification(EMAIL)
        assert len(mailbox(core, EMAIL)) == 2
        verified = client.verify_email(EMAIL, mailed_code(core, EMAIL))
        assert (verified["email"], verified["email_verified"]) == (EMAIL, True)
        client.resend_verification("nobody@example.jp")  # 202 whether or not the account exists
    assert mailbox(core, "nobody@example.jp") == []


def test_the_mailed_code_expires_after_fifteen_minutes(core: Core, server: ServerThread, clock: ManualClock) -> None:
    with WalletClient(server.url, clock=clock) as client:
        client.sign_up(EMAIL, PHONE, PASSWORD)
        core.drain()  # the mail is sent after the answer
        clock.advance(15 * 60)
        with pytest.raises(ProtocolError) as expired:
            client.verify_email(EMAIL, mailed_code(core, EMAIL))
        assert expired.value.code == "credentials_invalid"
        with pytest.raises(ProtocolError) as unknown:
            client.verify_email("nobody@example.jp", "123456")
        assert (unknown.value.code, unknown.value.message) == (expired.value.code, expired.value.message)


def test_sign_up_checks_the_phone_number(server: ServerThread, clock: ManualClock) -> None:
    with WalletClient(server.url, clock=clock) as client:
        for phone in ("12345", "+81-90-abcd-5678", "+8190123456789012"):
            with pytest.raises(ProtocolError) as bad:
                client.sign_up(EMAIL, phone, PASSWORD)
            assert (bad.value.status, bad.value.code) == (422, "parameter_invalid")


def _account(core: Core) -> Account:
    with core.transaction() as session:
        return session.scalars(select(Account).where(Account.email == EMAIL)).one()


def _check(core: Core, code: str | None) -> bool:
    with core.transaction() as session:
        account = session.get(Account, _account(core).id, with_for_update=True)
        assert account is not None
        return otp.accept_totp(session, core, account, code, core.now())


def test_a_totp_code_works_once_within_one_step_either_side(
    core: Core, server: ServerThread, clock: ManualClock
) -> None:
    with WalletClient(server.url, clock=clock) as client:
        secret = str(sign_up_verified(client, core, EMAIL)["totp_secret"])
    earlier = totp_now(secret, clock)
    clock.advance(30)
    current = totp_now(secret, clock)
    assert _check(core, current)
    assert not _check(core, current)  # replayed in its own window
    assert not _check(core, earlier)  # an older step after a newer one was used
    clock.advance(30)
    assert _check(core, totp_now(secret, clock))
    ahead = totp_now(secret, ManualClock(clock() + timedelta(seconds=30)))
    assert _check(core, ahead)  # a phone a step ahead
    assert not _check(core, None) and not _check(core, PASSWORD) and not _check(core, "12345a")


def test_ten_wrong_totp_codes_lock_the_account_for_a_while(
    core: Core, server: ServerThread, clock: ManualClock
) -> None:
    with WalletClient(server.url, clock=clock) as client:
        secret = str(sign_up_verified(client, core, EMAIL)["totp_secret"])
    right = totp_now(secret, clock)
    for _ in range(otp.TOTP_MAX_FAILURES):
        assert not _check(core, f"{(int(right) + 7) % 1_000_000:06d}")
    assert not _check(core, right)  # locked: even the right code
    clock.advance(otp.TOTP_LOCK_MINUTES * 60)
    assert _check(core, totp_now(secret, clock))
    with core.transaction() as session:
        results = session.scalars(select(AuditEvent.result).where(AuditEvent.action == "otp.check")).all()
    assert results.count("rejected") == otp.TOTP_MAX_FAILURES and "locked" in results


def test_possim_outbox_prints_the_mails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ["--db", str(tmp_path / "core.db"), "--key-file", str(tmp_path / "server.key")]
    core = Core(CoreConfig(db_url=str(tmp_path / "core.db"), server_key=load_server_key(tmp_path / "server.key")))
    core.migrate()
    accounts.sign_up(core, "ume@example.jp", PHONE, PASSWORD)
    accounts.sign_up(core, "momo@example.jp", PHONE, PASSWORD)
    code = mailed_code(core, "ume@example.jp")
    core.close()

    assert main(["outbox", *store, "--json"]) == 0
    lines: list[dict[str, Any]] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["to"] for line in lines] == ["ume@example.jp", "momo@example.jp"]
    assert lines[0]["channel"] == "email" and code in lines[0]["body"]
    assert set(lines[0]) == {"id", "channel", "to", "subject", "body", "created"}

    assert main(["outbox", *store, "--to", "momo@example.jp", "--json", "--limit", "5"]) == 0
    assert [json.loads(line)["to"] for line in capsys.readouterr().out.splitlines()] == ["momo@example.jp"]
    assert main(["outbox", *store, "--limit", "1"]) == 0
    shown = capsys.readouterr().out
    assert "momo@example.jp" in shown and "ume@example.jp" not in shown
