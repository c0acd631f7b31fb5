"""Issue 13: anyone's newer reset request voided the owner's pending reset code, and a new source address
for each request got past the per-address cap. With ten wrong passwords every half hour (the account lock)
a stranger could keep the owner out for good: locked out of signing in, and every reset code they were
mailed voided by the stranger's next request before they could use it.

Now a newer request leaves the codes already mailed good until they expire or one of them is used (then
all are void), and an account gets at most ``reset_mails_per_account_hour`` reset mails an hour whoever
asks, silently: the answer is the same 202 as for an address with no account."""

from __future__ import annotations

import json
import re
from itertools import count
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from payment_core.core import Core
from payment_core.models import AuditEvent
from payment_core.server import ServerThread
from protocol import ManualClock, ProtocolError
from tests.security.conftest import Victim, enroll_body, from_address
from tests.support import PASSWORD, mailbox
from wallet_app.client import WalletClient

NEW_PASSWORD = "a brand new passphrase 2026"
_ADDRESSES = count(1)


@pytest.fixture
def victim(core: Core, server: ServerThread, clock: ManualClock) -> Victim:
    return Victim(core, server, clock)


def _ask(server: ServerThread, core: Core, email: str) -> httpx.Response:
    """A reset request from an address never used before (the attacker rotates them); its mail is sent."""
    number = next(_ADDRESSES)
    with from_address(server.url, f"127.0.{100 + number // 200}.{1 + number % 200}") as client:
        answer = client.post("/v1/password-reset", json={"email": email})
    core.drain()
    return answer


def _codes(core: Core, email: str) -> list[str]:
    """Every reset code mailed to ``email``, oldest first."""
    found = [re.search(r"Reset code: (\S+)", body) for body in reversed(mailbox(core, email))]
    return [match.group(1) for match in found if match]


def _requests(core: Core) -> list[tuple[str, dict[str, Any]]]:
    with core.transaction() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "password.reset_request").order_by(AuditEvent.id)
        ).all()
    return [(row.result, json.loads(row.detail)) for row in rows]


def _refused(call: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as refused:
        call()
    return refused.value


def test_a_strangers_reset_requests_no_longer_keep_a_locked_out_owner_from_resetting(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim
) -> None:
    limit = core.config.throttling
    # The attack, step 1: ten wrong passwords from ten addresses lock the owner's password sign-in.
    for index in range(limit.account_max_failures):
        with from_address(server.url, f"127.0.5.{index + 1}") as stranger:
            guess = stranger.post("/v1/devices", json=enroll_body(victim.email, f"guess number {index}", "000000"))
        assert guess.status_code == 401
    with WalletClient(server.url, clock=clock) as client:
        assert _refused(lambda: client.enroll(victim.email, PASSWORD, victim.totp(), "own phone")).status == 401
    # The owner asks for a reset and gets a code.
    assert _ask(server, core, victim.email).status_code == 202
    (owners_code,) = _codes(core, victim.email)
    # The attack, step 2: ask for the owner's reset again and again, each time from a new address, so the
    # per-address cap never sees a second request.
    answers = []
    for _ in range(6):
        clock.advance(60)
        answers.append(_ask(server, core, victim.email))
    nobody = _ask(server, core, "nobody@example.jp")
    # Every answer is the one an address without an account gets: the cap tells nothing.
    assert {(answer.status_code, answer.text) for answer in answers} == {(nobody.status_code, nobody.text)}
    assert nobody.status_code == 202
    # The owner's mailbox got at most the cap (the owner's and two more), the rest were dropped and audited.
    mailed = _codes(core, victim.email)
    assert len(mailed) == limit.reset_mails_per_account_hour and mailed[0] == owners_code
    results = [result for result, _detail in _requests(core)]
    assert results == ["sent", "sent", "sent", "throttled", "throttled", "throttled", "throttled", "no_account"]
    assert all(owners_code not in json.dumps(detail) for _result, detail in _requests(core))
    # It fails: the owner's code, the oldest, still works; the reset ends the lock and voids the others.
    with WalletClient(server.url, clock=clock) as client:
        done = client.reset_password(owners_code, NEW_PASSWORD)
        assert done["password_changed"] is True
        for later in mailed[1:]:
            assert _refused(lambda later=later: client.reset_password(later, NEW_PASSWORD + "!")).status == 401
        assert client.enroll(victim.email, NEW_PASSWORD, victim.totp(), "own phone").device_id > 0
    with core.transaction() as session:
        resets = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "password.reset").order_by(AuditEvent.id)
        ).all()
    assert [row.result for row in resets] == ["succeeded"] + ["refused_token"] * (len(mailed) - 1)
    assert json.loads(resets[0].detail)["other_codes_voided"] == len(mailed) - 1


def test_every_code_sent_stays_good_until_it_expires_or_one_is_used(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim
) -> None:
    minutes = core.config.sessions.reset_token_minutes
    for _ in range(3):
        _ask(server, core, victim.email)
        clock.advance(60)
    first, second, third = _codes(core, victim.email)
    clock.advance((minutes - 3) * 60)  # the first has just expired, the second has a minute left
    with WalletClient(server.url, clock=clock) as client:
        assert _refused(lambda: client.reset_password(first, NEW_PASSWORD)).status == 401
        assert client.reset_password(second, NEW_PASSWORD)["password_changed"] is True  # not the newest
        assert _refused(lambda: client.reset_password(third, NEW_PASSWORD + "!")).status == 401  # void now
        assert client.enroll(victim.email, NEW_PASSWORD, victim.totp(), "own phone").device_id > 0


def test_the_cap_is_per_account_over_an_hour_and_never_leaves_the_owner_without_a_good_code(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim
) -> None:
    cap = core.config.throttling.reset_mails_per_account_hour
    minutes = core.config.sessions.reset_token_minutes
    for _ in range(cap + 2):
        assert _ask(server, core, victim.email).status_code == 202
    assert len(_codes(core, victim.email)) == cap
    # Every code mailed has expired: the next request is mailed, though the hour is not over, so the
    # cap itself cannot leave the owner without a code that works...
    clock.advance(minutes * 60)
    _ask(server, core, victim.email)
    assert len(_codes(core, victim.email)) == cap + 1
    # ...but while that one is good, the hour's cap holds.
    clock.advance(60)
    _ask(server, core, victim.email)
    assert len(_codes(core, victim.email)) == cap + 1
    # An hour after the first mails, the window has moved on them.
    clock.advance(3600 - minutes * 60)
    _ask(server, core, victim.email)
    assert len(_codes(core, victim.email)) == cap + 2
    results = [result for result, _detail in _requests(core)]
    assert results == ["sent"] * cap + ["throttled"] * 2 + ["sent", "throttled", "sent"]
    throttled = [detail for result, detail in _requests(core) if result == "throttled"]
    assert throttled[-1] == {"mails_this_hour": cap + 1, "codes_still_good": 1}
    # The code mailed last works, once.
    last = _codes(core, victim.email)[-1]
    with WalletClient(server.url, clock=clock) as client:
        assert client.reset_password(last, NEW_PASSWORD)["password_changed"] is True
        assert _refused(lambda: client.reset_password(last, NEW_PASSWORD + "!")).status == 401
