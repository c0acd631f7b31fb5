"""Paying a takeover's victim back: the operator bears the loss (issue 13, incident controls).

A compensation is one balanced journal (kind ``compensation``, reference the operator's compensation id)
from the operator's loss book, ``operator_loss``, to the victim's wallet. The loss book stands for money the
operator puts in from outside, like the clearing books, so it may go below zero: its balance is minus what
the operator has paid back in all. It is made on the first compensation (no migration: one
``INSERT ... ON CONFLICT DO NOTHING``, so two first compensations at once make it once).

The compensation id makes it idempotent, and the ledger's unique (kind, reference) holds it whatever the
code above does: the same id again returns the first result; the same id with another amount or account
is refused (``idempotency_conflict``) and the refusal is audited. A compensation is audited with the
operator who made it, and the wallet is told (a ``compensation`` notification), in the same transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payment_core import audit, notify
from payment_core.audit import AuditOutcome
from payment_core.core import Core, retry_on_conflict
from payment_core.db import insert_new
from payment_core.ledger import book_ids, post, wallet_book_name
from payment_core.models import Account, Journal, LedgerAccount, Posting
from protocol import ErrorCode, ProtocolError, format_yen, require_amount

OPERATOR_LOSS = "operator_loss"  # the book's name and kind
KIND = "compensation"  # the journals' kind, the audit's action and the notification's kind
REFUSED_CONFLICT = "refused_conflict"  # the audit's result for an id used before with other figures
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,59}")  # fits journals.reference (60)
_REASON_MAX = 200


@dataclass(frozen=True)
class Compensation:
    compensation_id: str
    account_id: int
    amount: int
    at: datetime
    replayed: bool  # True when this id had already been paid: nothing moved this time


def require_compensation_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ProtocolError(
            ErrorCode.VALIDATION_FAILED,
            "A compensation id is 1 to 60 letters, digits, '_', '.', ':' or '-', starting with a letter or digit.",
            param="compensation_id",
        )
    return value


def loss_book(session: Session) -> int:
    """The id of the operator's loss book, made (allowed below zero) if this is the first compensation."""
    insert_new(
        session, LedgerAccount, kind=OPERATOR_LOSS, name=OPERATOR_LOSS, owner_id=None, balance=0, allow_negative=1
    )
    (book,) = book_ids(session, OPERATOR_LOSS)
    return book


def _paid(session: Session, compensation_id: str) -> Compensation | None:
    """A compensation already posted under this id: to whom, how much, when."""
    row = session.execute(
        select(LedgerAccount.name, Posting.amount, Journal.created_at)
        .select_from(Journal)
        .join(Posting, Posting.journal_id == Journal.id)
        .join(LedgerAccount, LedgerAccount.id == Posting.ledger_account_id)
        .where(Journal.kind == KIND, Journal.reference == compensation_id, Posting.amount > 0)
    ).first()
    if row is None:
        return None
    account_id = int(row.name.removeprefix("wallet:"))
    return Compensation(compensation_id, account_id, int(row.amount), row.created_at, replayed=True)


def compensate(
    core: Core, account_id: int, amount: int, compensation_id: str, operator: str, reason: str = ""
) -> Compensation:
    """Pay ``amount`` yen from the operator's loss book into the account's wallet, once per id."""
    require_amount(amount)
    require_compensation_id(compensation_id)
    reason = " ".join(reason.split())[:_REASON_MAX]

    def attempt() -> Compensation | None:
        now = core.now()
        with core.transaction() as session:
            first = _paid(session, compensation_id)
            if first is not None:
                return first if (first.account_id, first.amount) == (account_id, amount) else None
            if session.get(Account, account_id) is None:
                raise ProtocolError(ErrorCode.NOT_FOUND, "No such account.", param="account_id")
            loss = loss_book(session)
            (wallet,) = book_ids(session, wallet_book_name(account_id))
            balances = post(session, KIND, compensation_id, now, [(loss, -amount), (wallet, amount)])
            audit.record(
                session,
                at=now,
                actor=operator,
                action=KIND,
                target=f"account:{account_id}",
                result=AuditOutcome.SUCCEEDED,
                compensation_id=compensation_id,
                amount=amount,
                balance_after=balances[wallet],
                reason=reason,
            )
            text = f"{format_yen(amount)} was paid back into your wallet by possim ({compensation_id})."
            notify.notify(session, account_id, KIND, text, now)
            return Compensation(compensation_id, account_id, amount, now, replayed=False)

    paid = retry_on_conflict(attempt)  # a concurrent twin's journal wins the unique key: the retry reads it
    if paid is not None:
        return paid
    with core.transaction() as session:
        audit.record(
            session,
            at=core.now(),
            actor=operator,
            action=KIND,
            target=f"account:{account_id}",
            result=REFUSED_CONFLICT,
            compensation_id=compensation_id,
            amount=amount,
        )
    raise ProtocolError(
        ErrorCode.IDEMPOTENCY_CONFLICT,
        f"Compensation {compensation_id} was already paid with another amount or to another account.",
        param="compensation_id",
    )


def compensated_by_account(
    session: Session, since: datetime | None = None, until: datetime | None = None
) -> dict[int, int]:
    """Yen paid back per account (compensation journals' wallet postings), optionally within [since, until)."""
    query = (
        select(LedgerAccount.name, func.sum(Posting.amount))
        .select_from(Journal)
        .join(Posting, Posting.journal_id == Journal.id)
        .join(LedgerAccount, LedgerAccount.id == Posting.ledger_account_id)
        .where(Journal.kind == KIND, Posting.amount > 0)
        .group_by(LedgerAccount.name)
    )
    if since is not None:
        query = query.where(Journal.created_at >= since)
    if until is not None:
        query = query.where(Journal.created_at < until)
    return {int(name.removeprefix("wallet:")): int(total) for name, total in session.execute(query)}
