"""SQLite's writers in several processes queue on a flock beside the database (``payment_core.db``), so
``possim core serve --workers N`` can run on SQLite: every write lands, a writer's transaction holds the
lock file from BEGIN to COMMIT, and a process killed while holding it lets the others go at once (the
kernel drops the flock) rather than after the writers' time bound."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
from sqlalchemy import Engine

from payment_core import db
from payment_core.db import SQLITE_LOCK_SECONDS, make_engine, writer_lock_file

WRITES = 60  # per thread
THREADS = 2  # per process: the threads of one process share its flock, behind the thread lock
START_SECONDS = 60.0  # a fresh interpreter importing SQLAlchemy on a loaded 2-core machine
DONE_SECONDS = 120.0
# How soon the survivor of a killed holder must have written: well under the writers' own time bound, which
# a flock left held would make it wait out before going on to SQLite's busy handler.
AFTER_KILL_SECONDS = SQLITE_LOCK_SECONDS / 3
SPAWN = multiprocessing.get_context("spawn")


def make_table(path: Path) -> None:
    engine = make_engine(str(path))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE counter (value INTEGER NOT NULL)")
            conn.exec_driver_sql("INSERT INTO counter (value) VALUES (0)")
            conn.exec_driver_sql("CREATE TABLE writes (writer TEXT NOT NULL, number INTEGER NOT NULL)")
    finally:
        engine.dispose()


def lock_is_held(lock_file: Path) -> bool:
    """Whether some writer holds the database's flock now (asked through a descriptor of our own)."""
    descriptor = os.open(lock_file, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # drops the lock if we took it
    return False


def write(engine: Engine, lock_file: Path, writer: str, number: int) -> bool:
    """One read-modify-write of the counter and a row; whether the flock was held all through it."""
    with engine.begin() as conn:
        held = lock_is_held(lock_file)
        value = conn.exec_driver_sql("SELECT value FROM counter").scalar_one()
        conn.exec_driver_sql("UPDATE counter SET value = ?", (value + 1,))
        conn.exec_driver_sql("INSERT INTO writes (writer, number) VALUES (?, ?)", (writer, number))
        return held and lock_is_held(lock_file)


def writer_process(path: str, name: str, go: Event) -> None:
    """A child: ``THREADS`` threads of one engine, ``WRITES`` each; exits 0 only if the flock was held in
    every transaction."""
    engine = make_engine(path)
    lock_file = writer_lock_file(path)
    assert lock_file is not None
    assert go.wait(START_SECONDS), "never told to go"
    try:
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            futures = [
                pool.submit(write, engine, lock_file, f"{name}-{thread}", number)
                for thread in range(THREADS)
                for number in range(WRITES)
            ]
            held = [future.result(timeout=DONE_SECONDS) for future in futures]
    finally:
        engine.dispose()
    os._exit(0 if all(held) else 1)


def holding_process(path: str, holding: Event) -> None:
    """A child that opens a transaction, writes, says so and waits (to be killed) without committing."""
    engine = make_engine(path)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO writes (writer, number) VALUES ('doomed', 0)")
        holding.set()
        threading.Event().wait(DONE_SECONDS)  # killed long before: this bound only stops an orphan
    os._exit(2)


@contextmanager
def child(target: Callable[..., object], *args: object) -> Iterator[multiprocessing.process.BaseProcess]:
    process = SPAWN.Process(target=target, args=args, daemon=True)
    process.start()
    try:
        yield process
    finally:
        if process.is_alive():
            process.kill()
        process.join(timeout=DONE_SECONDS)


def count(engine: Engine, sql: str) -> int:
    with engine.begin() as conn:
        return int(conn.exec_driver_sql(sql).scalar_one())


def test_two_processes_writing_to_one_file_both_finish_and_every_write_counts(tmp_path: Path) -> None:
    path = tmp_path / "core.db"
    make_table(path)
    go = SPAWN.Event()
    with child(writer_process, str(path), "a", go) as first, child(writer_process, str(path), "b", go) as second:
        go.set()
        first.join(timeout=DONE_SECONDS)
        second.join(timeout=DONE_SECONDS)
        assert (first.exitcode, second.exitcode) == (0, 0)  # 1: a transaction ran without the flock
    engine = make_engine(str(path))
    try:
        total = 2 * THREADS * WRITES
        assert count(engine, "SELECT value FROM counter") == total  # no update lost
        assert count(engine, "SELECT COUNT(*) FROM writes") == total
        assert count(engine, "SELECT COUNT(DISTINCT writer) FROM writes") == 2 * THREADS
    finally:
        engine.dispose()


def test_a_writer_killed_holding_the_lock_does_not_hold_up_the_other(tmp_path: Path) -> None:
    path = tmp_path / "core.db"
    make_table(path)
    lock_file = writer_lock_file(str(path))
    assert lock_file == tmp_path / "core.db.writer-lock"
    engine = make_engine(str(path))
    holding = SPAWN.Event()
    try:
        with child(holding_process, str(path), holding) as holder:
            assert holding.wait(START_SECONDS), "the holder never opened its transaction"
            assert lock_is_held(lock_file)
            with ThreadPoolExecutor(max_workers=1) as pool:
                wrote = pool.submit(lambda: (write(engine, lock_file, "survivor", 1), time.monotonic()))
                assert holder.pid is not None
                killed = time.monotonic()
                os.kill(holder.pid, signal.SIGKILL)
                held, committed = wrote.result(timeout=DONE_SECONDS)
            holder.join(timeout=DONE_SECONDS)
            assert holder.exitcode == -signal.SIGKILL
        assert held
        assert committed > killed  # it waited for the holder
        assert committed - killed < AFTER_KILL_SECONDS, committed - killed
        assert not lock_is_held(lock_file)
        with engine.begin() as conn:  # the holder's write went with it, the survivor's is there
            assert conn.exec_driver_sql("SELECT writer FROM writes").scalars().all() == ["survivor"]
            assert conn.exec_driver_sql("SELECT value FROM counter").scalar_one() == 1
    finally:
        engine.dispose()


def test_a_forked_child_opens_the_lock_file_for_itself(tmp_path: Path) -> None:
    """flock belongs to an open file description: a child sharing its parent's would take the lock the
    parent holds. The child here gets its own and finds the lock taken."""
    lock = db._ProcessWriterLock(tmp_path / "core.db.writer-lock")
    assert lock.acquire(time.monotonic() + 1)
    try:
        process = multiprocessing.get_context("fork").Process(target=_try_briefly, args=(lock,))
        process.start()
        process.join(timeout=DONE_SECONDS)
        assert process.exitcode == 0  # 1: it took the lock its parent holds
    finally:
        lock.release()
    assert lock.acquire(time.monotonic())  # free again, at the first try


def _try_briefly(lock: db._ProcessWriterLock) -> None:
    os._exit(1 if lock.acquire(time.monotonic() + 0.05) else 0)


def test_a_writer_that_gave_up_leaves_the_lock_to_the_next(tmp_path: Path) -> None:
    """A writer waits for the flock through a helper thread blocked in it; one that gives up (its deadline
    passed) leaves the helper to hand the lock to the process's next writer, or to let it go."""
    path = tmp_path / "core.db.writer-lock"
    holder, waiter = db._ProcessWriterLock(path), db._ProcessWriterLock(path)  # two descriptions, as two processes
    assert holder.acquire(time.monotonic())
    assert not waiter.acquire(time.monotonic() + 0.05)  # gave up: its helper still blocks
    with ThreadPoolExecutor(max_workers=1) as pool:
        later = pool.submit(waiter.acquire, time.monotonic() + DONE_SECONDS)
        wait_until(lambda: waiter._waiting, "the next writer never waited")  # for the same helper
        holder.release()
        assert later.result(timeout=DONE_SECONDS)  # handed over by the helper
    assert not holder.acquire(time.monotonic() + 0.05)
    waiter.release()  # the holder's helper now takes it, but nobody waits for it any more: it lets go
    wait_until(lambda: holder._helper is None, "the holder's helper never took the lock")
    assert waiter.acquire(time.monotonic())  # free at the first try
    waiter.release()


def wait_until(condition: Callable[[], bool], message: str) -> None:
    deadline = time.monotonic() + DONE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.01)


def test_no_lock_file_in_memory_or_without_fcntl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert writer_lock_file(":memory:") is None
    assert writer_lock_file("sqlite://") is None
    assert writer_lock_file("relative.db") == Path("relative.db.writer-lock").absolute()
    monkeypatch.setattr(db, "fcntl", None)  # as on Windows: writers queue within the process only
    path = tmp_path / "core.db"
    assert writer_lock_file(str(path)) is None
    make_table(path)
    engine = make_engine(str(path))
    try:
        assert count(engine, "SELECT value FROM counter") == 0
    finally:
        engine.dispose()
    assert not (tmp_path / "core.db.writer-lock").exists()
