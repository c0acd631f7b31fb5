"""The double-entry ledger.

Every movement is a journal of postings that sum to zero. A book's balance changes only through
``post``, which moves each balance with a conditional ``UPDATE`` (``... WHERE balance + delta >= 0``),
so two concurrent payments can never take a wallet below zero on SQLite or PostgreSQL. External
clearing books (cash taken at registers, card networks) are the only books allowed below zero: they
stand for money that came from outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from payment_core.models import Journal, LedgerAccount, Posting
from payment_core.prepared import Prepared

CASH_CLEARING = "cash_clearing"
CARD_CLEARING = "card_clearing"
BANK_CLEARING = "bank_clearing"  # from the second migration


# The statements of every payment, built once and sent to the driver directly (payment_core.prepared):
# building a statement and its cache key each time, then SQLAlchemy's execution, cost more than running it
# (profiled under the core bench's load).
_BOOK_IDS = select(LedgerAccount.name, LedgerAccount.id).where(
    LedgerAccount.name.in_(bindparam("names", expanding=True))
)
_BOOK_IDS_BY_COUNT = {  # a payment's one or two books, without an expanding parameter
    count: Prepared(
        select(LedgerAccount.name, LedgerAccount.id).where(
            LedgerAccount.name.in_([bindparam(f"name{index}") for index in range(count)])
        )
    )
    for count in (1, 2)
}
_NEW_JOURNAL = Prepared(
    insert(Journal)
    .values(kind=bindparam("kind"), reference=bindparam("reference"), created_at=bindparam("created_at"))
    .returning(Journal.id)
)
_NEW_POSTINGS = Prepared(
    insert(Posting).values(
        journal_id=bindparam("journal_id"), ledger_account_id=bindparam("ledger_account_id"), amount=bindparam("amount")
    )
)
_MOVE_STATEMENT = (
    update(LedgerAccount)
    .where(LedgerAccount.id == bindparam("book"))
    .values(balance=LedgerAccount.balance + bindparam("delta"))
    .returning(LedgerAccount.balance)
)
_MOVE = Prepared(_MOVE_STATEMENT)
_MOVE_ABOVE_FLOOR = Prepared(
    _MOVE_STATEMENT.where((LedgerAccount.balance + bindparam("delta") >= 0) | (LedgerAccount.allow_negative == 1))
)


class InsufficientBalance(Exception):
    """A posting would take a book below zero; nothing was moved."""


def wallet_book_name(account_id: int) -> str:
    return f"wallet:{account_id}"


def merchant_book_name(merchant_id: int) -> str:
    """A store's own book: what it held before each register had a book of its own (kept, never posted to now)."""
    return f"merchant:{merchant_id}"


def till_book_name(terminal_id: str) -> str:
    """A register's book (kind ``merchant``, owned by its store): payments at that register are credited
    here, so no row is locked by every payment of a store; the store's takings are the sum of its books
    (:func:`store_balance`)."""
    return f"till:{terminal_id}"


def store_balance(session: Session, merchant_id: int) -> int:
    """Everything a store holds: the balances of all its books (its own and each register's)."""
    total = session.scalar(
        select(func.sum(LedgerAccount.balance)).where(
            LedgerAccount.kind == "merchant", LedgerAccount.owner_id == merchant_id
        )
    )
    return int(total or 0)


def credited_book(session: Session, kind: str, reference: str) -> int:
    """The book a journal credited (its posting with a positive amount): a refund takes money back from
    the very book the payment paid into, the store's own for payments made before registers had books."""
    book_id = session.scalar(
        select(Posting.ledger_account_id)
        .join(Journal, Journal.id == Posting.journal_id)
        .where(Journal.kind == kind, Journal.reference == reference, Posting.amount > 0)
    )
    if book_id is None:
        raise LookupError(f"no {kind} journal {reference!r}")
    return int(book_id)


def open_book(session: Session, kind: str, name: str, owner_id: int | None = None) -> LedgerAccount:
    """A wallet or merchant book, never below zero (the clearing books come from the first migration)."""
    book = LedgerAccount(kind=kind, name=name, owner_id=owner_id, balance=0, allow_negative=0)
    session.add(book)
    session.flush()
    return book


def book_by_name(session: Session, name: str) -> LedgerAccount:
    book = session.scalars(select(LedgerAccount).where(LedgerAccount.name == name)).one_or_none()
    if book is None:
        raise LookupError(f"no ledger book {name!r}")
    return book


