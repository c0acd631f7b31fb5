"""One test per door 7pay left open (July 2019): each first walks the attack step, then shows it fail.

The attacker's traffic goes to the core on 127.0.0.1 only, from its own loopback address, and every
loop is bounded in count and in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import func, select

from payment_core.config import Defences
from payment_core.core import Core
from payment_core.models import AddressBlock, AuditEvent, Device, OutboxMessage, Topup
from payment_core.server import ServerThread
from possim.world import new_core, serve
from protocol import ManualClock, ProtocolError
from tests.conftest import Database
from tests.security.conftest import ATTACKER_MAIL, Victim, enroll_body, from_address
from tests.support import PASSWORD, PHONE, error_code, mailbox, mailed_code, mailed_reset_token
from wallet_app.client import WalletClient

SPRAY_ACCOUNTS = 1_000
SPRAY_DEADLINE_SECONDS = 240.0


def _devices(core: Core, account_id: int) -> int:
    with core.transaction() as session:
        return int(session.execute(select(func.count()).where(Device.account_id == account_id)).scalar_one())


def _audit(core: Core, action: str) -> list[AuditEvent]:
    with core.transaction() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_door_list_attack_with_the_correct_leaked_password_but_no_second_factor(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim, attacker: httpx.Client
) -> None:
    # The attack step: the leaked list holds the victim's real e-mail and password; at 7pay that was enough.
    attempts = {
        "no code": enroll_body(victim.email, PASSWORD, None),
        "guessed code": enroll_body(victim.email, PASSWORD, "123456"),
        "password as code": enroll_body(victim.email, PASSWORD, PASSWORD),
    }
    answers = {}
    for name, body in attempts.items():
        clock.advance(10)  # past the address's backoff: each try is judged on its factor, not throttled
        answers[name] = attacker.post("/v1/devices", json=body)
    clock.advance(10)
    wrong_password = attacker.post("/v1/devices", json=enroll_body(victim.email, "not the password!", "123456"))
    # It fails: the same 401 as a wrong password, no device, no token, nothing to mint codes with.
    for answer in [*answers.values(), wrong_password]:
        assert (answer.status_code, error_code(answer)) == (401, "credentials_invalid"), answer.text
        assert answer.json() == wrong_password.json()
        assert "device_secret" not in answer.text and "token" not in answer.text
    assert _devices(core, victim.phone.account_id) == 1
    # The owner learns the password is out (once an hour, not once per try), on the phone and by mail.
    warnings = [body for body in mailbox(core, victim.email) if "without\nthe code from your authenticator" in body]
    assert len(warnings) == 1
    with WalletClient(server.url, clock=clock) as client:
        kinds = [notice["kind"] for notice in client.notifications(victim.phone)]
    assert "security" in kinds
    refused = [event for event in _audit(core, "device.enroll") if event.result == "refused_second_factor"]
    assert len(refused) == 3 and {event.source for event in refused} == {"127.0.0.66"}


def test_door_reset_mail_redirected_to_an_address_the_attacker_typed(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim, attacker: httpx.Client
) -> None:
    # The attack step: 7pay's reset form took a second address to send the reset to.
    tricks = [
        {"email": victim.email, "send_to": ATTACKER_MAIL},
        {"email": victim.email, "email_to": ATTACKER_MAIL},
        {"email": [victim.email, ATTACKER_MAIL]},
        {"email": f"{victim.email},{ATTACKER_MAIL}"},
        {"email": f"{victim.email}\nBcc: {ATTACKER_MAIL}"},
        {"email": f"{victim.email} {ATTACKER_MAIL}"},
    ]
    for body in tricks:
        answer = attacker.post("/v1/password-reset", json=body)
        assert (answer.status_code, error_code(answer)) == (422, "parameter_invalid"), (body, answer.text)
    # It fails: the only thing the form takes is the account's address, and the mail goes to the address on
    # record (whatever case or spaces were typed), never anywhere else; the answer is the same as for nobody.
    sent = attacker.post("/v1/password-reset", json={"email": f"  {victim.email.upper()} "})
    nobody = attacker.post("/v1/password-reset", json={"email": "nobody@example.jp"})
    assert sent.status_code == nobody.status_code == 202 and sent.json() == nobody.json()
    assert mailbox(core, ATTACKER_MAIL) == [] and mailbox(core, "nobody@example.jp") == []
    assert len([body for body in mailbox(core, victim.email) if "Reset code:" in body]) == 1
    with core.transaction() as session:
        recipients = set(session.scalars(select(OutboxMessage.to)))
    assert recipients == {victim.email}
    assert [event.result for event in _audit(core, "password.reset_request")] == ["sent", "no_account"]


def test_door_silent_sign_in_on_a_new_device(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim, attacker: httpx.Client
) -> None:
    # The attack step: sign in on a new phone with the password alone; 7pay let it in and told no one.
    clock.advance(10)
    silent = attacker.post("/v1/devices", json=enroll_body(victim.email, PASSWORD, None, "new phone"))
    assert silent.status_code == 401 and _devices(core, victim.phone.account_id) == 1
    # It fails; and even a sign-in with both factors (the owner's own new tablet) is announced to every
    # other device and to the registered address.
    before = len(mailbox(core, victim.email))
    with WalletClient(server.url, clock=clock) as client:
        tablet = client.enroll(victim.email, PASSWORD, victim.totp(), "tablet")
        notices = client.notifications(victim.phone)
        assert [notice["kind"] for notice in notices if notice["kind"] == "new_device"] == ["new_device"]
        assert "tablet" in next(n["message"] for n in notices if n["kind"] == "new_device")
        assert client.notifications(tablet) == [] or all(
            n["kind"] != "new_device" for n in client.notifications(tablet)
        )
        # A device limit: the account holds at most five phones.
        for index in range(3):
            client.enroll(victim.email, PASSWORD, victim.totp(), f"phone {index + 3}")
        try:
            client.enroll(victim.email, PASSWORD, victim.totp(), "sixth phone")
            raise AssertionError("a sixth device was enrolled")
        except ProtocolError as full:
            assert (full.status, full.code) == (409, "device_limit_reached")
        # Revoke from any device: the tablet signs out the first phone, whose codes then fail.
        client.revoke_device(tablet, victim.phone.device_id)
    new_mail = mailbox(core, victim.email)[: len(mailbox(core, victim.email)) - before]
    assert any("A new device signed in to your possim wallet: tablet" in body for body in new_mail)
    assert _devices(core, victim.phone.account_id) == 5


def test_door_top_up_with_the_login_password(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim
) -> None:
    clock.advance(core.config.limits.new_device_hours * 3600 + 60)  # an established phone: only the factor matters
    with WalletClient(server.url, clock=clock) as client:
        # The attack step: at 7pay the top-up password could be the login password an attacker already had.
        for guess in (PASSWORD, "correct horse", None):
            try:
                client.topup_card(victim.phone, 50_000, "4242424242424242", guess or "", topup_id="stolen")
                raise AssertionError("a top-up went through without the second factor")
            except ProtocolError as refused:
                assert (refused.status, refused.code) == (401, "credentials_invalid")
        with core.transaction() as session:
            assert session.execute(select(func.count()).select_from(Topup)).scalar_one() == 0
        assert client.balance(victim.phone) == 0
        # It fails; the owner's authenticator code works.
        done = client.topup_card(victim.phone, 50_000, "4242424242424242", victim.totp(), topup_id="owner")
        assert done["status"] == "succeeded" and client.balance(victim.phone) == 50_000


def test_door_one_address_spraying_a_thousand_accounts_is_blocked_and_audited(
    core: Core, server: ServerThread, clock: ManualClock
) -> None:
    # Three of the thousand leaked pairs are real accounts with their real passwords.
    real = [Victim(core, server, clock, f"real{index}@example.jp") for index in range(3)]
    leaked = [(f"user{index:04d}@leak.example", f"leaked password {index:04d}") for index in range(SPRAY_ACCOUNTS)]
    for index, victim in zip((7, 500, 999), real, strict=True):
        leaked[index] = (victim.email, PASSWORD)
    statuses: list[int] = []
    retry_after: set[str] = set()
    deadline = time.monotonic() + SPRAY_DEADLINE_SECONDS
    with from_address(server.url, "127.0.0.66") as spray:
        for email, password in leaked:  # bounded: 1,000 tries and a deadline
            if time.monotonic() > deadline:
                raise AssertionError(f"the spray took longer than {SPRAY_DEADLINE_SECONDS} s")
            answer = spray.post(
                "/v1/devices",
                json=enroll_body(email, password, "000000"),
                headers={"x-forwarded-for": f"198.51.100.{len(statuses) % 250}"},
            )
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                retry_after.add(answer.headers["retry-after"])
    # Blocked: after a handful of real password checks every try is refused before any work, whatever
    # X-Forwarded-For says (the peer is not a trusted proxy, so the header is ignored).
    assert set(statuses) <= {401, 429}
    limit = core.config.throttling
    assert statuses.count(401) <= limit.free_failures + 1
    assert statuses.count(429) >= SPRAY_ACCOUNTS - limit.list_attack_accounts
    assert statuses[-500:] == [429] * 500 and retry_after
    for victim in real:
        assert _devices(core, victim.phone.account_id) == 1
    with core.transaction() as session:
        block = session.get(AddressBlock, "127.0.0.66")
    assert block is not None and block.reason == "list_attack"
    assert block.accounts_tried >= limit.list_attack_accounts and block.refused >= SPRAY_ACCOUNTS - 2 * 20
    signals = _audit(core, "signin.list_attack")
    assert len(signals) == 1 and signals[0].target == "address:127.0.0.66" and signals[0].source == "127.0.0.66"
    # A customer on another address is not caught by the block.
    with WalletClient(server.url, clock=clock) as client:
        assert client.enroll(real[1].email, PASSWORD, real[1].totp(), "own new phone").device_id > 0
    # The block lasts its time, then the address is judged afresh.
    clock.advance(limit.list_attack_block_minutes * 60 + 1)
    with from_address(server.url, "127.0.0.66") as spray:
        again = spray.post("/v1/devices", json=enroll_body("user0001@leak.example", "x" * 12, "000000"))
    assert again.status_code == 401


def test_door_account_enumeration_by_message(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim
) -> None:
    """Every answer that could tell whether an address has an account is the same for one that has not.
    (Timing is compared statistically in tests/security/test_enumeration_timing.py.)"""
    pairs: dict[str, Callable[[str], dict[str, Any]]] = {
        "/v1/accounts": lambda email: {"email": email, "phone": PHONE, "password": "a fresh passphrase 42"},
        "/v1/accounts/verify/resend": lambda email: {"email": email},
        "/v1/password-reset": lambda email: {"email": email},
        "/v1/accounts/verify": lambda email: {"email": email, "code": "123456"},
        "/v1/devices": lambda email: enroll_body(email, "wrong password!", "123456"),
    }
    for number, (path, body) in enumerate(pairs.items()):
        clock.advance(30)
        with from_address(server.url, f"127.0.1.{number + 1}") as client:
            known = client.post(path, json=body(victim.email))
            clock.advance(30)
            unknown = client.post(path, json=body(f"nobody{number}@example.jp"))
        assert (known.status_code, known.json()) == (unknown.status_code, unknown.json()), path
        assert set(known.headers) - {"date", "content-length"} == set(unknown.headers) - {"date", "content-length"}
    # The sign-up with a taken address told the owner instead, and changed nothing.
    assert any(
        "Someone tried to open a possim wallet with this address" in body for body in mailbox(core, victim.email)
    )
    assert mailed_code(core, "nobody0@example.jp")  # the free address got its verification code


def test_the_7pay_replays_open_reset_door_is_real_and_only_opened_by_its_config(
    database: Database, clock: ManualClock
) -> None:
    # `possim attack --defenses 7pay` replays 7pay's form (payment_core.config.Defences): the second address
    # is taken and the code goes there, so whoever knows the e-mail takes the account without its password.
    weakened = new_core(
        database.url,
        db_schema=database.schema,
        clock=clock,
        defences=Defences(reset_mail_to_own_address_only=False, second_factor_for_new_phones=False),
    )
    try:
        with serve(weakened) as server, from_address(server.url, "127.0.0.66") as attacker:
            victim = Victim(weakened, server, clock)
            answer = attacker.post("/v1/password-reset", json={"email": victim.email, "send_to": ATTACKER_MAIL})
            assert answer.status_code == 202
            assert [body for body in mailbox(weakened, victim.email) if "Reset code:" in body] == []
            stolen = mailed_reset_token(weakened, ATTACKER_MAIL)
            taken = attacker.post(
                "/v1/password-reset/confirm", json={"token": stolen, "new_password": "the-thief-chose-this"}
            )
            assert taken.status_code == 200, taken.text
            with WalletClient(server.url, clock=clock) as thief:
                phone = thief.enroll(victim.email, "the-thief-chose-this", "000000", "thief's phone")
            assert phone.account_id == victim.phone.account_id
        requests = _audit(weakened, "password.reset_request")
        assert [(event.result, '"sent_to_another_address": true' in event.detail) for event in requests] == [
            ("sent", True)
        ]
    finally:
        weakened.close()
