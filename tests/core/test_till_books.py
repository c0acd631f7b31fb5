"""Each register has its own book: payments credit it (no ledger row is locked by every payment of a store),
refunds take from the book the payment paid into, the store's takings are the sum of its books, and a
database made before registers had books gets them from the migration without losing a yen."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import select, text

from payment_core.config import CoreConfig
from payment_core.core import Core
from payment_core.db import make_engine, migrate
from payment_core.ledger import (
    balance_of,
    book_by_name,
    merchant_book_name,
    open_book,
    post,
    store_balance,
    till_book_name,
)
from payment_core.models import Terminal
from payment_core.server import ServerThread
from possim.world import add_terminal
from protocol import ManualClock
from tests.conftest import Database
from tests.support import SignedCaller, assert_books_balance, balance
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState


def _till(core: Core, terminal: SignedCaller) -> int:
    with core.transaction() as session:
        return balance_of(session, book_by_name(session, till_book_name(terminal.key_id)).id)


def _merchant_of(core: Core, terminal: SignedCaller) -> int:
    with core.transaction() as session:
        found = session.get(Terminal, terminal.key_id)
        assert found is not None
        return found.merchant_id


def test_payments_credit_their_register_and_the_store_sums_its_registers(
    core: Core,
    server: ServerThread,
    clock: ManualClock,
    terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    funded: int,
) -> None:
    merchant = _merchant_of(core, terminal)
    with core.transaction() as session:
        store_before = store_balance(session, merchant)
    made = add_terminal(core, "Shibuya 1-chome", "register-2", "test")  # the same store's second register
    with SignedCaller(server.url, made.id, made.secret, clock) as neighbour:
        assert _merchant_of(core, neighbour) == merchant and _till(core, neighbour) == 0
        before = _till(core, terminal)
        assert terminal.pay("till-1", 700, minter.mint().qr).status_code == 200
        assert neighbour.pay("till-2", 300, minter.mint().qr).status_code == 200
        assert (_till(core, terminal), _till(core, neighbour)) == (before + 700, 300)
    with core.transaction() as session:
        assert store_balance(session, merchant) == store_before + 1_000
    assert balance(core, wallet) == funded - 1_000
    assert_books_balance(core)


def test_a_refund_takes_from_the_register_that_was_paid_even_when_another_refunds_it(
    core: Core,
    terminal: SignedCaller,
    second_terminal: SignedCaller,
    minter: CodeMinter,
    wallet: WalletState,
    funded: int,
) -> None:
    paid = terminal.pay("till-3", 900, minter.mint().qr).json()["id"]
    before = (_till(core, terminal), _till(core, second_terminal))
    refunded = terminal.call("POST", f"/v1/payments/{paid}/refunds", {"refund_id": "r-1", "amount": 400})
    assert refunded.status_code == 200
    assert (_till(core, terminal), _till(core, second_terminal)) == (before[0] - 400, before[1])
    assert balance(core, wallet) == funded - 500
    assert_books_balance(core)


def test_an_older_database_gets_a_book_per_register_and_old_payments_refund_from_the_store_book(
    database: Database,
) -> None:
    engine = make_engine(database.url, database.schema)
    migrate(engine, "0005")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:  # a store, its register and its book, as version 0005 made them
        conn.execute(text("INSERT INTO merchants (id, name, created_at) VALUES (1, 'old store', :at)"), {"at": now})
        conn.execute(
            text(
                "INSERT INTO terminals (id, merchant_id, name, secret_salt, status, created_at) "
                "VALUES ('term_old', 1, 'R1', :salt, 'active', :at)"
            ),
            {"salt": secrets.token_bytes(32), "at": now},
        )
    core = Core(CoreConfig(db_url=database.url, db_schema=database.schema, server_key=secrets.token_bytes(32)), engine)
    try:
        with core.transaction() as session:
            store = open_book(session, "merchant", merchant_book_name(1), owner_id=1)
            wallet = open_book(session, "wallet", "wallet:99")
            cash = session.execute(text("SELECT id FROM ledger_accounts WHERE name = 'cash_clearing'")).scalar_one()
            post(session, "topup", "old-topup", now, [(cash, -5_000), (wallet.id, 5_000)])
            post(session, "payment", "pay_old", now, [(wallet.id, -1_200), (store.id, 1_200)])
        migrate(engine)
        with core.transaction() as session:
            till = book_by_name(session, till_book_name("term_old"))
            assert (till.kind, till.owner_id, till.balance) == ("merchant", 1, 0)
            assert store_balance(session, 1) == 1_200  # nothing moved by the migration
            names = session.scalars(select(text("name")).select_from(text("ledger_accounts"))).all()
            assert names.count(till_book_name("term_old")) == 1
        migrate(engine)  # again: a no-op, no second book
        assert_books_balance(core)
    finally:
        core.close()
