"""Statements sent to the driver directly (payment_core.prepared) answer and fail as SQLAlchemy's own do,
on SQLite and PostgreSQL, inside the session's transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, event, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from payment_core.core import Core
from payment_core.models import AuditEvent, Journal, LedgerAccount
from payment_core.prepared import Prepared

AT = datetime(2026, 11, 29, 8, 30, 15, 123456, tzinfo=UTC)
_NEW_JOURNAL = Prepared(
    insert(Journal)
    .values(kind=bindparam("kind"), reference=bindparam("reference"), created_at=bindparam("created_at"))
    .returning(Journal.id, Journal.created_at)
)
_JOURNAL = select(Journal.id, Journal.kind, Journal.reference, Journal.created_at).where(
    Journal.reference == bindparam("reference")
)
_JOURNALS_SINCE = Prepared(  # the statement's own literal (the 0) goes with it
    select(func.coalesce(func.sum(Journal.id), 0), func.count()).where(Journal.created_at >= bindparam("since"))
)
_NEW_EVENT = Prepared(
    insert(AuditEvent).values({name: bindparam(name) for name in ("at", "actor", "action", "target", "result")})
)
_MOVE = Prepared(
    update(LedgerAccount)
    .where(LedgerAccount.name == bindparam("name"))
    .values(balance=LedgerAccount.balance + bindparam("delta"))
    .where(LedgerAccount.balance + bindparam("delta") >= 0)  # the same parameter twice
    .returning(LedgerAccount.balance)
)


def _journal(core: Core, reference: str) -> Any:
    with core.transaction() as session:
        return session.execute(_JOURNAL, {"reference": reference}).one_or_none()


def test_rows_read_back_as_sqlalchemy_reads_them(core: Core) -> None:
    with core.transaction() as session:
        journal_id, created = (
            _NEW_JOURNAL.first(session, {"kind": "payment", "reference": "r-1", "created_at": AT}) or ()
        )
        assert created == AT and created.tzinfo is not None  # an aware UTC datetime, as UTCDateTime hands back
        read = Prepared(_JOURNAL).rows(session, {"reference": "r-1"})
        assert read == [tuple(row) for row in session.execute(_JOURNAL, {"reference": "r-1"})]
        assert read == [(journal_id, "payment", "r-1", AT)]
    stored = _journal(core, "r-1")  # committed with the session's transaction, stored as UTC
    assert stored is not None and stored.created_at == AT


def test_a_datetime_parameter_is_converted_by_its_column_type(core: Core) -> None:
    tokyo = AT.astimezone(datetime.now().astimezone().tzinfo)  # the same instant in another zone
    with core.transaction() as session:
        _NEW_JOURNAL.first(session, {"kind": "topup", "reference": "r-tz", "created_at": tokyo})
        assert _JOURNALS_SINCE.first(session, {"since": AT}) == (_journal_id(session, "r-tz"), 1)
        assert _JOURNALS_SINCE.first(session, {"since": AT + timedelta(microseconds=1)}) == (0, 0)
        with pytest.raises(ValueError, match="naive"):
            _JOURNALS_SINCE.first(session, {"since": AT.replace(tzinfo=None)})


def _journal_id(session: Any, reference: str) -> int:
    found = Prepared(_JOURNAL).first(session, {"reference": reference})
    assert found is not None
    return int(found[0])


def test_a_parameter_used_twice_and_a_statement_answering_nothing(core: Core) -> None:
    with core.transaction() as session:
        session.add(LedgerAccount(kind="wallet", name="wallet:test", balance=100, allow_negative=0))
        session.flush()
        assert _MOVE.scalar(session, {"name": "wallet:test", "delta": -60}) == 40
        assert _MOVE.scalar(session, {"name": "wallet:test", "delta": -60}) is None  # the floor held: no row
        _NEW_EVENT.run(session, {"at": AT, "actor": "test", "action": "a", "target": "t", "result": "ok"})
        rows = [{"at": AT, "actor": "test", "action": "b", "target": str(n), "result": "ok"} for n in range(3)]
        _NEW_EVENT.run_many(session, rows)
        kept = session.scalars(select(AuditEvent.action).where(AuditEvent.actor == "test")).all()
    assert sorted(kept) == ["a", "b", "b", "b"]


def test_a_driver_error_is_sqlalchemys_and_the_transaction_keeps_nothing(core: Core) -> None:
    with core.transaction() as session:
        _NEW_JOURNAL.first(session, {"kind": "payment", "reference": "r-2", "created_at": AT})
    with pytest.raises(IntegrityError), core.transaction() as session:
        _NEW_JOURNAL.first(session, {"kind": "refund", "reference": "r-3", "created_at": AT})
        _NEW_JOURNAL.first(session, {"kind": "payment", "reference": "r-2", "created_at": AT})  # the same act twice
    assert _journal(core, "r-3") is None  # rolled back with the transaction it ran in
    assert _journal(core, "r-2") is not None


def test_a_savepoint_undoes_a_prepared_statement(core: Core) -> None:
    with core.transaction() as session:
        with pytest.raises(IntegrityError), session.begin_nested():
            _NEW_JOURNAL.first(session, {"kind": "refund", "reference": "r-4", "created_at": AT})
            _NEW_JOURNAL.first(session, {"kind": "refund", "reference": "r-4", "created_at": AT})
        _NEW_JOURNAL.first(session, {"kind": "topup", "reference": "r-5", "created_at": AT})
    assert _journal(core, "r-4") is None
    assert _journal(core, "r-5") is not None


def test_a_listener_on_the_engine_sees_every_statement(core: Core) -> None:
    seen: list[str] = []

    def listener(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(core.engine, "before_cursor_execute", listener)
    try:
        with core.transaction() as session:
            _, created = _NEW_JOURNAL.first(session, {"kind": "payment", "reference": "r-6", "created_at": AT}) or ()
            answered = _JOURNALS_SINCE.first(session, {"since": AT})
    finally:
        event.remove(core.engine, "before_cursor_execute", listener)
    assert created == AT and answered is not None and answered[1] == 1  # the same answers through SQLAlchemy
    assert sum("INSERT INTO journals" in statement for statement in seen) == 1
    assert sum("FROM journals" in statement for statement in seen) == 1


def test_an_expanding_parameter_is_refused(core: Core) -> None:
    expanding = Prepared(select(Journal.id).where(Journal.reference.in_(bindparam("refs", expanding=True))))
    with core.transaction() as session, pytest.raises(ValueError, match="expanding"):
        expanding.rows(session, {"refs": ["r-1"]})


def test_a_column_left_out_takes_its_constant_default(core: Core) -> None:
    with core.transaction() as session:
        _NEW_EVENT.run(session, {"at": AT, "actor": "test", "action": "c", "target": "t", "result": "ok"})
        detail = session.scalar(select(AuditEvent.detail).where(AuditEvent.action == "c"))
    assert detail == "{}"


def test_a_default_computed_per_row_is_refused(core: Core) -> None:
    table = Table("counted", MetaData(), Column("id", Integer, primary_key=True), Column("n", Integer, default=len))
    computed = Prepared(insert(table).values(id=bindparam("id")))
    with core.transaction() as session, pytest.raises(ValueError, match="computed per row"):
        computed.run(session, {"id": 1})


def test_savepoints_go_plainly_and_still_undo_and_keep(core: Core) -> None:
    seen: list[str] = []

    def listener(*args: Any) -> None:
        seen.append(str(args[2]))

    with core.transaction() as session:
        with pytest.raises(IntegrityError), session.begin_nested():  # plain: no listener
            _NEW_JOURNAL.first(session, {"kind": "refund", "reference": "r-7", "created_at": AT})
            _NEW_JOURNAL.first(session, {"kind": "refund", "reference": "r-7", "created_at": AT})
        event.listen(core.engine, "before_cursor_execute", listener)
        try:
            with session.begin_nested():  # watched: the listener sees the savepoint and its release
                _NEW_JOURNAL.first(session, {"kind": "refund", "reference": "r-8", "created_at": AT})
        finally:
            event.remove(core.engine, "before_cursor_execute", listener)
    assert _journal(core, "r-7") is None and _journal(core, "r-8") is not None
    assert [statement.split()[0] for statement in seen] == ["SAVEPOINT", "INSERT", "RELEASE"]
