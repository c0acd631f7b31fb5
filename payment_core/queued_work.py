"""Work accepted with a 202 and done after the answer: a transactional outbox in the database.

Sign-up, a resent verification code and a password reset answer 202 with the same words whether or not an
account exists, and do their work (rows, mail) afterwards, so an answer's timing never tells. That work
used to wait on an in-process thread: a crash lost it, and a burst of sign-ups held a victim's reset mail
back by a minute. Now the route adds a :class:`~payment_core.models.QueuedWork` row in the request's own
transaction, which commits before the 202 is sent, so what was accepted is durable; a :class:`WorkRunner`
thread in every core process takes the rows one by one and does each in one transaction with the row's
delete, so a job is done exactly once even when the process dies mid-way (its transaction rolls back and
the row waits for the next runner, in this process after a restart or in another one).

- **Order**: lowest ``priority`` first, then first come: a reset (``RESET``) goes before every sign-up and
  resent code (``SIGNUP``), so a flood of sign-ups cannot hold a victim's reset mail back.
- **Bounded**: at most ``CoreConfig.queued_work_limit`` rows wait in each priority; beyond that the
  request is refused with 503 and ``Retry-After`` before anything is written (:class:`QueueFull`).
- **No plain secret in a row**: a sign-up's password is hashed before it is queued (through the bounded
  password budget, so a full budget answers 503) and the row carries the hash the account will keep.
- **A job that fails** is tried again later (``RETRY_SECONDS``, doubling), up to ``MAX_ATTEMPTS``; then it
  is dropped with an audit event (``work.abandoned``), never silently.
- **Several processes**: on PostgreSQL a runner takes its row ``FOR UPDATE SKIP LOCKED``, so runners of
  other processes take other rows; on SQLite one writer at a time decides the same.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import func, select

from payment_core import audit
from payment_core.db import step_aside_for_writers
from payment_core.models import QueuedWork
from payment_core.periodic import Periodic, described
from payment_core.request_unit import RequestUnit, current_unit
from payment_core.sources import current_source
from protocol import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from payment_core.core import Core

log = logging.getLogger("possim.core")

RESET: Final = 0  # reset and security mail
SIGNUP: Final = 1  # sign-up and resent verification mail
KINDS: Final[dict[str, int]] = {"reset": RESET, "signup": SIGNUP, "resend": SIGNUP}
MAX_ATTEMPTS: Final = 5
RETRY_SECONDS: Final = 5  # after the first failure; doubled after each next one
RETRY_AFTER_FULL_SECONDS: Final = 30
BUSY_MESSAGE: Final = "Too much mail is waiting to go out; try again in a minute."
JOBS_PER_RUN: Final = 1000  # one wake-up does at most this many, then looks again at its next run
POLL_SECONDS: Final = 2.0  # how often a runner looks for work queued by another process (or left by a crash)

Job = Callable[["Core", dict[str, Any]], None]


class QueueFull(ProtocolError):
    """503 with ``Retry-After``: the queue of this priority holds ``queued_work_limit`` rows."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.SERVICE_UNAVAILABLE, BUSY_MESSAGE)
        self.retry_after = RETRY_AFTER_FULL_SECONDS


def enqueue(core: Core, kind: str, payload: dict[str, Any]) -> None:
    """Queue ``kind`` with ``payload`` (JSON; never a plain secret) in the caller's transaction: inside an API
    request it commits with the answer. Raises :class:`QueueFull` when its priority's queue is full."""
    priority, now = KINDS[kind], core.now()
    with core.transaction() as session:
        limit = core.config.queued_work_limit
        queued = select(QueuedWork.id).where(QueuedWork.priority == priority).limit(limit).subquery()
        if (session.scalar(select(func.count()).select_from(queued)) or 0) >= limit:
            raise QueueFull
        row = QueuedWork(
            kind=kind,
            priority=priority,
            payload=json.dumps(payload, sort_keys=True),
            source=current_source.get()[:64],
            queued_at=now,
            not_before=now,
            attempts=0,
        )
        session.add(row)
        session.flush()
    unit = current_unit.get()
    if unit is not None:  # inside an API request: a runner woken now would not see the row yet
        unit.after_commit(core.work.wake)
    else:
        core.work.wake()


