"""Engines and sessions for SQLite (default, WAL) and PostgreSQL, and schema migrations (Alembic)."""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock; writers then queue within one process only
    fcntl = None  # type: ignore[assignment]

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, bindparam, create_engine, event, inspect, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from payment_core.prepared import Prepared, send_savepoints_plainly
from payment_core.writer_lock import WriterLock

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_WRITERS: weakref.WeakKeyDictionary[Engine, WriterLock] = weakref.WeakKeyDictionary()  # each SQLite engine's writer


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` use psycopg 3; a bare path means a SQLite file."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{url}"
    return url


# PostgreSQL connections: one for each request the API admits at once (payment_core.api_unit) and a few more
# for work done after an answer and for admin commands in the same process.
POOL_SIZE = 32
POOL_OVERFLOW = 8
# SQLite's durability: FULL syncs the write-ahead log at every commit, so a power cut loses nothing the
# core has answered. NORMAL is faster but may lose the last commits on a power cut (not on a crash of
# the process); it is an explicit choice (``possim core serve --sqlite-synchronous normal``), never the default.
SQLITE_SYNCHRONOUS = ("FULL", "NORMAL")
SYNCHRONOUS_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}  # what ``PRAGMA synchronous`` answers, by name


def sqlite_synchronous_name(level: object) -> str:
    """``PRAGMA synchronous``'s answer (a number) by name."""
    return SYNCHRONOUS_NAMES.get(int(str(level or 0)), str(level))


def make_engine(
    url: str, schema: str | None = None, create_schema: bool = True, *, sqlite_synchronous: str = "FULL"
) -> Engine:
    """An engine for ``url``. On PostgreSQL ``schema`` (created if missing, unless not
    ``create_schema``) becomes the search path."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        if sqlite_synchronous not in SQLITE_SYNCHRONOUS:
            raise ValueError(f"sqlite_synchronous is one of {', '.join(SQLITE_SYNCHRONOUS)}")
        return _sqlite_engine(url, sqlite_synchronous)
    connect_args: dict[str, Any] = {"connect_timeout": 5}
    if schema is not None:
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"bad schema name {schema!r}")
        connect_args["options"] = f"-csearch_path={schema}"
    engine = create_engine(
        url, connect_args=connect_args, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW
    )
    send_savepoints_plainly(engine.dialect)
    if schema is not None and create_schema:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return engine


def drop_schema(url: str, schema: str) -> None:
    """Drop a PostgreSQL schema and everything in it (a test's or a bench run's own), if it is there."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"bad schema name {schema!r}")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        engine.dispose()


# How long a writer waits for SQLite's one write lock: in the process, then for the other processes, then in
# SQLite's busy handler.
SQLITE_LOCK_SECONDS = 30
# Each connection's page cache (SQLite's default is 2 MiB). With a 1M-entry ledger, every payment's inserts land
# on index pages spread over a gigabyte, each fetched again from the OS: `possim bench --only growth` gave 344.7
# payments/s at 1M entries against 476.4/s at 1k (p50 93 against 64 ms); with 64 MiB, 460.3/s against 405.5/s
# in the next run. A page is only kept once read; the registers' work runs on one connection (group commit).
SQLITE_CACHE_KIB = 65_536
# Beside a database file, the file whose flock its writers in every process queue on (not for :memory:).
WRITER_LOCK_SUFFIX = ".writer-lock"


# Off only around a transaction that records what was refused, never money (``Core.transaction(durable=False)``):
# its commit does not wait for the disk (SQLite: synchronous=NORMAL in WAL mode; PostgreSQL: synchronous_commit
# off for that transaction). A crash of the process loses nothing; a power cut may lose the last few of these
# records, never a payment or anything committed durably after them, and never leaves the database torn.
durable_commit: ContextVar[bool] = ContextVar("durable_commit", default=True)


def _sqlite_engine(url: str, synchronous: str) -> Engine:
    writer = WriterLock()
    connection_class = _writer_queued_connection(writer, writer_lock_file(url), synchronous)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_LOCK_SECONDS, "factory": connection_class},
    )
    _WRITERS[engine] = writer
    send_savepoints_plainly(engine.dialect)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, open transactions, so BEGIN IMMEDIATE below takes effect.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        if ":memory:" not in url:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_LOCK_SECONDS * 1000}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the lock up front: no deadlock when two readers both try to upgrade.
        dbapi_conn = conn.connection.dbapi_connection
        dbapi_conn.queue_for_writing()
        if not durable_commit.get() and synchronous in ("FULL", "EXTRA"):
            dbapi_conn.commit_lightly()
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def step_aside_for_writers(engine: Engine) -> None:
    """Background work between two of its transactions: on SQLite, let the threads queued for the writer have
    it first (``payment_core.writer_lock``); on PostgreSQL, nothing (row locks, many writers)."""
    writer = _WRITERS.get(engine)
    if writer is not None:
        writer.step_aside()


def writer_lock_file(url: str) -> Path | None:
    """The file beside a SQLite database whose flock its writers in every process queue on; None for a
    database in memory (one process only) or where there is no flock (Windows)."""
    if fcntl is None:
        return None
    database = make_url(normalise_url(url)).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None  # in memory, or a URI filename (not used here): the busy handler alone, as before
    path = Path(database).absolute()
    return path.with_name(path.name + WRITER_LOCK_SUFFIX)


@dataclass
class _Handover:
    """A helper's outcome: ``done`` once it has taken the lock for a waiting writer (``took``) or failed."""

    done: threading.Event = field(default_factory=threading.Event)
    took: bool = False


class _ProcessWriterLock:
    """An exclusive ``flock`` on ``path``, held by one process at a time while it writes.

    flock belongs to an open file description, not to a thread: every thread of a process shares this
    descriptor, so only the thread holding the process's thread lock may take or drop it (see
    :func:`_writer_queued_connection`). Each process opens the file itself, the first time it writes (a
    forked child does not share its parent's description, which would make them one holder). The kernel
    drops the lock when its holder exits, however it ends (SIGKILL included).

    The wait is a blocking ``flock``, so the kernel hands the lock over the moment its holder lets go, but
    bounded: a blocking call cannot be given a timeout, so it runs in a helper thread (one at a time per
    process) and the writer waits for it up to its deadline. If the helper gets the lock while the writer
    still waits, the writer holds it; if the writer has given up meanwhile, the helper lets go at once, or
    hands it to the next writer of the process already waiting. (Tries of ``LOCK_NB`` with a backoff were
    bounded too, but a process whose next transaction came soon after its last one took the lock again
    before the other process's next try: measured, twice the p99 wait of the blocking call.) The flock only
    queues writers; what keeps two of them apart is still SQLite's own lock (BEGIN IMMEDIATE), so a writer
    that cannot get the flock (past its deadline, or the file cannot be opened) goes on to SQLite's busy
    handler, as before."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._descriptor = -1
        self._pid = 0  # the process that opened the descriptor (0: none yet)
        self._guard = threading.Lock()  # over the hand-over below
        self._helper: _Handover | None = None  # a helper blocked in flock for this process, if any
        self._waiting = False  # a writer waits for that helper

    def _opened(self) -> int:
        """This process's descriptor of the lock file (-1 if it cannot be opened: no flock then)."""
        pid = os.getpid()
        if self._pid != pid:  # the first write here, or a forked child: none of its parent's threads
            self._pid, self._guard, self._helper, self._waiting = pid, threading.Lock(), None, False
            try:
                self._descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                self._descriptor = -1
            else:
                weakref.finalize(self, os.close, self._descriptor)
        return self._descriptor

    def acquire(self, deadline: float) -> bool:
        """Take the lock by ``deadline`` (``time.monotonic()``); False if it was not this process's by then."""
        assert fcntl is not None
        descriptor = self._opened()
        if descriptor < 0:
            return False
        with self._guard:
            if self._helper is None:  # else it blocks on this description: no second call beside it
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    pass
                except OSError:
                    return False  # no locks on this file system, say: SQLite's busy handler alone, as before
                self._helper = _Handover()
                threading.Thread(target=self._take, args=(descriptor, self._helper), daemon=True).start()
            self._waiting = True
            helper = self._helper
        helper.done.wait(max(0.0, deadline - time.monotonic()))
        with self._guard:
            self._waiting = False
            return helper.done.is_set() and helper.took

    def _take(self, descriptor: int, helper: _Handover) -> None:
        """The helper: block until the lock is this process's, then hand it to the writer waiting, if any."""
        assert fcntl is not None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            took = True
        except OSError:
            took = False
        with self._guard:
            if self._helper is helper:
                self._helper = None
            if self._waiting:
                helper.took = took
                helper.done.set()
            elif took:
                fcntl.flock(descriptor, fcntl.LOCK_UN)  # its writer gave up meanwhile, and no other waits

    def release(self) -> None:
        assert fcntl is not None
        fcntl.flock(self._descriptor, fcntl.LOCK_UN)


def _writer_queued_connection(
    writer: WriterLock, lock_file: Path | None = None, synchronous: str = "FULL"
) -> type[sqlite3.Connection]:
    """A sqlite3 connection class whose transactions queue for ``writer``, one lock per database, and then
    for the flock on ``lock_file`` (one per database file, shared by every process: :class:`_ProcessWriterLock`).

    SQLite has one writer; a second one waits in SQLite's busy handler, which sleeps between tries (up to
    100 ms a sleep), so under contention (payments beside a flood of sign-ins, each with short
    transactions of its own) a payment could wait seconds for a lock freed long before. Waiting on a
    Python lock instead hands the database over the moment the last writer's COMMIT or ROLLBACK returns;
    the flock does the same between processes (``possim core serve --workers N``). The thread lock comes
    first: the threads of a process share one flock. Both are dropped once COMMIT, ROLLBACK or close has
    returned, the flock first. A writer that waits longer than ``SQLITE_LOCK_SECONDS`` in all goes on to
    SQLite's busy handler as before (holding the thread lock, if it got that)."""
    process_lock = _ProcessWriterLock(lock_file) if lock_file is not None else None

    class WriterQueuedConnection(sqlite3.Connection):
        _holds_writer = False
        _holds_file = False
        _light = False  # this transaction commits without waiting for the disk (``durable_commit``)

        def commit_lightly(self) -> None:
            """Before BEGIN: the transaction about to start commits without a sync (set back after it)."""
            self.execute("PRAGMA synchronous=NORMAL")
            self._light = True

        def queue_for_writing(self) -> None:
            if self._holds_writer:
                return
            deadline = time.monotonic() + SQLITE_LOCK_SECONDS
            self._holds_writer = writer.acquire(timeout=SQLITE_LOCK_SECONDS)
            if self._holds_writer and process_lock is not None:  # never without the thread lock: one flock a process
                try:
                    self._holds_file = process_lock.acquire(deadline)
                except BaseException:
                    self._leave()
                    raise

        def _restore(self) -> None:
            """After COMMIT or ROLLBACK, still the writer: the next transaction syncs again."""
            if self._light:
                self._light = False
                self.execute(f"PRAGMA synchronous={synchronous}")

        def _leave(self) -> None:
            try:
                if self._holds_file:
                    self._holds_file = False
                    assert process_lock is not None
                    process_lock.release()
            finally:
                if self._holds_writer:
                    self._holds_writer = False
                    writer.release()

        def commit(self) -> None:
            try:
                super().commit()
                self._restore()
            finally:
                self._leave()

        def rollback(self) -> None:
            try:
                super().rollback()
                self._restore()
            finally:
                self._leave()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self._leave()

    return WriterQueuedConnection


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic (the same migrations on every backend)."""
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest migration: the schema version this code expects."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def schema_version(engine: Engine) -> str | None:
    """The migration the database is at, or None if it was never migrated (reads only)."""
    if "alembic_version" not in table_names(engine):
        return None
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if version is None else str(version)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def insert_new(session: Session, model: type[DeclarativeBase], **values: Any) -> bool:
    """Insert one row unless its key is taken (``INSERT ... ON CONFLICT DO NOTHING``); True if it went in.

    For the keys that stand for "seen once" (a request's nonce, a payment code's use): the answer is whether
    the statement returned the row, so no savepoint is needed to catch a duplicate, and on PostgreSQL a
    concurrent twin waits for the first one's transaction and then finds the key taken."""
    statement = _insert_new_statement(model, session.get_bind().dialect.name, tuple(values))
    return statement.first(session, values) is not None


@functools.cache
def _insert_new_statement(model: type[DeclarativeBase], dialect_name: str, columns: tuple[str, ...]) -> Prepared:
    """Built once per table, database kind and set of columns (building it each time cost more than running it)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    table = inspect(model).local_table
    statement = dialect.insert(table).values({name: bindparam(name, type_=table.c[name].type) for name in columns})
    return Prepared(statement.on_conflict_do_nothing().returning(inspect(model).primary_key[0]))
