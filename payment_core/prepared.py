"""The statements every payment runs, each sent to the database driver directly.

A :class:`Prepared` is a SQLAlchemy Core statement built from the models (the one description of the
schema), compiled once for each kind of database; running it then skips SQLAlchemy's execution
machinery (its execution context, result wrapping and events), which cost more than the statement:
measured on this stack, 48–71 µs a statement through ``Connection.execute`` against 4–16 µs for the
driver's own call, for the ~20 statements of a payment (``possim bench --only core``).

What SQLAlchemy did on the way still happens: each parameter goes through its column type's bind
processor (``UTCDateTime`` stores UTC as a naive timestamp) and each result column through its result
processor (an aware datetime back), the statement's own literals are sent as the compiled statement
binds them, and an error of the driver is raised as SQLAlchemy's (``IntegrityError`` and the rest), as
:func:`payment_core.core.retry_on_conflict` and the API's error mapping expect. A statement runs on the
session's own connection, inside its transaction and savepoints, so it is all or nothing with the rest
of the unit of work. While anyone listens to the engine's ``before_cursor_execute`` (a test counting
statements, say), a statement goes through SQLAlchemy as any other, so that it is seen.

Kept to what the payment path needs: no expanding ``IN`` parameters, and an ``INSERT`` names its values
(``insert(...).values(column=bindparam(...))``), so that its compiled form never depends on which keys a
call passes; a column it leaves out takes its default when that is a constant (``detail="{}"``), and a
default computed per row is refused when the statement is first compiled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement, Executable

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Form:
    """A statement compiled for one kind of database."""

    sql: str
    names: tuple[str, ...] | None  # the parameters' order for a driver taking them by position; None: by name
    literals: dict[str, Any]  # the statement's own bound values (a ``coalesce(..., 0)``'s 0, say)
    binders: tuple[tuple[str, Processor], ...]  # the parameters whose type converts them, and how
    readers: tuple[Processor | None, ...] | None  # how each result column is read back; None: as it comes


class Prepared:
    """A statement compiled once per kind of database and run on the session's driver connection."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._forms: dict[str, _Form] = {}

    def _form(self, dialect: Dialect) -> _Form:
        form = self._forms.get(dialect.name)
        if form is None:
            form = self._forms[dialect.name] = _compile(self.statement, dialect)
        return form

    def _cursor(
        self, session: Session, params: Mapping[str, Any], many: Sequence[Mapping[str, Any]] = ()
    ) -> tuple[Any, _Form]:
        connection = session.connection()
        form = self._form(connection.dialect)
        if connection.dispatch.before_cursor_execute:  # someone watches the statements: let them see this one
            result = connection.execute(self.statement, list(many) if many else params)
            return _Answered(result), _as_read(form)
        if many:
            return _driver_cursor(connection, form.sql, [_arguments(form, each) for each in many], many=True), form
        return _driver_cursor(connection, form.sql, _arguments(form, params)), form

    def rows(self, session: Session, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row the statement answers, each a tuple of its columns read back."""
        cursor, form = self._cursor(session, params)
        try:
            found = cursor.fetchall()
        finally:
            cursor.close()
        return [_read(form, row) for row in found]

    def first(self, session: Session, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row, or None when there is none (the rest, if any, are not read)."""
        cursor, form = self._cursor(session, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else _read(form, row)

    def scalar(self, session: Session, params: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None when there is no row."""
        row = self.first(session, params)
        return None if row is None else row[0]

    def run(self, session: Session, params: Mapping[str, Any]) -> None:
        """Run a statement that answers nothing."""
        self._cursor(session, params)[0].close()

    def run_many(self, session: Session, params: Sequence[Mapping[str, Any]]) -> None:
        """Run a statement that answers nothing once for each set of ``params`` (one driver call)."""
        if params:
            self._cursor(session, params[0], params)[0].close()


def _read(form: _Form, row: Sequence[Any]) -> tuple[Any, ...]:
    """A row as its columns' types read it back."""
    if form.readers is None:
        return tuple(row)
    return tuple(read(value) if read else value for read, value in zip(form.readers, row, strict=True))


class _Answered:
    """A statement SQLAlchemy ran (someone listens to its statements): its rows, read back already."""

    def __init__(self, result: Any) -> None:
        self._rows = [tuple(row) for row in result] if result.returns_rows else []

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def close(self) -> None:
        self._rows = []


def _as_read(form: _Form) -> _Form:
    return dataclasses.replace(form, readers=None)


def run_plain(connection: Connection, sql: str) -> None:
    """Send ``sql`` (no parameters, nothing answered: a ``SAVEPOINT``, say) to the connection's driver."""
    if connection.dispatch.before_cursor_execute:  # someone watches the statements: let them see this one
        connection.exec_driver_sql(sql)
        return
    _driver_cursor(connection, sql, None).close()


def _driver_cursor(connection: Connection, sql: str, arguments: Any, *, many: bool = False) -> Any:
    """A cursor of the connection's driver that has run ``sql`` (with ``arguments``, if not None; once for each
    of them when ``many``); the driver's error is raised as SQLAlchemy's."""
    driver = connection.connection.dbapi_connection
    assert driver is not None
    error_base: type[Exception] = connection.dialect.loaded_dbapi.Error
    cursor = driver.cursor()
    try:
        if many:
            cursor.executemany(sql, arguments)
        elif arguments is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, arguments)
    except error_base as error:
        cursor.close()
        raise DBAPIError.instance(sql, arguments, error, error_base) from error
    return cursor


def send_savepoints_plainly(dialect: Dialect) -> None:
    """Make ``dialect`` (one engine's) send SAVEPOINT, RELEASE SAVEPOINT and ROLLBACK TO SAVEPOINT with
    :func:`run_plain`: SQLAlchemy compiles each of them afresh, which cost 7% of the registers' process
    under the core bench (a request takes two savepoints). The same statements, in the same places."""
    preparer = dialect.identifier_preparer

    def name_of(name: str) -> str:
        return str(preparer.format_savepoint(None, name))  # type: ignore[no-untyped-call]

    def savepoint(connection: Connection, name: str) -> None:
        run_plain(connection, f"SAVEPOINT {name_of(name)}")

    def release(connection: Connection, name: str) -> None:
        run_plain(connection, f"RELEASE SAVEPOINT {name_of(name)}")

    def rollback_to(connection: Connection, name: str) -> None:
        run_plain(connection, f"ROLLBACK TO SAVEPOINT {name_of(name)}")

    plain = {"do_savepoint": savepoint, "do_release_savepoint": release, "do_rollback_to_savepoint": rollback_to}
    for method, statement in plain.items():
        setattr(dialect, method, statement)


def _arguments(form: _Form, params: Mapping[str, Any]) -> Any:
    values = {**form.literals, **params} if form.literals else dict(params)
    for name, convert in form.binders:
        values[name] = convert(values[name])
    if form.names is None:
        return values
    return tuple(values[name] for name in form.names)


def _compile(statement: Executable, dialect: Dialect) -> _Form:
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect)
    binds = {name: bind for bind, name in compiled.bind_names.items()}  # type: ignore[attr-defined]
    if any(bind.expanding for bind in binds.values()):
        raise ValueError("a prepared statement takes no expanding parameter")
    literals = {name: bind.value for name, bind in binds.items() if not bind.required}
    prefetched = [*getattr(compiled, "insert_prefetch", ()), *getattr(compiled, "update_prefetch", ())]
    for column in prefetched:  # a column left out takes its default, computed here instead of at each run
        default = column.default if column in getattr(compiled, "insert_prefetch", ()) else column.onupdate
        if default is None or not default.is_scalar:
            raise ValueError(f"a prepared statement gives {column.name} a value: its default is computed per row")
        literals[column.key] = default.arg
    binders = []
    for name, bind in binds.items():
        convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if convert is not None:
            binders.append((name, convert))
    readers: list[Processor | None] = []
    for column in getattr(statement, "exported_columns", ()):
        readers.append(column.type.dialect_impl(dialect).result_processor(dialect, None))
    positions = compiled.positiontup  # type: ignore[attr-defined]
    return _Form(
        sql=compiled.string,
        names=tuple(positions) if dialect.positional else None,
        literals=literals,
        binders=tuple(binders),
        readers=tuple(readers) if any(readers) else None,
    )
