"""A fresh SQLite core for an attack replay: the stores and their registers through the core's own API, an
operator's admin key, then every customer in bulk (an account with a verified address and an
authenticator, a phone enrolled two months ago from home, a wallet funded in cash, the home range as a
known place) in one transaction of ``executemany`` batches, with each distinct password hashed once
(``scenario``). The books balance: every wallet's money is a cash top-up journal of its own."""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from payment_core import admin_keys
from payment_core.accounts import hasher_for
from payment_core.keys import device_secret, totp_secret
from payment_core.ledger import CASH_CLEARING, wallet_book_name
from payment_core.risk.signin_attack import place_of
from possim.attack.defences import DefenceProfile
from possim.attack.scenario import COLLUDING_STORES, LEGIT_STORES, REGISTERS_PER_STORE, World, distinct_passwords
from possim.bench.core_load import write_key
from possim.world import RegisteredTerminal, add_terminal, new_core

_STAMP = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime on SQLite
_BATCH = 2_000
_NO_REQUEST = "0" * 64


@dataclass(frozen=True)
class Phone:
    account_id: int
    device_id: int
    secret: bytes = field(repr=False)
    totp: str = field(default="", repr=False)  # the authenticator's secret (base32)


@dataclass(frozen=True)
class Seeded:
    db: Path
    key_file: Path
    admin_token: str = field(repr=False)
    legit_registers: list[RegisteredTerminal]
    colluding_registers: list[RegisteredTerminal]
    shoppers: list[Phone]  # the phones of the customers who shop during the attack
    account_ids: list[int]  # by customer index
    seeded_at: datetime


def seed(world: World, profile: DefenceProfile, folder: Path) -> Seeded:
    db = folder / "core.sqlite"
    core = new_core(
        db,
        passwords=profile.passwords,
        limits=profile.limits,
        throttling=profile.throttling,
        risk=profile.risk,
    )
    try:
        legit = [
            add_terminal(core, f"Shop {store + 1}", f"register-{register + 1}", "attack-setup")
            for store in range(LEGIT_STORES)
            for register in range(REGISTERS_PER_STORE)
        ]
        colluding = [
            add_terminal(core, f"Corner shop {store + 1}", f"register-{register + 1}", "attack-setup")
            for store in range(COLLUDING_STORES)
            for register in range(REGISTERS_PER_STORE)
        ]
        token = admin_keys.create_key(core, "incident-desk", admin_keys.OPERATOR, "attack-setup").token
        key = core.config.server_key
    finally:
        core.close()
    hashes = _hash_once(distinct_passwords(world), profile)
    now = datetime.now(UTC)
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("PRAGMA synchronous=OFF")  # this connection only: a half-made seed is thrown away anyway
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = _customers(conn, world, hashes, now)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    account_ids = [account for account, _, _, _ in ids]
    shoppers = [_phone(key, *ids[i]) for i in world.shoppers]
    key_file = write_key(folder / "server.key", key)
    return Seeded(db, key_file, token, legit, colluding, shoppers, account_ids, now)


def _phone(key: bytes, account_id: int, device_id: int, device_salt: bytes, totp_salt: bytes) -> Phone:
    return Phone(
        account_id, device_id, device_secret(key, device_id, device_salt), totp_secret(key, account_id, totp_salt)
    )


