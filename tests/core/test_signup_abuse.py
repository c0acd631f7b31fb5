"""Issue 13: the e-mail verification code could be brute-forced by signing up again.

Signing up again with an unverified address mailed a fresh code and reset its five tries at once, so one
client guessed 450 codes in 45 s at someone else's address. Now an address gets a code at most once a
minute and ``EMAIL_CODES_PER_DAY`` times a day, and takes ``EMAIL_TRIES_PER_DAY`` wrong codes a day across
all of them; each refusal answers exactly like any other failure, so the caps tell nothing about accounts.
The attacker here changes source address for every round, so the per-address throttles are not what
stops it.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from payment_core import otp
from payment_core.core import Core
from payment_core.models import AuditEvent, EmailVerification
from payment_core.server import ServerThread
from protocol import ManualClock
from tests.security.conftest import from_address
from tests.support import PASSWORD, PHONE, mailbox, mailed_code

TARGET = "someone.else@example.jp"  # an address the attacker does not own
SIGNUP_SUBJECT_TEXT = "your possim verification code is"


def _sign_up(core: Core, server: ServerThread, source: str, email: str = TARGET) -> httpx.Response:
    body = {"email": email, "phone": PHONE, "password": PASSWORD}
    with from_address(server.url, source) as client:
        answer = client.post("/v1/accounts", json=body)
    core.drain()  # the work is done after the answer, at the clock's time then: let it before the clock moves
    return answer


def _verify(server: ServerThread, source: str, code: str, email: str = TARGET) -> httpx.Response:
    with from_address(server.url, source) as client:
        return client.post("/v1/accounts/verify", json={"email": email, "code": code})


def _wrong(right: str, n: int) -> str:
    return f"{(int(right) + 1 + n) % 1_000_000:06d}"


def _codes_mailed(core: Core, email: str = TARGET) -> int:
    return sum(SIGNUP_SUBJECT_TEXT in body for body in mailbox(core, email))


def _events(core: Core, action: str, result: str) -> int:
    with core.transaction() as session:
        query = select(func.count()).where(AuditEvent.action == action, AuditEvent.result == result)
        return int(session.execute(query).scalar_one())


def _answer(response: httpx.Response) -> tuple[int, Any]:
    return response.status_code, response.json()


def test_signing_up_again_at_once_neither_mails_a_code_nor_resets_the_tries(
    core: Core, server: ServerThread, clock: ManualClock
) -> None:
    assert _sign_up(core, server, "127.0.5.1").status_code == 202
    right = mailed_code(core, TARGET)
    for n in range(3):
        assert _verify(server, "127.0.5.2", _wrong(right, n)).status_code == 401
    assert _sign_up(core, server, "127.0.5.3").status_code == 202  # the same second: no new code, tries stand
    assert _codes_mailed(core) == 1
    with core.transaction() as session:
        pending = session.scalars(select(EmailVerification)).one()
        assert pending.attempts == 3
    for n in range(3, 5):
        assert _verify(server, "127.0.5.4", _wrong(right, n)).status_code == 401
    assert _verify(server, "127.0.5.5", right).status_code == 401  # five wrong: the code is burnt
    assert _events(core, "account.signup", "throttled") == 1
    assert _events(core, otp.CODE_SENT, "throttled") == 1


def test_a_day_of_signing_up_again_buys_a_bounded_number_of_guesses(
    core: Core, server: ServerThread, clock: ManualClock
) -> None:
    """The attack as reported, with a fresh source address every round: sign up, five wrong codes, again."""
    for round_ in range(12):
        clock.advance(61)
        assert _sign_up(core, server, f"127.0.6.{round_ + 1}").status_code == 202
        right = mailed_code(core, TARGET)  # the newest code in the mailbox (the attacker never sees it)
        for n in range(otp.EMAIL_CODE_MAX_TRIES):
            assert _verify(server, f"127.0.7.{round_ + 1}", _wrong(right, n)).status_code == 401
    # 60 guesses were sent; only two codes were ever mailed, five guesses each: ten chances in a million.
    assert otp.EMAIL_TRIES_PER_DAY // otp.EMAIL_CODE_MAX_TRIES == 2
    assert _codes_mailed(core) == 2
    assert _events(core, otp.CODE_SENT, "succeeded") == 2
    assert _events(core, "account.signup", "replaced_unverified") == 1
    assert _events(core, "account.signup", "throttled") == 10  # each later sign-up changed nothing
    # The right code itself is refused now, exactly like a wrong one and like an address nobody has.
    clock.advance(61)
    capped = _verify(server, "127.0.8.1", mailed_code(core, TARGET))
    unknown = _verify(server, "127.0.8.2", "123456", email="nobody@example.jp")
    assert _answer(capped) == _answer(unknown)
    assert capped.status_code == 401
    # ... and signing up again answers like a sign-up with a free address, but mails nothing.
    mailed = _codes_mailed(core)
    again, free = _sign_up(core, server, "127.0.8.3"), _sign_up(core, server, "127.0.8.4", "free@example.jp")
    assert _answer(again) == _answer(free)
    assert _codes_mailed(core) == mailed
    assert _codes_mailed(core, "free@example.jp") == 1
    # A day later the owner of the address can still finish: the caps are per day, not for ever.
    clock.advance(24 * 3600)
    assert _sign_up(core, server, "127.0.8.5").status_code == 202
    verified = _verify(server, "127.0.8.6", mailed_code(core, TARGET))
    assert verified.status_code == 200 and verified.json()["email_verified"] is True


def _resend(core: Core, server: ServerThread, source: str) -> None:
    with from_address(server.url, source) as client:
        assert client.post("/v1/accounts/verify/resend", json={"email": TARGET}).status_code == 202
    core.drain()  # the mail goes out after the answer, at the clock's time then: let it before the clock moves


def test_resend_counts_towards_the_same_daily_cap(core: Core, server: ServerThread, clock: ManualClock) -> None:
    assert _sign_up(core, server, "127.0.9.1").status_code == 202
    for n in range(otp.EMAIL_CODES_PER_DAY + 3):
        clock.advance(61)
        _resend(core, server, f"127.0.9.{n + 2}")
    assert _codes_mailed(core) == otp.EMAIL_CODES_PER_DAY
    assert _events(core, otp.CODE_SENT, "throttled") == 4  # 8 resends: 4 mailed (5 with the sign-up's), 4 not


def test_the_daily_tries_run_across_codes_and_then_even_the_right_code_is_refused(
    core: Core, server: ServerThread, clock: ManualClock
) -> None:
    """Four wrong codes on each of three mailed codes: the tenth wrong try of the day is the last one checked."""
    assert _sign_up(core, server, "127.0.11.1").status_code == 202
    for round_ in range(3):
        if round_:
            clock.advance(61)
            _resend(core, server, f"127.0.11.{round_ + 1}")
        right = mailed_code(core, TARGET)
        for n in range(4 if round_ < 2 else 2):
            assert _verify(server, f"127.0.12.{round_ + 1}", _wrong(right, n)).status_code == 401
    assert _codes_mailed(core) == 3 and _events(core, otp.CODE_CHECK, "rejected") == otp.EMAIL_TRIES_PER_DAY
    # The third code has had two tries only, but the address has had its ten: the right code is refused.
    assert _answer(_verify(server, "127.0.12.9", right)) == _answer(_verify(server, "127.0.12.10", "000000", "x@y.jp"))
    assert _events(core, otp.CODE_CHECK, "locked") == 1
    with core.transaction() as session:
        assert session.scalars(select(EmailVerification.code_hash)).one() is None  # burnt
    clock.advance(61)
    _resend(core, server, "127.0.11.9")
    assert _codes_mailed(core) == 3  # no more codes today: none could be checked


def test_an_address_with_an_account_is_told_of_sign_ups_a_few_times_a_day_only(
    core: Core, server: ServerThread, clock: ManualClock
) -> None:
    assert _sign_up(core, server, "127.0.10.1").status_code == 202
    assert _verify(server, "127.0.10.2", mailed_code(core, TARGET)).status_code == 200
    for n in range(otp.EMAIL_CODES_PER_DAY + 4):
        clock.advance(61)
        assert _sign_up(core, server, f"127.0.10.{n + 3}").status_code == 202
    notices = [body for body in mailbox(core, TARGET) if "Someone tried to open a possim wallet" in body]
    assert len(notices) == otp.EMAIL_CODES_PER_DAY
    assert _events(core, "account.signup", "refused_exists") == otp.EMAIL_CODES_PER_DAY + 4
