"""Work accepted with a 202 is queued in the database with the answer (``payment_core.queued_work``): a
restart or a kill -9 loses none of it, a reset goes before a flood of sign-ups, a row never holds a
password, a full queue refuses with 503 before writing anything, a failing job is tried again and then
dropped with an audit event, and two runners never do one job twice."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from payment_core import accounts, outbox, queued_work
from payment_core.core import Core
from payment_core.models import Account, AuditEvent, QueuedWork
from payment_core.periodic import described
from payment_core.server import ServerThread
from possim.world import serve
from protocol import ManualClock
from tests.security.conftest import from_address
from tests.served_core import ServedCore, wait_until
from tests.support import PASSWORD, mailbox

pytestmark = [pytest.mark.cheap_hashing, pytest.mark.slow]  # cheap: many sign-ups and sign-ins

PHONE = "+819012345678"
DONE_SECONDS = 60.0


@pytest.fixture
def paused(core: Core) -> Core:
    """The core, its runner kept from doing queued work on its own: the test decides when work is done."""
    core.config = dataclasses.replace(core.config, queued_work_runner=False)
    return core


def _sign_up_body(email: str) -> dict[str, Any]:
    return {"email": email, "phone": PHONE, "password": PASSWORD}


def _rows(core: Core) -> list[QueuedWork]:
    with core.read() as session:
        return list(session.scalars(select(QueuedWork).order_by(QueuedWork.id)))


def _first_mail_subjects(core: Core) -> list[str]:
    return [message.subject for message in reversed(outbox.messages(core))]


def test_a_202_is_a_queued_row_with_no_password_and_a_new_core_does_it(paused: Core, server: ServerThread) -> None:
    """The answer is sent after the row commits; the row holds the argon2 hash, never the password; a core
    started later on the same database (a restart) does the work."""
    owner = "owner@example.jp"
    accounts.create_account(paused, owner, PASSWORD)
    owner_mail = len(outbox.messages(paused, to=owner))  # the verification code of the made account
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/v1/accounts", json=_sign_up_body("new@example.jp")).status_code == 202
        assert client.post("/v1/accounts/verify/resend", json={"email": "new@example.jp"}).status_code == 202
        assert client.post("/v1/password-reset", json={"email": owner}).status_code == 202
    rows = _rows(paused)
    assert [row.kind for row in rows] == ["signup", "resend", "reset"]
    assert all(PASSWORD not in row.payload for row in rows)
    assert json.loads(rows[0].payload)["password_hash"].startswith("$argon2id$")
    assert outbox.messages(paused, to="new@example.jp") == [] and len(outbox.messages(paused, to=owner)) == owner_mail

    restarted = Core(dataclasses.replace(paused.config, queued_work_runner=True))
    try:
        restarted.drain()
    finally:
        restarted.close()
    assert _rows(paused) == []
    assert "Reset code:" in mailbox(paused, owner)[0] and len(mailbox(paused, owner)) == owner_mail + 1
    assert len(mailbox(paused, "new@example.jp")) == 1  # the resend found the code just mailed too recent
    with paused.read() as session:
        made = session.scalars(select(Account).where(Account.email == "new@example.jp")).one()
    assert accounts.hasher(paused).verify(made.password_hash, PASSWORD)


def test_a_reset_goes_before_a_flood_of_sign_ups(paused: Core, server: ServerThread) -> None:
    """30 sign-ups from 15 addresses, then the victim's reset: the reset mail is the first to go out."""
    victim = "victim@example.jp"
    accounts.create_account(paused, victim, PASSWORD)
    for number in range(30):
        with from_address(server.url, f"127.0.9.{1 + number // 2}") as client:
            assert client.post("/v1/accounts", json=_sign_up_body(f"flood{number}@example.jp")).status_code == 202
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/v1/password-reset", json={"email": victim}).status_code == 202
    before = len(outbox.messages(paused))
    assert queued_work.run_ready(paused, limit=1) == 1
    subjects = _first_mail_subjects(paused)[before:]
    assert subjects == ["Reset your possim password"]
    paused.drain()
    assert len(outbox.messages(paused)) == before + 31 and _rows(paused) == []


def test_a_started_runner_leaves_the_work_once_told_to_and_drain_still_does_it(
    core: Core, server: ServerThread
) -> None:
    """Turning ``queued_work_runner`` off holds a runner already started, its timed looks included (one such
    look between two metered requests once did the first one's job in the second's count); ``drain`` then
    does the work on the caller's thread."""
    core.work.start()
    core.config = dataclasses.replace(core.config, queued_work_runner=False)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/v1/accounts", json=_sign_up_body("late@example.jp")).status_code == 202
    core.work.run_now()  # one look of the runner's own, as its timer makes them
    assert [row.kind for row in _rows(core)] == ["signup"]
    core.drain()
    assert _rows(core) == []
    assert outbox.messages(core, to="late@example.jp") != []


