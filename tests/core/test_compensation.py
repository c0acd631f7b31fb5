"""Paying a victim back: one balanced journal from the operator's loss book, once per compensation id,
audited with the operator, told to the wallet; the books still balance. Real cores on both stores."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from payment_core.compensation import KIND, OPERATOR_LOSS, compensate
from payment_core.core import Core
from payment_core.ledger import book_by_name
from payment_core.models import AuditEvent, Journal, Notification
from protocol import ErrorCode, ProtocolError
from tests.support import assert_books_balance, balance
from wallet_app.state import WalletState

OPERATOR = "admin:kato"


def _events(core: Core) -> list[AuditEvent]:
    with core.transaction() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == KIND).order_by(AuditEvent.id)))


def _journals(core: Core) -> int:
    with core.transaction() as session:
        return int(session.scalar(select(func.count()).where(Journal.kind == KIND)) or 0)


def _loss_balance(core: Core) -> int:
    with core.transaction() as session:
        book = book_by_name(session, OPERATOR_LOSS)
        assert book.allow_negative == 1
        return book.balance


def test_a_compensation_pays_the_wallet_from_the_loss_book_once(core: Core, wallet: WalletState, funded: int) -> None:
    paid = compensate(core, wallet.account_id, 3_000, "inc-2019-07-hanako", OPERATOR, "takeover from 127.90.0.5")
    assert not paid.replayed and paid.amount == 3_000 and paid.account_id == wallet.account_id
    assert balance(core, wallet) == funded + 3_000
    assert _loss_balance(core) == -3_000  # the operator's money, from outside, like a clearing book
    assert_books_balance(core)
    (event,) = _events(core)
    assert (event.actor, event.target, event.result) == (OPERATOR, f"account:{wallet.account_id}", "succeeded")
    detail = json.loads(event.detail)
    assert detail["compensation_id"] == "inc-2019-07-hanako" and detail["amount"] == 3_000
    assert detail["reason"] == "takeover from 127.90.0.5"
    with core.transaction() as session:
        (note,) = session.scalars(select(Notification).where(Notification.kind == KIND)).all()
    assert note.account_id == wallet.account_id and "¥3,000 was paid back" in note.message

    again = compensate(core, wallet.account_id, 3_000, "inc-2019-07-hanako", OPERATOR)
    assert again.replayed and again.at == paid.at
    assert balance(core, wallet) == funded + 3_000 and _journals(core) == 1 and len(_events(core)) == 1

    second = compensate(core, wallet.account_id, 500, "inc-2019-07-hanako-2", OPERATOR)
    assert not second.replayed and balance(core, wallet) == funded + 3_500 and _loss_balance(core) == -3_500
    assert_books_balance(core)


@pytest.mark.parametrize("change", ["amount", "account"])
def test_the_same_id_with_other_figures_is_refused_and_audited(
    core: Core, wallet: WalletState, funded: int, change: str
) -> None:
    compensate(core, wallet.account_id, 3_000, "inc-1", OPERATOR)
    amount, account = (2_000, wallet.account_id) if change == "amount" else (3_000, wallet.account_id + 1)
    with pytest.raises(ProtocolError) as refused:
        compensate(core, account, amount, "inc-1", OPERATOR)
    assert refused.value.code == ErrorCode.IDEMPOTENCY_CONFLICT and refused.value.param == "compensation_id"
    assert balance(core, wallet) == funded + 3_000 and _journals(core) == 1
    assert [event.result for event in _events(core)] == ["succeeded", "refused_conflict"]


def test_bad_compensations_move_nothing(core: Core, wallet: WalletState, funded: int) -> None:
    cases = [
        (wallet.account_id, 0, "inc-1", ErrorCode.AMOUNT_INVALID),
        (wallet.account_id, -5, "inc-1", ErrorCode.AMOUNT_INVALID),
        (wallet.account_id, 100, "", ErrorCode.VALIDATION_FAILED),
        (wallet.account_id, 100, "has space", ErrorCode.VALIDATION_FAILED),
        (wallet.account_id, 100, "x" * 61, ErrorCode.VALIDATION_FAILED),
        (wallet.account_id + 99, 100, "inc-1", ErrorCode.NOT_FOUND),
    ]
    for account_id, amount, compensation_id, code in cases:
        with pytest.raises(ProtocolError) as refused:
            compensate(core, account_id, amount, compensation_id, OPERATOR)
        assert refused.value.code == code, (account_id, amount, compensation_id)
    assert balance(core, wallet) == funded and _journals(core) == 0 and _events(core) == []
    assert_books_balance(core)


def test_two_operators_paying_the_same_id_at_once_pay_once(core: Core, wallet: WalletState, funded: int) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: compensate(core, wallet.account_id, 1_000, "inc-race", OPERATOR), range(8)))
    assert sum(not result.replayed for result in results) == 1
    assert {result.at for result in results} == {results[0].at}
    assert balance(core, wallet) == funded + 1_000 and _journals(core) == 1 and _loss_balance(core) == -1_000
    assert_books_balance(core)
