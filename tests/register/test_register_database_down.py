"""The core's database goes down mid-sale: the core answers 503 ``service_unavailable``, the register says so
plainly, keeps the sale (its lines, its order written down as pending, nothing recorded as paid), and once
the database is back F5 pays the same sale, once.

The database really fails: the core runs on PostgreSQL as a login role of its own, and "down" is that role
refused (``NOLOGIN``) with its connections ended, so every request of the core fails to reach its database,
as when the server is stopped; "back" lets the role log in again. The register is the Textual app, driven by
Pilot, against the core's real uvicorn server on loopback.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import func, select

from payment_core.api_errors import DATABASE_RETRY_AFTER_SECONDS
from payment_core.config import Limits
from payment_core.models import Payment
from possim import world as worlds
from possim.demo_stage import DemoStage
from terminal.catalog import Catalog
from terminal.client import UNKNOWN
from terminal.register.screens.payment import APPROVED, UNREACHABLE_STATE
from terminal.register.texts import retry_after_seconds
from tests.conftest import POSTGRES_URL
from tests.register.conftest import FUNDS, World
from tests.register.pilot_helpers import open_payment, sign_in, text_of, type_code, wait_state
from tests.support import balance, customer

pytestmark = pytest.mark.postgres


class Database:
    """The core's own login role and schema on the test server; ``down()`` and ``up()`` switch it off and on."""

    def __init__(self) -> None:
        self.role = f"core_{secrets.token_hex(5)}"
        self.schema = f"t_{secrets.token_hex(6)}"
        self._admin = psycopg.connect(POSTGRES_URL, autocommit=True)
        role, schema = sql.Identifier(self.role), sql.Identifier(self.schema)
        self._admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
        self._admin.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(schema, role))
        self._admin.execute(sql.SQL("GRANT CREATE ON DATABASE test TO {}").format(role))

    @property
    def url(self) -> str:
        return POSTGRES_URL.replace("postgresql://", f"postgresql://{self.role}@", 1)

    def down(self) -> None:
        self._admin.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(self.role)))
        self._admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (self.role,))

    def up(self) -> None:
        self._admin.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(self.role)))

    def drop(self) -> None:
        role, schema = sql.Identifier(self.role), sql.Identifier(self.schema)
        self.up()
        self._admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (self.role,))
        self._admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
        self._admin.execute(sql.SQL("REVOKE CREATE ON DATABASE test FROM {}").format(role))
        self._admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
        self._admin.close()


@pytest.fixture
def database() -> Iterator[Database]:
    made = Database()
    try:
        yield made
    finally:
        made.drop()


@pytest.fixture
def world(database: Database, tmp_path: Path) -> Iterator[World]:
    """The register's world (tests/register/conftest.py) with its core on that PostgreSQL role."""
    core = worlds.new_core(database.url, db_schema=database.schema, limits=Limits(new_device_hours=0))
    try:
        terminal = worlds.add_terminal(core, "possim 渋谷一丁目店", actor="test")
        with worlds.serve(core) as server:
            enrolled = worlds.enroll_customer(core, server.url, customer("yui@example.jp"), device_name="yui's phone")
            minter = enrolled.minter()
            with terminal.client(server.url) as register:
                worlds.fund(register, minter, FUNDS, per_topup=core.config.limits.topup_max_yen)
            catalog = Catalog.default()
            stage = DemoStage(minter, "Yui's wallet", [product.jan for product in catalog][:5])
            built = World(core, server, terminal.id, terminal.secret, enrolled.wallet, minter, stage, catalog, tmp_path)
            yield built
            for client in built.clients:
                client.close()
            if built.store is not None:
                built.store.close()
    finally:
        core.close()


def payments_for(world: World, order_id: str) -> int:
    with world.core.read() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Payment)
                .where(Payment.terminal_id == world.terminal_id, Payment.order_id == order_id)
            )
            or 0
        )


async def test_database_down_keeps_the_sale_and_pays_it_once_when_back(world: World, database: Database) -> None:
    product = next(p for p in world.catalog if 200 <= p.price <= 800 and not p.age_restricted)
    app = world.app()
    assert world.store is not None
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        await type_code(pilot, product.jan)
        screen = await open_payment(pilot)
        order_id = screen.attempt.order_id
        database.down()
        await type_code(pilot, worlds.next_code(world.minter).numeric)
        await wait_state(pilot, screen, UNREACHABLE_STATE)

        outcome = screen.outcome
        assert outcome is not None
        assert (outcome.status, outcome.http_status, outcome.error_code) == (UNKNOWN, 503, "service_unavailable")
        panel = text_of(app, "#pay-state")
        assert "SERVICE UNAVAILABLE" in panel and "its database is down" in panel
        assert retry_after_seconds(outcome) == DATABASE_RETRY_AFTER_SECONDS  # the core's Retry-After
        assert f"Try again in {DATABASE_RETRY_AFTER_SECONDS} s" in panel
        assert "F5" in panel
        # The sale is kept as it was, nothing is recorded as paid, and the order waits as pending.
        assert [line.product.jan for line in app.till.sale.active_lines] == [product.jan]
        assert app.till.sale.total == product.price
        assert world.store.journal.recent_sales() == []
        pending = world.store.wallet_orders.get(order_id)
        assert pending is not None and pending.state == "pending"
        await pilot.press("ctrl+q")  # refused: the payment is open
        await pilot.pause()
        assert app.is_running and app.screen is screen

        database.up()
        await pilot.press("f5")  # the same order id, the same code
        await wait_state(pilot, screen, APPROVED)

    assert payments_for(world, order_id) == 1
    assert balance(world.core, world.wallet) == FUNDS - product.price
    sale = world.store.journal.get_sale(screen.attempt.receipt_no)
    assert sale is not None and (sale.order_id, sale.total) == (order_id, product.price)
    settled = world.store.wallet_orders.get(order_id)
    assert settled is not None and (settled.state, settled.payment_id) == ("paid", sale.payment_id)