def waiting(core: Core) -> int:
    """Rows queued and not yet done (tests, ``possim admin status``)."""
    with core.read() as session:
        return int(session.scalar(select(func.count()).select_from(QueuedWork)) or 0)


def run_ready(core: Core, limit: int = JOBS_PER_RUN) -> int:
    """Do queued jobs whose time has come, most urgent first, until none is left or ``limit`` are done;
    how many were done (a failed try counts as not done)."""
    done = 0
    for number in range(limit):
        if number:  # requests queued for SQLite's writer go before the next job (payment_core.writer_lock)
            step_aside_for_writers(core.engine)
        outcome = _run_one(core)
        if outcome is None:
            break
        done += outcome
    return done


def _run_one(core: Core) -> int | None:
    """Take the most urgent ready row and do it in one transaction with its delete: 1 when done, 0 when
    it failed (tried again later), ``None`` when nothing is ready."""
    unit = RequestUnit(core.sessions)
    token = current_unit.set(unit)  # the job's own Core.transaction() calls become savepoints of this one
    try:
        session = unit.session()
        ready = (
            select(QueuedWork)
            .where(QueuedWork.not_before <= core.now())
            .order_by(QueuedWork.priority, QueuedWork.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        row = session.scalars(ready).first()
        if row is None:
            return None
        job_id, kind = row.id, row.kind
        source_token = current_source.set(row.source)
        try:
            _JOBS[kind](core, json.loads(row.payload))
            session.delete(row)
            unit.commit()
            return 1
        except Exception as error:  # no payload in the log: it names an address
            failure = described(error)
        finally:
            current_source.reset(source_token)
    finally:
        unit.rollback()  # a no-op once committed
        current_unit.reset(token)
    log.error("queued %s #%d failed: %s", kind, job_id, failure)
    _failed(core, job_id, kind, failure)  # in a transaction of its own, the job's undone
    return 0


def _failed(core: Core, job_id: int, kind: str, error: str) -> None:
    now = core.now()
    with core.transaction() as session:
        row = session.get(QueuedWork, job_id)
        if row is None:
            return
        row.attempts += 1
        if row.attempts < MAX_ATTEMPTS:
            row.not_before = now + timedelta(seconds=RETRY_SECONDS * 2 ** (row.attempts - 1))
            return
        session.delete(row)
        audit.record(
            session,
            at=now,
            actor="queued_work",
            action="work.abandoned",
            target=f"work:{job_id}",
            result=audit.AuditOutcome.FAILED,
            kind=kind,
            attempts=row.attempts,
            error=error,
        )


class WorkRunner(Periodic):
    """Does queued work in this process: woken by :func:`enqueue`, and every ``POLL_SECONDS`` for rows of
    other processes or left by a crash. Started by the first wake-up (or by ``possim core serve``)."""

    def __init__(self, core: Core, poll_seconds: float = POLL_SECONDS) -> None:
        super().__init__("possim-queued-work", poll_seconds, self._look, "queued work")
        self._core = core

    def _look(self) -> int:
        """A wake-up or a timed look: nothing while this process leaves the work to others
        (``CoreConfig.queued_work_runner``, which may be turned off after the thread started)."""
        return run_ready(self._core) if self._core.config.queued_work_runner else 0

    def wake(self) -> None:
        """Start (once) and look for work soon, unless this process leaves the work to others."""
        if self._core.config.queued_work_runner:
            self.start().poke()

    def drain(self, timeout: float = 30.0) -> None:
        """Do everything queued so far that is ready (tests, and a demo reading the mail it caused): on the
        runner's thread, or on the caller's while this process leaves the work to others."""
        if self._core.config.queued_work_runner:
            self.start().run_now(timeout)
            return
        while run_ready(self._core) == JOBS_PER_RUN:
            pass


def _signup(core: Core, payload: dict[str, Any]) -> None:
    from payment_core import accounts  # the jobs' owners import the core; the core imports this module

    accounts.register(core, accounts.HashedSignUp(**payload))


def _resend(core: Core, payload: dict[str, Any]) -> None:
    from payment_core import otp

    otp.resend_email_code(core, payload["email"])


def _reset(core: Core, payload: dict[str, Any]) -> None:
    from payment_core import resets

    resets.request_reset(core, payload["email"], payload.get("send_to"))


_JOBS: Final[dict[str, Job]] = {"signup": _signup, "resend": _resend, "reset": _reset}
