"""Statements that answer nothing travel with the connection's next statement on PostgreSQL
(payment_core.held_writes): nothing is reordered, lost or kept that the database would not have kept, and an
error of a held statement ends the unit of work it belongs to. On SQLite nothing is held."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, event, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from payment_core.core import Core
from payment_core.db import is_postgres
from payment_core.held_writes import held_count
from payment_core.models import AuditEvent, CoreMeta
from payment_core.prepared import Prepared

AT = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
_NEW_EVENT = Prepared(
    insert(AuditEvent).values({name: bindparam(name) for name in ("at", "actor", "action", "target", "result")})
)
_EVENTS = Prepared(select(func.count()).select_from(AuditEvent).where(AuditEvent.actor == bindparam("actor")))
_NEW_META = Prepared(insert(CoreMeta).values(name=bindparam("name"), value=bindparam("value"), updated_at=AT))


def _event(session: Session, actor: str) -> None:
    _NEW_EVENT.run(session, {"at": AT, "actor": actor, "action": "test", "target": "held", "result": "ok"})


def _held(session: Session) -> int:
    return held_count(session.connection().connection.dbapi_connection)


def _events(core: Core, actor: str) -> int:
    with core.transaction() as session:
        return int(_EVENTS.scalar(session, {"actor": actor}))


def test_a_write_waits_for_the_next_statement_which_sees_it(core: Core) -> None:
    with core.transaction() as session:
        _event(session, "next")
        _event(session, "next")
        assert _held(session) == (2 if is_postgres(core.engine) else 0)
        assert _EVENTS.scalar(session, {"actor": "next"}) == 2  # sent with the read, before it
        assert _held(session) == 0
        _event(session, "next")
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 3  # SQLAlchemy's own statement
        assert _held(session) == 0
    assert _events(core, "next") == 3


def test_the_commit_sends_what_is_held(core: Core) -> None:
    with core.transaction() as session:
        _event(session, "commit")
        assert _held(session) == (1 if is_postgres(core.engine) else 0)
    assert _events(core, "commit") == 1


def test_a_rollback_drops_what_is_held(core: Core) -> None:
    with pytest.raises(RuntimeError), core.transaction() as session:
        _event(session, "rolled-back")
        raise RuntimeError("the unit of work fails")
    assert _events(core, "rolled-back") == 0
    with core.transaction() as session:
        assert _held(session) == 0  # nothing left on the pooled connection for its next user


def test_rolling_back_to_a_savepoint_drops_only_what_came_after_it(core: Core) -> None:
    with core.transaction() as session:
        _event(session, "before")
        with pytest.raises(RuntimeError), session.begin_nested():  # its SAVEPOINT is held too, never sent
            _event(session, "inside")
            raise RuntimeError("the savepoint's work fails")
        assert _held(session) == (1 if is_postgres(core.engine) else 0)  # "before" is still on its way
        assert _EVENTS.scalar(session, {"actor": "inside"}) == 0
        with pytest.raises(RuntimeError), session.begin_nested():  # this SAVEPOINT is sent with the read
            assert _EVENTS.scalar(session, {"actor": "before"}) == 1
            _event(session, "inside")
            raise RuntimeError("the savepoint's work fails")
        assert _held(session) == 0
    assert (_events(core, "before"), _events(core, "inside")) == (1, 0)


def test_a_held_write_that_fails_fails_its_savepoint_and_nothing_else(core: Core) -> None:
    """The payment row's twin on PostgreSQL: its INSERT is held, its error comes with the RELEASE SAVEPOINT that
    ends the unit of work (which is rolled back), and the transaction goes on."""
    with core.transaction() as session:
        _NEW_META.run(session, {"name": "twin", "value": "first"})
        _event(session, "kept")
        with pytest.raises(IntegrityError), session.begin_nested():
            _event(session, "undone")
            _NEW_META.run(session, {"name": "twin", "value": "second"})  # the key is taken
        assert _held(session) == 0
        _event(session, "after")
    assert [_events(core, actor) for actor in ("kept", "undone", "after")] == [1, 0, 1]
    with core.transaction() as session:
        assert session.get(CoreMeta, "twin") is not None


def test_nothing_is_held_while_someone_listens_to_the_statements(core: Core) -> None:
    seen: list[str] = []

    def listen(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(core.engine, "before_cursor_execute", listen)
    try:
        with core.transaction() as session:
            _event(session, "listened")
            assert _held(session) == 0
            assert any(statement.startswith("INSERT INTO audit_events") for statement in seen)
    finally:
        event.remove(core.engine, "before_cursor_execute", listen)
    assert _events(core, "listened") == 1
