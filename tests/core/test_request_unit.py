"""A request is one transaction: its signature's nonce, the payment, the journal, the audit and the answer's
view commit together, before the answer is sent; a commit that fails answers 503 and keeps nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from payment_core.core import Core
from payment_core.models import AuditEvent, Payment, RequestNonce
from payment_core.request_unit import RequestUnit
from tests.support import SignedCaller, assert_books_balance, balance, error_code
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState


class Commits:
    """Counts the transactions the engine begins and commits (connection events, any thread)."""

    def __init__(self) -> None:
        self.begun = 0
        self.committed = 0
        self.fail_next = False

    def on_begin(self, _conn: Any) -> None:
        self.begun += 1

    def on_commit(self, _conn: Any) -> None:
        if self.fail_next:
            self.fail_next = False
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))
        self.committed += 1


@pytest.fixture
def commits(core: Core) -> Iterator[Commits]:
    counted = Commits()
    event.listen(core.engine, "begin", counted.on_begin)
    event.listen(core.engine, "commit", counted.on_commit)
    yield counted
    event.remove(core.engine, "begin", counted.on_begin)
    event.remove(core.engine, "commit", counted.on_commit)


def test_a_payment_is_one_transaction(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int, commits: Commits
) -> None:
    answer = terminal.pay("unit-1", 300, minter.mint().qr)
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded"
    assert (commits.begun, commits.committed) == (1, 1)  # nonce, payment, journal, audit, view: together
    assert balance(core, wallet) == funded - 300


def test_a_declined_payment_keeps_its_nonce_and_decline_in_one_commit(
    core: Core, terminal: SignedCaller, minter: CodeMinter, funded: int, commits: Commits
) -> None:
    answer = terminal.pay("unit-2", funded * 2, minter.mint().qr)
    assert (answer.status_code, error_code(answer)) == (402, "insufficient_funds")
    assert (commits.begun, commits.committed) == (1, 1)
    with core.transaction() as session:
        stored = session.scalars(select(Payment).where(Payment.order_id == "unit-2")).one()
        nonces = session.scalars(select(RequestNonce).where(RequestNonce.key_id == terminal.key_id)).all()
    assert stored.decline_code == "insufficient_funds"
    assert nonces  # a replay of this very request is still refused


def test_a_failed_commit_answers_503_and_keeps_nothing(
    core: Core, terminal: SignedCaller, minter: CodeMinter, wallet: WalletState, funded: int, commits: Commits
) -> None:
    with core.transaction() as session:
        events_before = len(session.scalars(select(AuditEvent)).all())
    commits.fail_next = True
    code = minter.mint().qr
    answer = terminal.pay("unit-3", 500, code)
    assert (answer.status_code, error_code(answer)) == (503, "service_unavailable")
    assert "Traceback" not in answer.text
    with core.transaction() as session:
        assert session.scalars(select(Payment).where(Payment.order_id == "unit-3")).first() is None
        assert len(session.scalars(select(AuditEvent)).all()) == events_before
    assert balance(core, wallet) == funded
    assert_books_balance(core)
    retried = terminal.pay("unit-3", 500, code)  # the register retries the same order: it goes through once
    assert retried.status_code == 200 and retried.json()["status"] == "succeeded"
    assert balance(core, wallet) == funded - 500


def test_what_waits_for_the_commit_runs_after_it_and_never_after_a_rollback(core: Core) -> None:
    """A queued job's runner is woken once the request's rows are committed, where it can see them."""
    seen: list[int] = []

    def count_nonces() -> None:
        with core.read() as session:
            seen.append(len(session.scalars(select(RequestNonce)).all()))

    kept = RequestUnit(core.sessions)
    kept.session().add(RequestNonce(key_id="term_x", nonce="kept", seen_at=core.now()))
    kept.after_commit(count_nonces)
    assert seen == []
    kept.commit()
    assert seen == [1]  # it ran after the commit and saw the row from another session
    dropped = RequestUnit(core.sessions)
    dropped.session().add(RequestNonce(key_id="term_x", nonce="dropped", seen_at=core.now()))
    dropped.after_commit(count_nonces)
    dropped.rollback()
    assert seen == [1]
