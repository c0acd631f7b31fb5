"""The core's runtime: configuration, database and clock, shared by the API and the admin commands."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from payment_core.config import CoreConfig
from payment_core.db import make_engine, make_session_factory, migrate, transaction


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class Core:
    def __init__(self, config: CoreConfig, engine: Engine | None = None) -> None:
        self.config = config
        self.engine = engine or make_engine(config.db_url, config.db_schema)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)

    def now(self) -> datetime:
        return self.config.clock()

    def migrate(self) -> None:
        migrate(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with transaction(self.sessions) as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()
