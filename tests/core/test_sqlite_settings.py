"""What every connection of a SQLite core is set to: WAL, foreign keys, durable commits, and a page cache
large enough for a 1M-entry ledger's index pages (``db.SQLITE_CACHE_KIB``; `possim bench --only growth`)."""

from __future__ import annotations

from sqlalchemy import text

from payment_core.core import Core
from payment_core.db import SQLITE_CACHE_KIB, is_postgres


def test_each_sqlite_connection_is_set_up_for_a_large_ledger(core: Core) -> None:
    with core.transaction() as session:
        if is_postgres(core.engine):
            assert session.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
            return
        pragma = {name: session.execute(text(f"PRAGMA {name}")).scalar_one() for name in ("cache_size", "foreign_keys")}
        assert pragma == {"cache_size": -SQLITE_CACHE_KIB, "foreign_keys": 1}
