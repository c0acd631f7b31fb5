"""After a run: the core's database, read directly, against what every register recorded.

Each figure counts a way money could go wrong; every one must be 0 (``audit_ok`` True):

- ``lost``: a sale the register closed as approved that the core does not hold as one succeeded payment of
  that amount with that wallet charged once (the goods left; the money did not come).
- ``doubled``: an order whose wallet was charged more than once, or more than its amount, or two payment
  rows for one order.
- ``unknown_to_register``: money the core kept that no register knows it took: a payment the register
  closed as declined, reversed, refused or unknown (or never sold) whose wallet stays charged, or any
  journal that takes from a run's wallet and is not a payment's.
- ``not_final``: a payment the core holds in a state that is not final, or a sale the register could not
  close (its outcome still unknown when the run's bound passed).
- ``wallets_off``: a wallet whose balance is not what was put in less what the registers were told was paid.
- ``half_written``: a journal with fewer than two postings or whose postings do not sum to zero, or a
  succeeded payment without its journal.
- ``audit_ok``: ``payment_core.ledger.audit_books`` (what ``possim admin audit`` proves).

A line per problem (the first ``MAX_PROBLEMS``) says which order, payment or journal, so a failure can be
read before it is replayed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_core.db import make_engine
from payment_core.ledger import audit_books, wallet_book_name
from payment_core.models import Journal, LedgerAccount, Payment, Posting, Refund
from possim.chaos.registers import FINAL, Sale
from possim.chaos.shop import Phone, Store
from protocol import PaymentStatus

MAX_PROBLEMS = 20
FIGURES = ("lost", "doubled", "unknown_to_register", "not_final", "wallets_off", "half_written")


@dataclass
class CheckReport:
    lost: int = 0
    doubled: int = 0
    unknown_to_register: int = 0
    not_final: int = 0
    wallets_off: int = 0
    half_written: int = 0
    audit_ok: bool = True
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.audit_ok and all(getattr(self, name) == 0 for name in FIGURES)

    def figures(self) -> dict[str, int | bool]:
        return {name: getattr(self, name) for name in FIGURES} | {"audit_ok": self.audit_ok}

    def add(self, figure: str, problem: str) -> None:
        setattr(self, figure, getattr(self, figure) + 1)
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{figure}: {problem}")


@dataclass
class _Journal:
    id: int
    kind: str
    reference: str
    postings: list[tuple[int, int]] = field(default_factory=list)  # (book id, amount)


@dataclass(frozen=True)
class _Books:
    """What the ledger says, read once: journals with their postings, the run's wallets, refunds' payments."""

    journals: dict[int, _Journal]
    wallet_of_book: dict[int, int]  # book id -> account id, for the run's wallets
    balance_of_account: dict[int, int]
    payment_of_refund: dict[str, str]


def check(store: Store, sales: list[Sale], phones: list[Phone]) -> CheckReport:
    """Read ``store`` and compare it with ``sales`` (as the registers recorded them) and ``phones`` (their funds)."""
    engine = make_engine(store.url, store.schema, create_schema=False)
    try:
        with Session(engine) as session:
            return _check(session, sales, phones)
    finally:
        engine.dispose()


def _check(session: Session, sales: list[Sale], phones: list[Phone]) -> CheckReport:
    report = CheckReport()
    audit = audit_books(session)
    report.audit_ok = audit.balanced
    for problem in audit.problems[:MAX_PROBLEMS]:
        report.problems.append(f"audit: {problem}")
    books = _read_books(session, phones)
    terminals = sorted({sale.terminal_id for sale in sales})
    rows = session.scalars(select(Payment).where(Payment.terminal_id.in_(terminals))).all()
    by_order: dict[tuple[str, str], list[Payment]] = defaultdict(list)
    for row in rows:
        by_order[(row.terminal_id, row.order_id)].append(row)
    charges = _charges_by_payment(books, report)
    given = _given_back(books)
    taken = {row.id: _net_taken(charges.get(row.id, []), given.get(row.id, 0), books) for row in rows}
    for row in rows:
        _check_payment(row, charges.get(row.id, []), taken[row.id], report)
    sold = {(sale.terminal_id, sale.planned.order_id): sale for sale in sales}
    for key, same_order in by_order.items():
        for extra in same_order[1:]:
            report.add("doubled", f"order {key[1]} has a second payment row {extra.id}")
        if key not in sold and any(taken[row.id] > 0 for row in same_order):
            report.add("unknown_to_register", f"order {key[1]} at {key[0]} was never sold but its wallet is charged")
    for key, sale in sold.items():
        _check_sale(sale, by_order.get(key, []), taken, report)
    _check_wallets(sales, phones, books, report)
    return report


def _read_books(session: Session, phones: list[Phone]) -> _Books:
    names = {wallet_book_name(phone.account_id): phone.account_id for phone in phones}
    wallet_of_book: dict[int, int] = {}
    balance_of_account: dict[int, int] = {}
    for book in session.scalars(select(LedgerAccount).where(LedgerAccount.name.in_(list(names)))):
        wallet_of_book[book.id] = names[book.name]
        balance_of_account[names[book.name]] = int(book.balance)
    journals = {
        id_: _Journal(id_, kind, reference)
        for id_, kind, reference in session.execute(select(Journal.id, Journal.kind, Journal.reference))
    }
    for journal_id, book_id, amount in session.execute(
        select(Posting.journal_id, Posting.ledger_account_id, Posting.amount)
    ):
        journals[journal_id].postings.append((book_id, int(amount)))
    refunds = {refund_id: payment_id for refund_id, payment_id in session.execute(select(Refund.id, Refund.payment_id))}
    return _Books(journals, wallet_of_book, balance_of_account, refunds)


def _charges_by_payment(books: _Books, report: CheckReport) -> dict[str, list[_Journal]]:
    """The journals that take from a run's wallet, by the payment they name; half-written journals and
    takings that name no payment are reported on the way."""
    charges: dict[str, list[_Journal]] = defaultdict(list)
    for journal in books.journals.values():
        if len(journal.postings) < 2 or sum(amount for _, amount in journal.postings) != 0:
            report.add("half_written", f"journal {journal.id} ({journal.kind} {journal.reference}) has postings "
                       f"{journal.postings}")  # fmt: skip
        debits = [amount for book, amount in journal.postings if book in books.wallet_of_book and amount < 0]
        if not debits:
            continue
        if journal.reference.startswith("pay_"):
            charges[journal.reference].append(journal)
        else:
            report.add(
                "unknown_to_register",
                f"journal {journal.id} ({journal.kind} {journal.reference}) takes {-sum(debits)} yen from a wallet "
                "and is no payment's",
            )
    return charges


def _given_back(books: _Books) -> dict[str, int]:
    """Yen the refund journals gave back to the run's wallets, by the payment refunded."""
    given: dict[str, int] = defaultdict(int)
    for journal in books.journals.values():
        payment_id = books.payment_of_refund.get(journal.reference) if journal.kind == "refund" else None
        if payment_id is not None:
            given[payment_id] += sum(amount for book, amount in journal.postings if book in books.wallet_of_book)
    return given


