"""Group commit for SQLite: the registers' requests of a moment, in one transaction and one disk sync.

SQLite has one writer. A register's request used to hold it from its terminal's lookup to its COMMIT,
each in a worker thread of its own: the writer's lock passed from thread to thread, each pass waiting for
the interpreter's lock as well, and each request paid a sync of its own (measured: 5 ms of writer time a
payment for 2.3 ms of work). Here one thread, the writer, takes every register request that is waiting
(up to ``MAX_BATCH``), runs each in a SAVEPOINT of one transaction, one after another, and commits them
together: one sync, and no hand-over between requests.

Each request keeps its own all-or-nothing: its savepoint is released when it succeeds or answers an error
(what its own savepoints kept, such as the signature's nonce, stays, as for any request), rolled back when
the database refused it. No answer is given before the transaction has committed; if the commit fails,
every request of the batch answers that nothing was done (503), which is true. A request sees the rows
of the ones before it in the batch, as it would had they committed first.

PostgreSQL has row locks and many writers: there, requests keep a transaction each (``Core.group_writer``
is ``None``).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from payment_core.request_unit import RequestUnit, current_unit

log = logging.getLogger("possim.core")
MAX_BATCH = 64  # requests a transaction at most: a batch's last answer waits for all of them


@dataclass
class _Job:
    context: contextvars.Context  # the request's (its client address, for the audit)
    run: Callable[[], Any]
    future: Future[Any] = field(default_factory=Future)


class GroupCommitWriter:
    """The thread that runs submitted request work in batches, one transaction and one commit a batch."""

    def __init__(self, engine: Engine, sessions: sessionmaker[Session], max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._sessions = sessions
        self._max_batch = max_batch
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._closed = False
        self.batches = 0  # transactions committed, and the requests they held (for tests and benchmarks)
        self.requests = 0

    def submit(self, run: Callable[[], Any]) -> Future[Any]:
        """Run ``run()`` in the writer, inside the current context, in a batch's transaction; its future is
        settled once that transaction has committed (or failed)."""
        job = _Job(contextvars.copy_context(), run)
        with self._start:
            if self._closed:
                raise RuntimeError("the group writer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="possim-group-writer", daemon=True)
                self._thread.start()
            self._jobs.put(job)
        return job.future

    def close(self, timeout: float = 30.0) -> None:
        """Finish what was submitted, then stop the thread."""
        with self._start:
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._jobs.put(None)
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            job = self._jobs.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < self._max_batch:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            self._run_batch(batch)

    def _run_batch(self, batch: list[_Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        after_commit: list[Callable[[], None]] = []
        try:
            with self._engine.connect() as connection, connection.begin():
                for job in batch:
                    outcomes.append(self._run_one(connection, job, after_commit))
        except BaseException as error:  # the transaction (BEGIN, a savepoint, COMMIT) failed: nothing was kept
            log.error("group commit failed: %s", type(error).__name__)
            for job in batch:  # and the thread goes on: the next requests must still be answered
                job.future.set_exception(error)
            return
        self.batches += 1
        self.requests += len(batch)
        for call in after_commit:  # before the answers, as a request's own commit does
            try:
                call()
            except Exception as error:  # what runs after a commit is a nudge (wake the queued work): logged
                log.error("after the group commit: %s", type(error).__name__)
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    def _run_one(self, connection: Connection, job: _Job, after_commit: list[Callable[[], None]]) -> tuple[bool, Any]:
        """One request in a savepoint of the batch's transaction: (True, its answer) or (False, its error).
        Raises (and so fails the batch) only when its savepoint can be neither released nor rolled back."""
        own = functools.partial(self._sessions, bind=connection, join_transaction_mode="create_savepoint")
        unit = RequestUnit(own, after_commit=after_commit)

        def inside() -> Any:
            token = current_unit.set(unit)
            try:
                return job.run()
            finally:
                current_unit.reset(token)

        try:
            value = job.context.run(inside)
        except SQLAlchemyError as error:  # the database refused it: undo its savepoint, the batch goes on
            unit.rollback()
            return False, error
        except Exception as error:  # a refusal (a bad signature, a declined code): keep what it kept
            unit.commit()
            return False, error
        unit.commit()  # a no-op when the work committed its unit itself
        return True, value
