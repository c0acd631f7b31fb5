"""``Core.transaction(durable=False)``: the record of a refused sign-in commits without waiting for the disk,
and nothing else does. On SQLite the connection is back to ``synchronous=FULL`` for the next transaction
whether the light one committed or rolled back; on PostgreSQL ``synchronous_commit`` is off for that one
transaction only. Both stores."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from payment_core.core import Core
from payment_core.db import is_postgres
from payment_core.models import AuditEvent
from payment_core.throttle import THROTTLED

FULL, NORMAL = 2, 1  # PRAGMA synchronous


def _syncs(core: Core, session: Session) -> object:
    if is_postgres(core.engine):
        return session.execute(text("SHOW synchronous_commit")).scalar_one()
    return session.execute(text("PRAGMA synchronous")).scalar_one()


def _durable(core: Core) -> object:
    return "on" if is_postgres(core.engine) else FULL


def _light(core: Core) -> object:
    return "off" if is_postgres(core.engine) else NORMAL


def test_a_light_transaction_commits_without_a_sync_and_the_next_one_syncs_again(core: Core) -> None:
    with core.transaction() as session:
        assert _syncs(core, session) == _durable(core)
        before = session.connection().connection.dbapi_connection
    with core.transaction(durable=False) as session:
        assert _syncs(core, session) == _light(core)
        session.add(AuditEvent(at=core.now(), actor="core", action="signin.attempt", target="t", result=THROTTLED))
    for _ in range(3):
        with core.transaction() as session:
            assert _syncs(core, session) == _durable(core)
            assert session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() >= 1
            if not is_postgres(core.engine):
                assert session.connection().connection.dbapi_connection is before  # the same connection


def test_a_light_transaction_that_fails_leaves_nothing_and_the_next_one_syncs(core: Core) -> None:
    with pytest.raises(RuntimeError), core.transaction(durable=False) as session:
        session.add(AuditEvent(at=core.now(), actor="core", action="light.fails", target="t", result=THROTTLED))
        session.flush()
        raise RuntimeError("refused")
    with core.transaction() as session:
        assert _syncs(core, session) == _durable(core)
        kept = session.execute(select(func.count()).where(AuditEvent.action == "light.fails")).scalar_one()
    assert kept == 0
