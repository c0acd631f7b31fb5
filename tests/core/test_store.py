"""The store and ledger themselves, on SQLite and PostgreSQL: balanced journals, floors, audit, secrets."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from payment_core import terminals
from payment_core.accounts import create_account
from payment_core.api import create_app
from payment_core.config import CoreConfig
from payment_core.core import Core
from payment_core.ledger import (
    CASH_CLEARING,
    InsufficientBalance,
    audit_books,
    balance_of,
    book_by_name,
    post,
    wallet_book_name,
)
from payment_core.models import Base, LedgerAccount
from payment_core.server import ServerThread
from protocol import sign_request
from wallet_app.state import WalletState

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_migrations_build_every_table(core: Core) -> None:
    tables = set(inspect(core.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    core.migrate()  # running again is a no-op


def test_a_journal_must_balance(core: Core) -> None:
    account = create_account(core, "taro@example.jp", "a long enough password")
    with core.transaction() as session:
        wallet = book_by_name(session, wallet_book_name(account.id))
        with pytest.raises(ValueError, match="balance"):
            post(session, "topup", "t", NOW, [(wallet.id, 100)])


def wallet_with_500_yen(core: Core) -> tuple[LedgerAccount, LedgerAccount]:
    """A new account's wallet book topped up with 500 yen of cash, and the cash clearing book."""
    account = create_account(core, "taro@example.jp", "a long enough password")
    with core.transaction() as session:
        wallet = book_by_name(session, wallet_book_name(account.id))
        cash = book_by_name(session, CASH_CLEARING)
        post(session, "topup", "t1", NOW, [(cash.id, -500), (wallet.id, 500)])
    return wallet, cash


def test_a_debit_below_zero_moves_nothing(core: Core) -> None:
    wallet, cash = wallet_with_500_yen(core)
    with core.transaction() as session:
        with pytest.raises(InsufficientBalance):
            post(session, "payment", "p1", NOW, [(wallet.id, -501), (cash.id, 501)])
        assert balance_of(session, wallet.id) == 500
        assert balance_of(session, cash.id) == -500
    with core.transaction() as session:
        report = audit_books(session)
    assert report.balanced and report.journals == 1


def test_the_ledger_itself_refuses_a_second_journal_for_the_same_act(core: Core) -> None:
    """A payment, refund or top-up is posted once: the database refuses a second journal with the same kind
    and reference, whatever the code above it does, and nothing of the second posting stays."""
    wallet, cash = wallet_with_500_yen(core)
    with (
        pytest.raises(IntegrityError, match=r"uq_journals_kind_reference|UNIQUE"),
        core.transaction() as session,
    ):
        post(session, "topup", "t1", NOW, [(cash.id, -500), (wallet.id, 500)])
        pytest.fail("the second journal went in")
    with core.transaction() as session:
        assert balance_of(session, wallet.id) == 500  # the failed transaction took nothing with it
        post(session, "payment", "t1", NOW, [(wallet.id, -100), (cash.id, 100)])  # another kind may share it
    with core.transaction() as session:
        report = audit_books(session)
        assert balance_of(session, wallet.id) == 400
    assert report.balanced and report.journals == 2


def test_the_database_itself_refuses_a_negative_wallet(core: Core) -> None:
    account = create_account(core, "taro@example.jp", "a long enough password")
    with pytest.raises(IntegrityError, match=r"ck_ledger_balance_floor|CHECK"), core.transaction() as session:
        session.execute(
            update(LedgerAccount).where(LedgerAccount.name == wallet_book_name(account.id)).values(balance=-1)
        )


def test_audit_finds_a_tampered_balance(core: Core) -> None:
    wallet, _cash = wallet_with_500_yen(core)
    with core.transaction() as session:
        session.execute(update(LedgerAccount).where(LedgerAccount.id == wallet.id).values(balance=50_000))
    with core.transaction() as session:
        report = audit_books(session)
    assert not report.balanced
    assert any("postings sum to 500" in problem for problem in report.problems)
    assert any("sum to 49500" in problem for problem in report.problems)


def test_no_secret_is_stored_in_plain_text(core: Core, wallet: WalletState) -> None:
    """Device and terminal secrets are derived from the server key; the database holds only salts."""
    made = terminals.provision_terminal(core, "Store", "reg", "test")
    forms = []
    for secret in (wallet.secret, made.secret):
        forms += [secret, secret.hex().encode(), base64.urlsafe_b64encode(secret).rstrip(b"=")]
    with core.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    assert not any(form in raw for form in forms), f"a secret is stored in {table.name}"
    with core.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM accounts")).scalar_one()
    assert str(stored).startswith("$argon2id$")


def test_a_database_that_is_down_gives_503_and_no_traceback(tmp_path: object) -> None:
    """A core whose PostgreSQL is unreachable answers with a clean service_unavailable and when to try again."""
    config = CoreConfig(db_url="postgresql://127.0.0.1:9/none", server_key=secrets.token_bytes(32))
    core = Core(config)
    with ServerThread(create_app(core)) as server:
        body = b'{"order_id":"o","amount":1,"code":"1"}'
        headers = sign_request(b"k" * 32, "term_x", "POST", "/v1/payments", body, datetime.now(UTC)).as_dict()
        response = httpx.post(f"{server.url}/v1/payments", content=body, headers=headers, timeout=30)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {
        "error": {
            "type": "api_error",
            "code": "service_unavailable",
            "message": "The payment service cannot reach its database, so nothing was done; try again in a few "
            "seconds (a payment with the same order id).",
            "retry_after": 5,
        }
    }
    core.close()


def test_migrations_match_the_models(core: Core) -> None:
    """Alembic sees no difference between the migrated schema and the models: no forgotten migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with core.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
