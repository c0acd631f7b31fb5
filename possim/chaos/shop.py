"""What a chaos run starts from: a new database (a SQLite file, or a new schema on PostgreSQL), the server key
in a file, one register per store, and phones enrolled and funded through the core's own API.

The setup core runs in this process on a :class:`protocol.ManualClock` set ``SETUP_DAYS_AGO`` days back: the
customers signed up, enrolled their phones and topped up long ago, so that during the run (on the real
clock) no rule about new phones or fresh top-ups (``topup_then_spend``, ``store_cluster``) steps in, and
the only reasons a sale does not succeed are the faults. Its limits let each phone take as many cash
top-ups as its sales need; its passwords are hashed cheaply (nobody signs in during a run). The served core
(``possim.chaos.served``) then runs with the shipped limits and the burst risk profile.
"""

from __future__ import annotations

import math
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from payment_core.config import Limits, PasswordPolicy, Throttling
from payment_core.core import Core
from payment_core.db import drop_schema
from payment_core.risk import BURST_FILE, load_settings
from possim.bench.core_load import write_key
from possim.world import Customer, RegisteredTerminal, add_terminal, enroll_customer, new_core, serve
from protocol import ManualClock, TopupStatus, system_clock
from terminal.client import PaymentClient
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

POSTGRES_URL = os.environ.get("POSSIM_CHAOS_POSTGRES", "postgresql://127.0.0.1:5432/test")
STORES = ("sqlite", "postgresql")
SETUP_DAYS_AGO = 100
TOPUP_YEN = 100_000  # the shipped limit on one top-up
SETUP_LIMITS = Limits(new_device_hours=0, topup_daily_count=1_000_000, topup_daily_sum_yen=10**12)
SETUP_THROTTLING = Throttling(reset_requests_per_window=1_000_000)  # every sign-up comes from 127.0.0.1
SETUP_HASHING = PasswordPolicy(time_cost=1, memory_cost=8192, parallelism=1)
_ENROLL_WORKERS = 2  # sign-ups at once (the wallet API served in this process)


@dataclass(frozen=True)
class Store:
    """Where the core keeps its books: ``kind`` is ``sqlite`` or ``postgresql``."""

    kind: str
    url: str
    schema: str | None = None


@dataclass(frozen=True)
class Phone:
    """An enrolled phone: its account (whose wallet pays), its device number and secret, the yen put in."""

    account_id: int
    device_id: int
    secret: bytes = field(repr=False)
    funded: int

    def minter(self) -> CodeMinter:
        """A minter on the real clock, as the phone in the customer's hand."""
        return CodeMinter(self.device_id, self.secret)


@dataclass(frozen=True)
class Shop:
    store: Store
    key_file: Path
    registers: list[RegisteredTerminal]
    phones: list[list[Phone]]  # by register: the customers in its queue


def open_store(kind: str, folder: Path) -> Store:
    """A new SQLite file in ``folder``, or a new schema name on the PostgreSQL server (made by the core)."""
    if kind == "sqlite":
        return Store(kind, str(folder / "core.db"))
    if kind == "postgresql":
        return Store(kind, POSTGRES_URL, f"chaos_{secrets.token_hex(6)}")
    raise ValueError(f"store {kind!r}: one of {', '.join(STORES)}")


def drop_store(store: Store) -> None:
    """Drop a PostgreSQL run's schema (a SQLite file goes with its folder)."""
    if store.schema is not None:
        drop_schema(store.url, store.schema)


def build_shop(store: Store, folder: Path, needs: list[list[int]]) -> Shop:
    """One register per store and, for register ``r``, ``len(needs[r])`` phones, phone ``p`` funded with at
    least ``needs[r][p]`` yen (in top-ups of ``TOPUP_YEN``)."""
    clock = ManualClock(system_clock() - timedelta(days=SETUP_DAYS_AGO))
    core = new_core(
        store.url,
        db_schema=store.schema,
        clock=clock,
        limits=SETUP_LIMITS,
        throttling=SETUP_THROTTLING,
        passwords=SETUP_HASHING,
        risk=load_settings(BURST_FILE),
    )
    try:
        registers = [
            add_terminal(core, f"Chaos store {number + 1}", "register-1", actor="chaos") for number in range(len(needs))
        ]
        with serve(core) as server, registers[0].client(server.url, clock=clock) as till:
            numbers = [(register, index) for register, wanted in enumerate(needs) for index in range(len(wanted))]
            with ThreadPoolExecutor(max_workers=_ENROLL_WORKERS) as pool:
                wallets = dict(zip(numbers, pool.map(lambda at: _enroll(core, server.url, *at), numbers), strict=True))
            phones = [
                [_fund(till, clock, wallets[(register, index)], yen) for index, yen in enumerate(wanted)]
                for register, wanted in enumerate(needs)
            ]
        key_file = write_key(folder / "server.key", core.config.server_key)
    finally:
        core.close()
    return Shop(store, key_file, registers, phones)


def _enroll(core: Core, url: str, register: int, index: int) -> WalletState:
    """A customer of ``register``'s queue signed up, verified and enrolled on a phone, through the wallet API."""
    number = register * 100 + index
    customer = Customer(f"chaos{number}@example.jp", secrets.token_urlsafe(18), f"+8170{number:08d}", f"Chaos {number}")
    return enroll_customer(core, url, customer, device_name=f"chaos phone {number}").wallet


def _fund(till: PaymentClient, clock: ManualClock, wallet: WalletState, yen: int) -> Phone:
    """Cash for at least ``yen`` at the register, in top-ups of ``TOPUP_YEN``, a code a second."""
    funded = 0
    for _ in range(max(1, math.ceil(yen / TOPUP_YEN))):
        clock.advance(1)  # never more than the phone's ten codes a second
        code = CodeMinter(wallet.device_id, wallet.secret, clock).mint().numeric
        topped = till.topup_cash(f"fund-{secrets.token_hex(6)}", TOPUP_YEN, code)
        if topped.status != TopupStatus.SUCCEEDED:
            raise RuntimeError(f"funding a chaos phone failed: {topped.error_code or topped.status}")
        funded += TOPUP_YEN
    return Phone(wallet.account_id, wallet.device_id, wallet.secret, funded)