def book_ids(session: Session, *names: str) -> tuple[int, ...]:
    """The ids of the books ``names``, in that order, read in one statement (``LookupError`` if one is missing)."""
    prepared = _BOOK_IDS_BY_COUNT.get(len(names))
    if prepared is not None:
        rows = prepared.rows(session, {f"name{index}": name for index, name in enumerate(names)})
    else:
        rows = [tuple(row) for row in session.connection().execute(_BOOK_IDS, {"names": names})]
    found = {name: book_id for name, book_id in rows}
    missing = [name for name in names if name not in found]
    if missing:
        raise LookupError(f"no ledger book {missing[0]!r}")
    return tuple(found[name] for name in names)


def balance_of(session: Session, book_id: int) -> int:
    value = session.scalar(select(LedgerAccount.balance).where(LedgerAccount.id == book_id))
    if value is None:
        raise LookupError(f"no ledger book {book_id}")
    return int(value)


def post(session: Session, kind: str, reference: str, at: datetime, entries: list[tuple[int, int]]) -> dict[int, int]:
    """Post a balanced journal: ``entries`` are ``(book id, amount)``; returns each book's balance after it.

    The journal row goes first, so a second journal for the same act fails before anything moved. Books
    are then updated in the order of their ids, so a payment and a refund between the same two books
    never lock them in opposite orders. When a debit would cross a book's floor, the books already moved
    are moved back and the journal deleted (all rows this transaction holds until it ends), and
    :class:`InsufficientBalance` is raised: the caller's transaction keeps nothing of it. Plain
    statements, no ORM objects and no savepoint: this is every payment's path.
    """
    if sum(amount for _, amount in entries) != 0 or not entries:
        raise ValueError("a journal must balance")
    if any(amount == 0 for _, amount in entries):
        raise ValueError("a posting moves a non-zero amount")
    journal_id = _NEW_JOURNAL.scalar(session, {"kind": kind, "reference": reference, "created_at": at})
    balances: dict[int, int] = {}
    for book_id, amount in sorted(entries):  # one global lock order (book id): no deadlocks on PostgreSQL
        after = _move(session, book_id, amount, floor=True)
        if after is None:
            for moved_id, moved_amount in sorted(entries):
                if moved_id in balances:
                    _move(session, moved_id, -moved_amount, floor=False)
            session.connection().execute(delete(Journal).where(Journal.id == journal_id))  # rare: not prebuilt
            raise InsufficientBalance(book_id)
        balances[book_id] = after
    _NEW_POSTINGS.run_many(
        session, [{"journal_id": journal_id, "ledger_account_id": book, "amount": amount} for book, amount in entries]
    )
    return balances


def _move(session: Session, book_id: int, amount: int, *, floor: bool) -> int | None:
    """Add ``amount`` to a book's balance: its new balance, or None when ``floor`` and the book would go below
    zero (a book allowed below zero has no floor)."""
    statement = _MOVE_ABOVE_FLOOR if floor else _MOVE
    after = statement.scalar(session, {"book": book_id, "delta": amount})
    return None if after is None else int(after)


@dataclass
class BooksReport:
    journals: int = 0
    books: int = 0
    total_balance: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not self.problems


def audit_books(session: Session) -> BooksReport:
    """Prove the books: every journal sums to zero, every balance equals its postings, no book below
    its floor, and all balances together sum to zero."""
    report = BooksReport()
    report.journals = int(session.scalar(select(func.count(Journal.id))) or 0)
    unbalanced = session.execute(
        select(Posting.journal_id, func.sum(Posting.amount))
        .group_by(Posting.journal_id)
        .having(func.sum(Posting.amount) != 0)
    ).all()
    report.problems.extend(f"journal {jid} sums to {total}" for jid, total in unbalanced)
    empty = session.scalar(
        select(func.count(Journal.id)).where(~select(Posting.id).where(Posting.journal_id == Journal.id).exists())
    )
    if empty:
        report.problems.append(f"{empty} journals have no postings")
    totals = session.execute(
        select(Posting.ledger_account_id, func.sum(Posting.amount)).group_by(Posting.ledger_account_id)
    ).all()
    sums = {book_id: total for book_id, total in totals}
    for book in session.scalars(select(LedgerAccount)):
        report.books += 1
        report.total_balance += book.balance
        posted = int(sums.get(book.id, 0) or 0)
        if posted != book.balance:
            report.problems.append(f"book {book.name} holds {book.balance} but its postings sum to {posted}")
        if book.balance < 0 and not book.allow_negative:
            report.problems.append(f"book {book.name} is below zero: {book.balance}")
    if report.total_balance != 0:
        report.problems.append(f"all books sum to {report.total_balance}, not 0")
    return report
