"""The core's runtime: configuration, database and clock, shared by the API and the admin commands."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from payment_core.config import CoreConfig
from payment_core.db import durable_commit, is_postgres, make_engine, make_session_factory, migrate, transaction
from payment_core.group_commit import GroupCommitWriter
from payment_core.models import (
    Account,
    Base,
    CoreMeta,
    Device,
    Journal,
    Merchant,
    OutboxMessage,
    Payment,
    Refund,
    Terminal,
    Topup,
)
from payment_core.password_work import PasswordWork
from payment_core.queued_work import WorkRunner
from payment_core.request_unit import current_unit
from protocol import ErrorCode, ProtocolError

T = TypeVar("T")
log = logging.getLogger("possim.core")
CONCURRENT_RETRIES = 5
KEY_FINGERPRINT = "server_key_fingerprint"
# What ``possim admin status`` counts; the first three hold secrets derived from the server key.
COUNTED: dict[str, type[Base]] = {
    "accounts": Account,
    "devices": Device,
    "terminals": Terminal,
    "merchants": Merchant,
    "payments": Payment,
    "refunds": Refund,
    "topups": Topup,
    "journals": Journal,
    "outbox": OutboxMessage,
}
KEY_BOUND = ("accounts", "devices", "terminals")
# On PostgreSQL, requests in flight at once (the rest wait in the event loop, where waiting costs nothing).
# More threads than this only took turns at the interpreter's lock and the cores. Measured under the core
# bench (32 registers, 2 cores shared with PostgreSQL and the clients): on a slow machine 32 at once 103/s
# (p99 549 ms), 16 120.6/s (p99 378 ms), 8 122.4/s; on a machine 2-3 times as fast, in turn, 16 at once
# 415-420/s p99 148-156 ms, 8 427-467/s p99 124-125 ms, 6 403-415/s p99 127-128 ms, 4 409-487/s p99
# 84-111 ms, 2 419-425/s p99 96-97 ms. Four leaves room for a request that waits on a row lock.
POSTGRES_ADMITTED = 4


def admitted_at_once(engine: Engine) -> int:
    """How many API requests use the database at once (``payment_core.api_unit``): one on SQLite, which has a
    single writer; on PostgreSQL as many as the connection pool holds, and no more than ``POSTGRES_ADMITTED``."""
    if not is_postgres(engine):
        return 1
    pool: int = engine.pool.size()  # type: ignore[attr-defined]
    return min(pool, POSTGRES_ADMITTED)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def retry_on_conflict(work: Callable[[], T]) -> T:
    """Run ``work`` again when a concurrent twin won a unique key first; the next try reads its result."""
    for _ in range(CONCURRENT_RETRIES):
        try:
            return work()
        except IntegrityError:
            continue
    raise ProtocolError(ErrorCode.SERVICE_UNAVAILABLE)


class Core:
    def __init__(self, config: CoreConfig, engine: Engine | None = None) -> None:
        self.config = config
        self.engine = engine or make_engine(config.db_url, config.db_schema)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.password_work = PasswordWork(config.password_workers, config.password_queue, config.password_niceness)
        # Work done after the answer was sent (sign-up, password-reset mail), queued in the database with the
        # answer (payment_core.queued_work), so an answer's timing never depends on whether an account exists
        # and a crash loses none of it.
        self.work = WorkRunner(self)
        # On SQLite the registers' requests share transactions and commits (payment_core.group_commit).
        self.group_writer = None if is_postgres(self.engine) else GroupCommitWriter(self.engine, self.sessions)
        # On PostgreSQL they run on threads of their own, one for each request admitted at once
        # (``api_request.RegisterCall``): a hand-over to a plain executor costs the event loop less than
        # anyio's worker threads (its queue's ``Condition`` and its bookkeeping), measured in the core bench.
        self.register_threads = (
            ThreadPoolExecutor(admitted_at_once(self.engine), "possim-register") if self.group_writer is None else None
        )

    def now(self) -> datetime:
        return self.config.clock()

    def migrate(self) -> None:
        migrate(self.engine)

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[Session]:
        """One unit of work: its own transaction, or inside an API request a savepoint of the request's one
        transaction (``payment_core.request_unit``); either way all or nothing. ``durable=False`` is for a
        transaction of its own that records only what was refused, never money: its commit does not wait for
        the disk (``db.durable_commit``)."""
        unit = current_unit.get()
        if unit is not None:
            with unit.savepoint() as session:
                yield session
            return
        if durable:
            with transaction(self.sessions) as session:
                yield session
            return
        token = durable_commit.set(False)
        try:
            with transaction(self.sessions) as session:
                if is_postgres(self.engine):
                    session.execute(text("SET LOCAL synchronous_commit = off"))
                yield session
        finally:
            durable_commit.reset(token)

    @contextmanager
    def statement(self) -> Iterator[Session]:
        """Room for one statement, which is all or nothing by itself: inside an API request the request's
        transaction as it stands (no savepoint to undo it by), otherwise a transaction of its own."""
        with self.read() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only look: inside an API request the request's own transaction as it stands (no savepoint,
        since a read has nothing to undo), otherwise a transaction of its own."""
        unit = current_unit.get()
        if unit is not None:
            yield unit.session()
            return
        with transaction(self.sessions) as session:
            yield session

    def drain(self, timeout: float = 30.0) -> None:
        """Do the queued work that is ready now (tests, a demo reading the mail it caused)."""
        self.work.drain(timeout)

    def close(self) -> None:
        if self.group_writer is not None:
            self.group_writer.close()
        if self.register_threads is not None:
            self.register_threads.shutdown(wait=True)
        self.work.stop()
        self.password_work.close()
        self.engine.dispose()


def stored_key_fingerprint(session: Session) -> str | None:
    """The fingerprint of the server key this database was made with, if one was recorded."""
    row = session.get(CoreMeta, KEY_FINGERPRINT)
    return row.value if row is not None else None


def remember_key_fingerprint(session: Session, fingerprint: str, at: datetime) -> str:
    """Record ``fingerprint`` unless one is recorded already; returns the recorded one."""
    stored = stored_key_fingerprint(session)
    if stored is not None:
        return stored
    session.add(CoreMeta(name=KEY_FINGERPRINT, value=fingerprint, updated_at=at))
    session.flush()
    return fingerprint


def count_rows(
    session: Session, names: tuple[str, ...] | None = None, present: set[str] | None = None
) -> dict[str, int]:
    """Rows per counted table (all of ``COUNTED``, or ``names``); a table not in ``present`` counts 0."""
    counts: dict[str, int] = {}
    for name in names or tuple(COUNTED):
        model = COUNTED[name]
        if present is not None and model.__tablename__ not in present:
            counts[name] = 0
            continue
        counts[name] = session.scalar(select(func.count()).select_from(model)) or 0
    return counts
