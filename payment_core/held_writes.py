"""On PostgreSQL, statements that answer nothing travel with the connection's next statement.

A payment is about twenty statements, and on PostgreSQL each one was a round trip: the worker thread sends
it, sleeps until the server answers, then waits for the interpreter's lock again. Under the core bench the
machine's two cores were full, and a third of the registers' process's CPU was that traffic (its system
time, psycopg's per-statement work) beside PostgreSQL's own per-message work. Yet a quarter of those
statements answer nothing the code reads: the ``SAVEPOINT`` a unit of work opens with, the row lock taken
before a payment code is checked, and the tail of every payment (its postings, the notice, the audit event
and the payment row itself).

So, on PostgreSQL (psycopg), :func:`hold` keeps such a statement back, and the connection's next statement
carries it: the held ones and that statement go to the server together in psycopg's pipeline mode, one
round trip, in the order they were made. Nothing is reordered and nothing is skipped:

- a statement that answers rows (``payment_core.prepared``) and ``RELEASE SAVEPOINT`` send what is held
  with themselves (and the first statement of a transaction takes psycopg's ``BEGIN`` along the same way);
  when a held statement fails on its way with ``RELEASE SAVEPOINT``, the savepoint is rolled back to before
  the error is raised, as SQLAlchemy does for an error inside its block (``prepared.send_savepoints_plainly``);
- any other statement (SQLAlchemy's own: the ORM's, a ``session.execute``) and ``COMMIT`` send what is held
  first (:func:`send_held_first` wraps the engine's dialect);
- ``ROLLBACK`` drops what is held, and ``ROLLBACK TO SAVEPOINT`` drops what was held after that savepoint
  (everything held is newer than the last savepoint statement sent): the database would have undone it.

The one difference a caller can see: an error a held statement causes (the payment row's unique key
taken by a twin, a lost connection) is raised by the statement that carried it, at the latest by the
``RELEASE SAVEPOINT`` that ends its unit of work or by the ``COMMIT``, not by the call that made it. Every
such error still ends the unit of work it belongs to, and nothing is answered before the commit has
succeeded. No caller catches an error of a statement that answers nothing (they are inserts of rows whose
keys the core makes, and the payment, whose twin :func:`payment_core.core.retry_on_conflict` handles around
its whole unit of work). While anyone listens to the engine's statements, nothing is held
(``payment_core.prepared``), so that each is seen where it is made.

SQLite has no round trip to save (the database is in the process): nothing is held there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from psycopg.pq import TransactionStatus
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

SAVEPOINT = "SAVEPOINT "
_IDLE = TransactionStatus.IDLE


@dataclass(frozen=True)
class _Held:
    sql: str
    arguments: Any  # None: no parameters
    many: bool = False


# The statements held for each driver connection, oldest first (gone with the connection).
_HELD: WeakKeyDictionary[Any, list[_Held]] = WeakKeyDictionary()


def holds(dialect: Dialect) -> bool:
    """Does this engine's driver hold statements (psycopg: PostgreSQL's pipeline mode)?"""
    return dialect.driver == "psycopg"


def hold(driver: Any, sql: str, arguments: Any, *, many: bool = False) -> None:
    """Keep ``sql`` back until the connection's next statement (or its commit)."""
    _HELD.setdefault(driver, []).append(_Held(sql, arguments, many))


def held_count(driver: Any) -> int:
    """How many statements are held for this driver connection (tests)."""
    return len(_HELD.get(driver, ()))


def run_carrying(driver: Any, error_base: type[Exception], sql: str, arguments: Any, *, many: bool = False) -> Any:
    """A cursor that has run ``sql``, sent with whatever is held (one round trip); a driver error of any of
    them is raised as SQLAlchemy's."""
    held = _HELD.pop(driver, None)
    cursor = driver.cursor()
    try:
        if not held and not _begins(driver):
            _execute(cursor, sql, arguments, many)
            return cursor
        writes = driver.cursor()
        try:
            with driver.pipeline():  # psycopg's own BEGIN, when this statement opens a transaction, goes too
                for statement in held or ():
                    _execute(writes, statement.sql, statement.arguments, statement.many)
                _execute(cursor, sql, arguments, many)
        finally:
            writes.close()
    except error_base as error:
        cursor.close()
        sent = "; ".join([*(statement.sql for statement in held or ()), sql])
        raise DBAPIError.instance(sent, arguments, error, error_base) from error
    return cursor


def _begins(driver: Any) -> bool:
    """Will the driver send its own ``BEGIN`` before the next statement (a transaction not yet open)?"""
    return not driver.autocommit and driver.info.transaction_status == _IDLE


def send_held(driver: Any) -> None:
    """Send what is held now, alone (the driver's own error is raised: SQLAlchemy wraps it)."""
    held = _HELD.pop(driver, None)
    if not held:
        return
    writes = driver.cursor()
    try:
        with driver.pipeline():
            for statement in held:
                _execute(writes, statement.sql, statement.arguments, statement.many)
    finally:
        writes.close()


def drop_held(driver: Any, since_savepoint: str | None = None) -> bool:
    """Forget what is held: all of it, or what was held after ``SAVEPOINT since_savepoint`` and that statement
    itself. True when that savepoint was among them (never sent: there is nothing to roll back to)."""
    held = _HELD.pop(driver, None)
    if not held or since_savepoint is None:
        return False
    opening = SAVEPOINT + since_savepoint
    for index, statement in enumerate(held):
        if statement.sql == opening:
            if index:
                _HELD[driver] = held[:index]
            return True
    return False  # the savepoint was sent already, and everything held is newer: all of it goes


def send_held_first(dialect: Dialect) -> None:
    """Make ``dialect`` (one engine's) send what is held before each statement of its own and before a commit,
    and drop it on a rollback."""
    execute: Callable[..., None] = dialect.do_execute
    execute_many: Callable[..., None] = dialect.do_executemany
    execute_bare: Callable[..., None] = dialect.do_execute_no_params
    commit: Callable[[Any], None] = dialect.do_commit
    rollback: Callable[[Any], None] = dialect.do_rollback

    def do_execute(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        send_held(cursor.connection)
        execute(cursor, statement, parameters, context)

    def do_executemany(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        send_held(cursor.connection)
        execute_many(cursor, statement, parameters, context)

    def do_execute_no_params(cursor: Any, statement: str, context: Any = None) -> None:
        send_held(cursor.connection)
        execute_bare(cursor, statement, context)

    def do_commit(dbapi_connection: Any) -> None:
        send_held(_driver_of(dbapi_connection))
        commit(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        drop_held(_driver_of(dbapi_connection))
        rollback(dbapi_connection)

    wrapped = {
        "do_execute": do_execute,
        "do_executemany": do_executemany,
        "do_execute_no_params": do_execute_no_params,
        "do_commit": do_commit,
        "do_rollback": do_rollback,
    }
    for method, replacement in wrapped.items():
        setattr(dialect, method, replacement)


def _driver_of(connection: Any) -> Any:
    """The driver's own connection behind SQLAlchemy's pool wrapper (or the connection itself)."""
    return getattr(connection, "dbapi_connection", None) or connection


def _execute(cursor: Any, sql: str, arguments: Any, many: bool) -> None:
    if many:
        cursor.executemany(sql, arguments)
    elif arguments is None:
        cursor.execute(sql)
    else:
        cursor.execute(sql, arguments)