def _net_taken(charges: list[_Journal], given_back: int, books: _Books) -> int:
    """Yen taken from wallets by a payment's charging journals, less what its refunds gave back."""
    taken = -sum(amount for journal in charges for book, amount in journal.postings if book in books.wallet_of_book)
    return taken - given_back


def _check_payment(row: Payment, charges: list[_Journal], taken: int, report: CheckReport) -> None:
    if row.status not in FINAL:
        report.add("not_final", f"payment {row.id} (order {row.order_id}) is {row.status}")
    if len(charges) > 1:
        report.add("doubled", f"payment {row.id} (order {row.order_id}) is charged by {len(charges)} journals")
    elif taken > row.amount:
        report.add("doubled", f"payment {row.id} (order {row.order_id}) of {row.amount} yen took {taken} yen")
    if row.status == PaymentStatus.SUCCEEDED and not charges:
        report.add("half_written", f"payment {row.id} (order {row.order_id}) succeeded without a journal")


def _check_sale(sale: Sale, rows: list[Payment], taken: dict[str, int], report: CheckReport) -> None:
    order = sale.planned.order_id
    kept = sum(taken[row.id] for row in rows)
    if sale.status == PaymentStatus.SUCCEEDED:
        row = rows[0] if rows else None
        if row is None:
            report.add("lost", f"order {order}: approved at the register, no payment in the core")
        elif row.status != PaymentStatus.SUCCEEDED or row.amount != sale.planned.amount:
            report.add("lost", f"order {order}: approved at the register, {row.status} ({row.amount} yen) in the core")
        elif kept < sale.planned.amount:  # more than the amount is a double charge (counted above)
            report.add("lost", f"order {order}: approved for {sale.planned.amount} yen, the wallet gave {kept}")
        elif row.account_id != sale.account_id:
            report.add("lost", f"order {order}: approved for account {sale.account_id}, charged to {row.account_id}")
        return
    if sale.attempted and not sale.ended:
        report.add("not_final", f"order {order}: the register could not close it ({sale.status})")
    if kept > 0:
        told = sale.status + (f" ({sale.error_code})" if sale.error_code else "")
        report.add("unknown_to_register", f"order {order}: {told} at the register, {kept} yen kept by the core")


def _check_wallets(sales: list[Sale], phones: list[Phone], books: _Books, report: CheckReport) -> None:
    paid: dict[int, int] = defaultdict(int)
    for sale in sales:
        if sale.status == PaymentStatus.SUCCEEDED:
            paid[sale.account_id] += sale.planned.amount
    for phone in phones:
        expected = phone.funded - paid[phone.account_id]
        held = books.balance_of_account.get(phone.account_id)
        if held != expected:
            report.add(
                "wallets_off", f"wallet of account {phone.account_id} holds {held} yen, the registers say {expected}"
            )
