"""Account enumeration by timing, proved by the work each answer costs rather than by a stopwatch.

An answer about an existing account must cost the same as one about an address nobody has: the same
argon2 work, the same SQL statements before the answer, the same queued job, the same answer. Counting
the work is exact on a loaded machine, where wall-clock comparisons are not; the wall-clock comparison
(interleaved samples, Mann-Whitney U) lives in ``possim bench --only enumeration``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select

from payment_core import passwords, queued_work
from payment_core.core import Core
from payment_core.models import AuditEvent
from payment_core.server import ServerThread
from protocol import ManualClock
from tests.security.conftest import Victim, enroll_body, from_address
from tests.support import PHONE


@dataclass
class Work:
    """What one request cost before its answer was sent."""

    argon2_verifies: int = 0
    argon2_hashes: int = 0
    statements: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)  # the kinds of work queued for after the answer

    def shape(self) -> tuple[int, int, list[str], list[str]]:
        return self.argon2_verifies, self.argon2_hashes, self.statements, self.queued


_LITERALS = re.compile(r"'[^']*'|\b\d+\b")


@contextmanager
def metered(core: Core, monkeypatch: pytest.MonkeyPatch) -> Iterator[Work]:
    """Count argon2 calls, SQL statements and the work queued for after the answer, which waits meanwhile
    (no runner thread does it while the statements are counted)."""
    work = Work()
    enqueue = queued_work.enqueue

    def counted_enqueue(core: Core, kind: str, payload: dict[str, Any]) -> None:
        work.queued.append(kind)
        enqueue(core, kind, payload)

    verify, hash_ = passwords.PasswordHasher.verify, passwords.PasswordHasher.hash

    def counted_verify(self: passwords.PasswordHasher, stored: str, password: str) -> bool:
        work.argon2_verifies += 1
        return verify(self, stored, password)

    def counted_hash(self: passwords.PasswordHasher, password: str) -> str:
        work.argon2_hashes += 1
        return hash_(self, password)

    def on_statement(*args: Any) -> None:
        work.statements.append(_LITERALS.sub("?", str(args[2])))

    with monkeypatch.context() as patch:
        patch.setattr(passwords.PasswordHasher, "verify", counted_verify)
        patch.setattr(passwords.PasswordHasher, "hash", counted_hash)
        patch.setattr(queued_work, "enqueue", counted_enqueue)
        patch.setattr(core, "config", dataclasses.replace(core.config, queued_work_runner=False))
        event.listen(core.engine, "before_cursor_execute", on_statement)
        try:
            yield work
        finally:
            event.remove(core.engine, "before_cursor_execute", on_statement)


def _answer(response: httpx.Response) -> tuple[int, Any]:
    return response.status_code, response.json()


@dataclass
class Measured:
    work: Work
    answer: tuple[int, Any]


def _measure(
    core: Core, monkeypatch: pytest.MonkeyPatch, server: ServerThread, address: str, path: str, body: dict[str, Any]
) -> Measured:
    # A fresh source address for each request: the per-address throttle is not what is compared here.
    with from_address(server.url, address) as client, metered(core, monkeypatch) as work:
        answer = _answer(client.post(path, json=body))
    return Measured(work, answer)


def test_a_wrong_password_costs_one_argon2_check_whether_or_not_the_account_exists(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = _measure(
        core, monkeypatch, server, "127.0.8.1", "/v1/devices", enroll_body(victim.email, "wrong password 1", "123456")
    )
    clock.advance(60)
    unknown = _measure(
        core,
        monkeypatch,
        server,
        "127.0.8.2",
        "/v1/devices",
        enroll_body("nobody@example.jp", "wrong password 1", "123456"),
    )
    assert known.answer == unknown.answer
    assert known.answer[0] == 401
    assert (known.work.argon2_verifies, known.work.argon2_hashes) == (1, 0)
    assert (unknown.work.argon2_verifies, unknown.work.argon2_hashes) == (1, 0)
    assert known.work.queued == unknown.work.queued == []


def test_a_request_refused_before_password_work_costs_no_argon2(
    core: Core, server: ServerThread, victim: Victim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The meter can tell the difference the timing harness was shown to see: a 422 does no argon2 work."""
    refused = _measure(core, monkeypatch, server, "127.0.8.3", "/v1/devices", {"email": victim.email})
    assert refused.answer[0] == 422
    assert (refused.work.argon2_verifies, refused.work.argon2_hashes) == (0, 0)


@pytest.mark.parametrize(
    ("path", "taken_body", "free_body", "hashes"),
    [
        (
            "/v1/accounts",
            {"email": "victim@example.jp", "phone": PHONE, "password": "a fresh passphrase 42"},
            {"email": "new@example.jp", "phone": PHONE, "password": "a fresh passphrase 42"},
            1,  # the new password's hash, queued in place of the password
        ),
        ("/v1/password-reset", {"email": "victim@example.jp"}, {"email": "nobody@example.jp"}, 0),
        ("/v1/accounts/verify/resend", {"email": "victim@example.jp"}, {"email": "nobody@example.jp"}, 0),
    ],
    ids=["sign-up", "reset", "resend"],
)
def test_sign_up_reset_and_resend_answer_before_any_account_work(
    core: Core,
    server: ServerThread,
    clock: ManualClock,
    victim: Victim,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    taken_body: dict[str, Any],
    free_body: dict[str, Any],
    hashes: int,
) -> None:
    """The same statements, the same argon2 work (a sign-up's one hash) and one queued job for a taken and a
    free address; the queued jobs then do their different work after the answer."""
    assert taken_body["email"] == victim.email
    # The runner stays off from the first request to the drain: a timed look between the two measurements
    # would do the first job while the second is metered.
    monkeypatch.setattr(core, "config", dataclasses.replace(core.config, queued_work_runner=False))
    taken = _measure(core, monkeypatch, server, "127.0.8.4", path, taken_body)
    clock.advance(60)
    free = _measure(core, monkeypatch, server, "127.0.8.5", path, free_body)
    assert taken.answer == free.answer
    assert taken.answer[0] == 202
    assert (taken.work.argon2_verifies, taken.work.argon2_hashes) == (0, hashes)
    assert taken.work.shape() == free.work.shape()
    assert len(taken.work.queued) == 1
    assert queued_work.waiting(core) == 2
    core.drain()  # the work itself still runs, after the answer, and does not fail
    assert queued_work.waiting(core) == 0
    with core.read() as session:
        assert session.scalar(select(func.count()).where(AuditEvent.action == "work.abandoned")) == 0
