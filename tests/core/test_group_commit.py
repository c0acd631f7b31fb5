"""The group writer (payment_core.group_commit): on SQLite, the registers' requests of a moment share one
transaction and one commit, each in a savepoint of its own, and none is answered before that commit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import wait as wait_for_futures
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from payment_core.core import Core
from payment_core.db import is_postgres
from payment_core.group_commit import GroupCommitWriter
from payment_core.models import CoreMeta
from payment_core.request_unit import current_unit
from possim.world import new_core
from protocol import ErrorCode, ManualClock, ProtocolError
from tests.support import SignedCaller
from wallet_app.minter import CodeMinter

WAIT_SECONDS = 10.0


@pytest.fixture
def sqlite_core(tmp_path: Path, clock: ManualClock) -> Iterator[Core]:
    instance = new_core(tmp_path / "group.db", clock=clock)
    yield instance
    instance.close()


def _writer(core: Core) -> GroupCommitWriter:
    assert core.group_writer is not None
    return core.group_writer


def _note(core: Core, name: str) -> Callable[[], str]:
    """A request's work: a row named ``name``, written through the core as any route writes."""

    def work() -> str:
        with core.transaction() as session:
            session.add(CoreMeta(name=name, value="x", updated_at=core.now()))
        return name

    return work


def _kept(core: Core) -> set[str]:
    with core.sessions() as session:
        return set(session.scalars(select(CoreMeta.name).where(CoreMeta.name.like("job-%"))))


def _behind_a_held_request(
    core: Core, jobs: list[Callable[[], str]]
) -> tuple[Future[str], list[Future[str]], threading.Event]:
    """A first request that the writer runs until ``release`` is set (it writes ``job-first``), and ``jobs``
    submitted while it runs, so they wait together for the next batch."""
    started, release = threading.Event(), threading.Event()

    def held() -> str:
        started.set()
        assert release.wait(WAIT_SECONDS)
        return _note(core, "job-first")()

    writer = _writer(core)
    first = writer.submit(held)
    assert started.wait(WAIT_SECONDS)
    return first, [writer.submit(job) for job in jobs], release


def test_the_requests_that_wait_share_one_transaction_and_none_is_answered_before_it_commits(
    sqlite_core: Core,
) -> None:
    writer = _writer(sqlite_core)
    first, waiting, release = _behind_a_held_request(sqlite_core, [_note(sqlite_core, f"job-{n}") for n in range(5)])
    assert not any(future.done() for future in [first, *waiting])  # nothing answered while the first runs
    release.set()
    done, _ = wait_for_futures([first, *waiting], WAIT_SECONDS)
    assert len(done) == 6
    assert [future.result() for future in waiting] == [f"job-{index}" for index in range(5)]
    assert (writer.batches, writer.requests) == (2, 6)  # the first alone, then the five that waited, together
    assert _kept(sqlite_core) == {"job-first", *(f"job-{index}" for index in range(5))}


def test_a_refused_request_keeps_what_it_kept_and_a_failed_one_only_loses_its_own(sqlite_core: Core) -> None:
    writer = _writer(sqlite_core)
    core = sqlite_core

    def refused() -> str:
        _note(core, "job-nonce")()  # as the signature's nonce is kept when the payment is refused
        raise ProtocolError(ErrorCode.AMOUNT_INVALID)

    def failed() -> str:
        with core.transaction() as session:
            session.add(CoreMeta(name="job-failed", value="x", updated_at=core.now()))
            session.flush()
            session.execute(select(func.no_such_function()))  # the database refuses the request
        return "never"

    first, futures, release = _behind_a_held_request(core, [refused, failed, _note(core, "job-after")])
    release.set()
    wait_for_futures([first, *futures], WAIT_SECONDS)
    with pytest.raises(ProtocolError) as refusal:
        futures[0].result()
    assert refusal.value.code is ErrorCode.AMOUNT_INVALID
    with pytest.raises(OperationalError):
        futures[1].result()
    assert futures[2].result() == "job-after"
    assert writer.batches == 2
    assert _kept(core) == {"job-first", "job-nonce", "job-after"}


def test_a_failed_commit_answers_every_request_of_the_batch_with_the_error_and_keeps_nothing(
    sqlite_core: Core,
) -> None:
    writer = _writer(sqlite_core)
    first, waiting, release = _behind_a_held_request(sqlite_core, [_note(sqlite_core, f"job-{n}") for n in range(3)])

    def refuse_commit(_connection: object) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    event.listen(sqlite_core.engine, "commit", refuse_commit)
    try:
        release.set()
        wait_for_futures([first, *waiting], WAIT_SECONDS)
    finally:
        event.remove(sqlite_core.engine, "commit", refuse_commit)
    for future in [first, *waiting]:
        with pytest.raises(OperationalError):
            future.result()
    assert writer.batches == 0
    assert _kept(sqlite_core) == set()
    again = writer.submit(_note(sqlite_core, "job-later"))  # the writer goes on
    assert again.result(WAIT_SECONDS) == "job-later"
    assert _kept(sqlite_core) == {"job-later"}


def test_what_waits_for_a_commit_runs_after_the_batch_has_committed(sqlite_core: Core) -> None:
    writer = _writer(sqlite_core)
    seen: list[set[str]] = []

    def work() -> str:
        unit = current_unit.get()
        assert unit is not None
        unit.after_commit(lambda: seen.append(_kept(sqlite_core)))  # reads in a transaction of its own
        return _note(sqlite_core, "job-told")()

    assert writer.submit(work).result(WAIT_SECONDS) == "job-told"
    assert seen == [{"job-told"}]


def test_a_closed_writer_finishes_what_it_was_given_and_takes_no_more(sqlite_core: Core) -> None:
    writer = _writer(sqlite_core)
    futures: list[Future[str]] = [writer.submit(_note(sqlite_core, f"job-{index}")) for index in range(3)]
    writer.close()
    assert [future.result(WAIT_SECONDS) for future in futures] == ["job-0", "job-1", "job-2"]
    with pytest.raises(RuntimeError):
        writer.submit(_note(sqlite_core, "job-late"))


def test_only_sqlite_groups_commits(core: Core) -> None:
    """PostgreSQL has row locks and many writers: each request keeps a transaction of its own there."""
    assert (core.group_writer is None) == is_postgres(core.engine)


@pytest.mark.load_risk  # ten payments in a second are a burst the shipped rules would step up
def test_registers_paying_at_once_are_all_answered_from_their_own_commits(
    core: Core, terminal: SignedCaller, second_terminal: SignedCaller, minter: CodeMinter, funded: int
) -> None:
    """Two registers pay at once, many times over, through the real server: every payment is answered once,
    the balances add up, and on SQLite the group writer ran them."""
    codes = [minter.mint().qr for _ in range(10)]
    answers: dict[str, int] = {}
    balances: list[int] = []

    def pay(caller: SignedCaller, orders: list[tuple[str, str]]) -> None:
        for order, code in orders:
            answer = caller.pay(order, 100, code)
            answers[order] = answer.status_code
            balances.append(answer.json()["balance_after"])

    plans = [[(f"both-{index}", codes[index]) for index in range(part, 10, 2)] for part in (0, 1)]
    callers = (terminal, second_terminal)
    threads = [threading.Thread(target=pay, args=pair) for pair in zip(callers, plans, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS * 3)
    assert answers == {f"both-{index}": 200 for index in range(10)}
    assert sorted(balances) == [funded - 100 * paid for paid in range(10, 0, -1)]  # one after another, each once
    if core.group_writer is not None:
        assert core.group_writer.requests >= 11  # the ten, the look-up (and the funding)