def test_a_full_queue_refuses_with_503_and_writes_nothing(paused: Core, server: ServerThread) -> None:
    paused.config = dataclasses.replace(paused.config, queued_work_limit=2)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answers = [client.post("/v1/password-reset", json={"email": f"u{n}@example.jp"}) for n in range(3)]
        signup = client.post("/v1/accounts", json=_sign_up_body("other@example.jp"))
    assert [answer.status_code for answer in answers] == [202, 202, 503]
    assert answers[2].headers["Retry-After"] == str(queued_work.RETRY_AFTER_FULL_SECONDS)
    assert answers[2].json()["error"]["code"] == "service_unavailable"
    assert signup.status_code == 202  # sign-ups queue in their own priority
    assert [row.kind for row in _rows(paused)] == ["reset", "reset", "signup"]


def test_a_failing_job_is_tried_again_then_dropped_with_an_audit_event(
    paused: Core, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries: list[dict[str, Any]] = []

    def broken(_core: Core, payload: dict[str, Any]) -> None:
        tries.append(payload)
        raise RuntimeError("the mail relay is down")

    monkeypatch.setitem(queued_work._JOBS, "reset", broken)
    queued_work.enqueue(paused, "reset", {"email": "someone@example.jp", "send_to": None})
    for attempt in range(queued_work.MAX_ATTEMPTS):
        assert queued_work.run_ready(paused) == 0
        assert len(tries) == attempt + 1
        assert queued_work.run_ready(paused) == 0 and len(tries) == attempt + 1  # not before its time
        clock.advance(queued_work.RETRY_SECONDS * 2**attempt)
    assert _rows(paused) == []
    with paused.read() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "work.abandoned")).one()
    assert event.result == "failed"
    assert json.loads(event.detail) == {"attempts": 5, "error": "RuntimeError", "kind": "reset"}


def test_two_runners_never_do_one_job_twice(paused: Core) -> None:
    """Two cores on one database (two processes' runners) race over 30 sign-ups: 30 accounts, 30 mails."""
    hashed = accounts.hasher(paused).hash(PASSWORD)
    for number in range(30):
        signup = accounts.HashedSignUp(f"race{number}@example.jp", PHONE, hashed, None)
        queued_work.enqueue(paused, "signup", dataclasses.asdict(signup))
    other = Core(paused.config)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            done = list(pool.map(queued_work.run_ready, (paused, other)))
    finally:
        other.close()
    assert sum(done) == 30 and _rows(paused) == []
    assert len(outbox.messages(paused)) == 30
    with paused.read() as session:
        assert len(session.scalars(select(Account)).all()) == 30


# kill -9 of a served core: what it answered 202 to is done after the restart


@pytest.fixture
def served(core: Core, tmp_path: Path) -> Iterator[list[ServedCore]]:
    started: list[ServedCore] = []
    yield started
    for one in started:
        one.stop()


def _accept(url: str, numbers: range) -> int:
    """A sign-up for each number, each from its own loopback address; how many were answered 202."""
    accepted = 0
    for number in numbers:
        with from_address(url, f"127.0.8.{1 + number}") as client:
            accepted += client.post("/v1/accounts", json=_sign_up_body(f"k{number}@example.jp")).status_code == 202
    return accepted


def test_work_answered_202_survives_kill_9s_before_and_while_it_is_done(
    core: Core, tmp_path: Path, served: list[ServedCore]
) -> None:
    """A core that only answers (``--no-queued-work``) is killed with SIGKILL after 6 sign-ups were answered
    202: all 6 wait in the queue. A core that does the work is killed just after 6 more (its runner anywhere
    in the queue). A third run does the rest: every accepted sign-up has exactly one account and one mail (a
    job's work and its row's delete commit together)."""
    answering = ServedCore(core, tmp_path, "--no-queued-work")
    served.append(answering)
    assert _accept(answering.url, range(6)) == 6
    answering.kill()
    assert [row.kind for row in _rows(core)] == ["signup"] * 6
    working = ServedCore(core, tmp_path)
    served.append(working)
    assert _accept(working.url, range(6, 12)) == 6
    working.kill()
    served.append(ServedCore(core, tmp_path))
    wait_until(lambda: not _rows(core), DONE_SECONDS, lambda: "the queue was not drained")
    assert sorted(message.to for message in outbox.messages(core)) == sorted(f"k{n}@example.jp" for n in range(12))
    with core.read() as session:
        assert len(session.scalars(select(Account)).all()) == 12


def test_an_in_process_server_does_its_work_without_a_drain(core: Core, clock: ManualClock) -> None:
    """A served core's runner does what was queued by itself (woken by the request)."""
    with serve(core) as running, httpx.Client(base_url=running.url, timeout=30) as client:
        assert client.post("/v1/accounts", json=_sign_up_body("self@example.jp")).status_code == 202
        wait_until(lambda: bool(outbox.messages(core, to="self@example.jp")), DONE_SECONDS, lambda: "no mail")
    assert _rows(core) == []


def test_a_failed_run_is_logged_by_its_kind_and_never_with_a_requests_values() -> None:
    """A database that failed to answer is logged with the driver's words; nothing else with any text, as it
    could carry what the request held (an address, a password)."""
    locked = OperationalError(
        "INSERT INTO queued_work ...", {"payload": "secret@example.jp"}, sqlite3.OperationalError("database is locked")
    )
    assert described(locked) == "OperationalError: database is locked"
    assert described(ValueError("hunter2 is the password")) == "ValueError"
