"""Shared fixtures: a core on SQLite and on PostgreSQL, a real uvicorn server, a terminal and a wallet."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from payment_core.core import Core
from payment_core.db import drop_schema, make_engine
from payment_core.risk import BURST_FILE, load_settings
from payment_core.server import ServerThread
from possim.world import add_terminal, new_core, serve
from protocol import ManualClock, system_clock
from tests.signins import CHEAP_HASHING
from tests.support import SignedCaller, enroll_wallet, fund_wallet
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

POSTGRES_URL = os.environ.get("POSSIM_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass
class Database:
    url: str
    schema: str | None


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh database per test: a SQLite file, or a new schema on the PostgreSQL server.

    PostgreSQL being unreachable is a failure, not a skip: the suite promises both backends.
    """
    if request.param == "sqlite":
        yield Database(str(tmp_path / "core.db"), None)
        return
    schema = f"t_{secrets.token_hex(6)}"
    make_engine(POSTGRES_URL, schema=schema).dispose()  # makes the schema
    try:
        yield Database(POSTGRES_URL, schema)
    finally:
        drop_schema(POSTGRES_URL, schema)


@pytest.fixture(autouse=True)
def patient_wallet_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite checks what the core answers, not how fast: on a loaded 2-core machine an answer can take
    longer than a phone's 5 s patience, so the tests' phones wait up to 30 s (tests of the offline path
    pass their own timeout or transport)."""
    monkeypatch.setattr(WalletClient, "DEFAULT_TIMEOUT_SECONDS", 30.0)


@pytest.fixture
def clock() -> ManualClock:
    """The core's clock, the terminal's and the wallet's: tests move it instead of sleeping."""
    return ManualClock(system_clock().replace(microsecond=0))


@pytest.fixture
def core(database: Database, clock: ManualClock, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Core]:
    """A core on the test's database; a test marked ``load_risk`` gets the burst profile (velocity limits out
    of reach: payment_core/risk/burst.toml), one marked ``cheap_hashing`` argon2id at its cheapest."""
    risk = load_settings(BURST_FILE) if request.node.get_closest_marker("load_risk") else None
    passwords = CHEAP_HASHING if request.node.get_closest_marker("cheap_hashing") else None
    instance = new_core(database.url, db_schema=database.schema, clock=clock, risk=risk, passwords=passwords)
    yield instance
    instance.close()


@pytest.fixture
def server(core: Core) -> Iterator[ServerThread]:
    with serve(core) as running:
        yield running


@pytest.fixture
def terminal(core: Core, server: ServerThread, clock: ManualClock) -> Iterator[SignedCaller]:
    made = add_terminal(core, "Shibuya 1-chome", "register-1", "test")
    with SignedCaller(server.url, made.id, made.secret, clock) as caller:
        yield caller


@pytest.fixture
def second_terminal(core: Core, server: ServerThread, clock: ManualClock) -> Iterator[SignedCaller]:
    made = add_terminal(core, "Shinjuku 3-chome", "register-2", "test")
    with SignedCaller(server.url, made.id, made.secret, clock) as caller:
        yield caller


@pytest.fixture
def wallet(core: Core, server: ServerThread, clock: ManualClock) -> WalletState:
    """Hanako's phone, enrolled three days ago: past the lower top-up limits of a new device."""
    state = enroll_wallet(server.url, clock, "hanako@example.jp", core)
    clock.advance(core.config.limits.new_device_hours * 3600 + 60)
    return state


@pytest.fixture
def minter(wallet: WalletState, clock: ManualClock) -> CodeMinter:
    return CodeMinter(wallet.device_id, wallet.secret, clock)


@pytest.fixture
def funded(terminal: SignedCaller, minter: CodeMinter, clock: ManualClock) -> int:
    """Put 10,000 yen into the wallet with cash at the register; returns the balance."""
    fund_wallet(terminal, minter, 10_000)
    clock.advance(1)
    return 10_000
