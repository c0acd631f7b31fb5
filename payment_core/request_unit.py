"""One database transaction for a whole API request.

A request used to take a transaction for the terminal's lookup, another for its nonce, another for the
payment and another for the answer's view: on SQLite four writer locks and four commits a payment. Now
the API opens a :class:`RequestUnit` per request (``payment_core.api_unit``) and every
``Core.transaction()`` inside it is a SAVEPOINT of the unit's one transaction: each keeps its own
all-or-nothing behaviour (an error rolls back its savepoint only), and the unit commits once, before the
answer is sent. A commit that fails turns the answer into a 503, so nothing is ever answered that is not
durable.

The unit is found through a context variable; the worker threads FastAPI runs dependencies and routes in
get a copy of the request's context, so they all see the same unit (one after another, never at once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy.orm import Session


class RequestUnit:
    """The transaction of one request, begun on first use."""

    def __init__(self, sessions: Callable[[], Session], after_commit: list[Callable[[], None]] | None = None) -> None:
        """``after_commit``: where to leave the calls of :meth:`after_commit` when this unit is a savepoint of a
        larger transaction (``payment_core.group_commit``), for its owner to make once that has committed."""
        self._sessions = sessions
        self._session: Session | None = None
        self._after_commit: list[Callable[[], None]] = []
        self._later = after_commit

    def after_commit(self, call: Callable[[], None]) -> None:
        """Call ``call`` once this unit has committed (not if it rolls back): what must see its rows."""
        self._after_commit.append(call)

    @property
    def used(self) -> bool:
        return self._session is not None

    def session(self) -> Session:
        """The request's session, its transaction begun (for reads: nothing in them to undo)."""
        if self._session is None:
            self._session = self._sessions()
            self._session.begin()
        return self._session

    @contextmanager
    def savepoint(self) -> Iterator[Session]:
        session = self.session()
        with session.begin_nested():
            yield session

    def commit(self) -> None:
        """Commit and close (a no-op if the request never used the database); raises what the commit raises."""
        session, self._session = self._session, None
        if session is None:
            return
        try:
            session.commit()
        except BaseException:
            session.rollback()  # a failed COMMIT may leave the database's transaction open: end it here
            raise
        finally:
            session.close()
        calls, self._after_commit = self._after_commit, []
        if self._later is not None:
            self._later.extend(calls)
            return
        for call in calls:
            call()

    def rollback(self) -> None:
        self._after_commit = []
        session, self._session = self._session, None
        if session is not None:
            session.close()  # closing rolls back what was not committed


current_unit: ContextVar[RequestUnit | None] = ContextVar("possim_request_unit", default=None)


def commit_request() -> None:
    """Commit the current request's unit now, in this thread (nothing outside a request, or if it is unused)."""
    unit = current_unit.get()
    if unit is not None:
        unit.commit()
