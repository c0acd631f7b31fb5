"""The core's runtime: configuration, database and clock, shared by the API and the admin commands."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from payment_core.config import CoreConfig
from payment_core.db import make_engine, make_session_factory, migrate, transaction
from protocol import ErrorCode, ProtocolError

T = TypeVar("T")
CONCURRENT_RETRIES = 5


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