def add_mules(seeded: Seeded, emails: list[str], password_hash: str) -> list[Phone]:
    """The attacker's own accounts, opened two hours ago, each with a phone enrolled an hour ago."""
    key = bytes.fromhex(seeded.key_file.read_text().strip())
    now = datetime.now(UTC)
    with contextlib.closing(sqlite3.connect(seeded.db, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            made = _accounts(
                conn,
                [(email, password_hash, "127.90.0.1", 0) for email in emails],
                now - timedelta(hours=2),
                now - timedelta(hours=1),
                now - timedelta(hours=1),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return [_phone(key, *row) for row in made]


def _hash_once(passwords: list[str], profile: DefenceProfile) -> dict[str, str]:
    hasher = hasher_for(profile.passwords)
    with ThreadPoolExecutor(max_workers=2) as pool:  # argon2-cffi lets go of the GIL while it hashes
        return dict(zip(passwords, pool.map(hasher.hash, passwords), strict=True))


def _next_id(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0])  # noqa: S608


def _customers(
    conn: sqlite3.Connection, world: World, hashes: dict[str, str], now: datetime
) -> list[tuple[int, int, bytes, bytes]]:
    """Insert every customer; their (account id, device id, device salt, authenticator salt) by index."""
    rows = [(c.email, hashes[c.password], c.home, c.balance) for c in world.customers]
    return _accounts(conn, rows, now - timedelta(days=90), now - timedelta(days=60), now - timedelta(days=30))


def _accounts(
    conn: sqlite3.Connection,
    people: list[tuple[str, str, str, int]],
    opened_at: datetime,
    enrolled_at: datetime,
    funded_at: datetime,
) -> list[tuple[int, int, bytes, bytes]]:
    """(e-mail, password hash, home address, balance) each as an account with a phone and a funded wallet."""
    opened, enrolled, funded = (moment.strftime(_STAMP) for moment in (opened_at, enrolled_at, funded_at))
    cash = int(conn.execute("SELECT id FROM ledger_accounts WHERE name = ?", (CASH_CLEARING,)).fetchone()[0])
    account_id, device_id = _next_id(conn, "accounts"), _next_id(conn, "devices")
    book_id, journal_id = _next_id(conn, "ledger_accounts"), _next_id(conn, "journals")
    rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in _INSERTS}
    made: list[tuple[int, int, bytes, bytes]] = []
    total = 0
    for email, password_hash, home, balance in people:
        salt, totp_salt = secrets.token_bytes(32), secrets.token_bytes(32)
        rows["accounts"].append((account_id, email, email.partition("@")[0], password_hash, opened, opened))
        rows["accounts_totp"].append((totp_salt, account_id))
        rows["devices"].append((device_id, account_id, salt, enrolled))
        rows["ledger_accounts"].append((book_id, account_id, wallet_book_name(account_id), balance))
        rows["account_places"].append((account_id, place_of(home), enrolled, funded))
        if balance:
            topup = f"top_seed{journal_id:016d}"
            rows["topups"].append(
                (topup, "seed", f"seed-{journal_id}", _NO_REQUEST, account_id, balance, balance, funded)
            )
            rows["journals"].append((journal_id, topup, funded))
            rows["postings"] += [(journal_id, cash, -balance), (journal_id, book_id, balance)]
            journal_id += 1
        made.append((account_id, device_id, salt, totp_salt))
        total += balance
        account_id, device_id, book_id = account_id + 1, device_id + 1, book_id + 1
        if len(rows["accounts"]) >= _BATCH:
            _flush(conn, rows)
    _flush(conn, rows)
    conn.execute("UPDATE ledger_accounts SET balance = balance - ? WHERE id = ?", (total, cash))
    return made


_INSERTS = {
    "accounts": "INSERT INTO accounts (id, email, display_name, password_hash, status, created_at, email_verified_at,"
    " totp_failures, signin_failures) VALUES (?, ?, ?, ?, 'active', ?, ?, 0, 0)",
    "accounts_totp": "UPDATE accounts SET totp_salt = ? WHERE id = ?",
    "devices": "INSERT INTO devices (id, account_id, name, secret_salt, status, enrolled_at)"
    " VALUES (?, ?, 'own phone', ?, 'active', ?)",
    "ledger_accounts": "INSERT INTO ledger_accounts (id, kind, owner_id, name, balance, allow_negative)"
    " VALUES (?, 'wallet', ?, ?, ?, 0)",
    "account_places": "INSERT INTO account_places (account_id, place, first_seen, last_seen) VALUES (?, ?, ?, ?)",
    "topups": "INSERT INTO topups (id, source, topup_key, request_hash, account_id, method, amount, status,"
    " balance_after, created_at) VALUES (?, ?, ?, ?, ?, 'cash', ?, 'succeeded', ?, ?)",
    "journals": "INSERT INTO journals (id, kind, reference, created_at) VALUES (?, 'topup', ?, ?)",
    "postings": "INSERT INTO postings (journal_id, ledger_account_id, amount) VALUES (?, ?, ?)",
}


def _flush(conn: sqlite3.Connection, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    for table, statement in _INSERTS.items():  # in this order: the rows refer to the ones before
        conn.executemany(statement, rows[table])
        rows[table].clear()
