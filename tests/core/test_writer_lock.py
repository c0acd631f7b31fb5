"""SQLite's writer within a process (``payment_core.writer_lock``): it counts the threads queued for it, and
background work (the queued-work runner) steps aside for them between two of its transactions."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine

from payment_core import db, queued_work
from payment_core.core import Core
from payment_core.writer_lock import WriterLock

BOUND_SECONDS = 10.0


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + BOUND_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "not within the bound"
        time.sleep(0.001)


@contextmanager
def _queued_holder(take: Callable[[], object], drop: Callable[[], None], lock: WriterLock) -> Iterator[None]:
    """A thread that queues for ``lock`` (through ``take``), then holds it until the block ends."""
    let_go = threading.Event()

    def hold() -> None:
        take()
        let_go.wait(BOUND_SECONDS)
        drop()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        _until(lambda: lock.queued == 1)
        yield
    finally:
        let_go.set()
        thread.join(BOUND_SECONDS)
    assert not thread.is_alive()


def test_a_free_lock_is_taken_at_once_and_a_taker_that_gives_up_leaves_the_queue() -> None:
    lock = WriterLock()
    assert lock.acquire(timeout=1.0) and lock.queued == 0
    assert lock.acquire(timeout=0.0) is False and lock.queued == 0  # it gave up: out of the queue again
    lock.release()
    assert lock.step_aside(timeout=0.0)  # nobody queued: nothing to wait for


def test_stepping_aside_waits_until_the_queued_thread_has_the_lock() -> None:
    lock = WriterLock()
    assert lock.acquire(timeout=1.0)
    with _queued_holder(lambda: lock.acquire(timeout=BOUND_SECONDS), lock.release, lock):
        lock.release()
        assert lock.step_aside(timeout=BOUND_SECONDS)
        assert lock.acquire(timeout=0.0) is False  # the queued thread has it: it went first


def test_stepping_aside_is_bounded_when_the_queue_does_not_move() -> None:
    lock = WriterLock()
    assert lock.acquire(timeout=1.0)
    with _queued_holder(lambda: lock.acquire(timeout=BOUND_SECONDS), lock.release, lock):
        assert lock.step_aside(timeout=0.02) is False  # the holder never let go: the background work goes on
        lock.release()


def _writer(engine: Engine) -> WriterLock:
    writer = db._WRITERS.get(engine)
    assert writer is not None
    return writer


def test_a_sqlite_transaction_queued_for_the_writer_goes_before_background_work(core: Core) -> None:
    if db.is_postgres(core.engine):
        assert db._WRITERS.get(core.engine) is None  # row locks and many writers: nothing to step aside for
        db.step_aside_for_writers(core.engine)  # and a no-op there
        return
    writer = _writer(core.engine)
    session = core.sessions()
    session.begin()
    session.connection()  # BEGIN IMMEDIATE: this thread is SQLite's writer
    other = core.sessions()

    def take() -> None:
        other.begin()
        other.connection()

    with _queued_holder(take, other.close, writer):
        session.close()  # the writer is free, a transaction is queued for it
        db.step_aside_for_writers(core.engine)
        assert writer.acquire(timeout=0.0) is False  # the queued transaction went first


def test_the_runner_steps_aside_between_two_jobs(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    core.config = dataclasses.replace(core.config, queued_work_runner=False)
    for number in range(3):
        queued_work.enqueue(core, "reset", {"email": f"nobody{number}@example.jp", "send_to": None})
    steps: list[int] = []
    original = db.step_aside_for_writers

    def counted(engine: Engine) -> None:
        steps.append(queued_work.waiting(core))
        original(engine)

    monkeypatch.setattr(queued_work, "step_aside_for_writers", counted)
    assert queued_work.run_ready(core) == 3
    assert steps == [2, 1, 0]  # after each job, before the next look (the first job went at once)
