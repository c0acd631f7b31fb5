"""Do payments stay as fast when the ledger is big? Throughput and p99 with 1k, 100k and 1M entries.

One core is set up as ``possim.bench.core_load`` sets up its SQLite core (``possim.bench.template``:
registers, phones enrolled and funded), then for each ledger size a copy of it is seeded in bulk
(:func:`seed`: SQLite ``executemany`` in batches, one transaction, never through the API) with that many
journals, and the rows real payments leave beside them, then served by ``possim core serve`` and loaded
with core_load's load. ``--quick`` uses small sizes (1,000 and 5,000), each keyed by its real size.

A seeded ledger is a history of ``entries`` journals: seeded customers (one wallet book, one device
each, up to 1,000 journals a customer) each topped up once in cash at a register (a ``topups`` row, a
journal cash clearing → wallet), then paying 100 yen at the core_load registers in turn: for each
payment a ``payments`` row, a journal wallet → the register's book with its two postings, the audit
event, the wallet's notification and the used code, timed one second apart up to a day ago. Every
journal balances and every book's balance is the sum of its postings (``possim admin audit`` holds).

Each size's row is core_load's figures (``payments_per_s``, ``p50_ms``, ``p99_ms``, ...) with
``entries``, ``seed_s``, the server's memory, the ratio of its throughput and p99 to the smallest
size's, and ``prune`` (``possim admin prune`` on that ledger after its load: seconds and rows deleted). The issue's target is "within 20%": ``within_20_percent`` says whether every size held it. The
full run adds a sweep of concurrency on the smallest size (``concurrency``: 4, 8, 16 registers and the
main load's), each with fresh codes on the same copy, after its main load (whose payments it then holds too).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Console
from rich.table import Table

from payment_core.ledger import CASH_CLEARING, till_book_name, wallet_book_name
from possim.bench import core_load
from possim.bench.served import memory_mb
from possim.bench.template import Template, after, copy_to, load, served_core, shared
from possim.world import RegisteredTerminal
from protocol import format_yen

FULL_SIZES = (1_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 5_000)
SWEEP = (4, 8, 16)  # registers at once, beside the main load's 32 (full run only)
SWEEP_PAYMENTS = 400  # measured payments at each sweep level
TOLERANCE = 0.20  # the "within 20%"
AMOUNT_YEN = 100
PER_CUSTOMER = 1_000  # journals a seeded customer leaves (one top-up, the rest payments)
BATCH = 20_000  # journals (with their rows) a round of executemany inserts
_STAMP = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime on SQLite


def scale(quick: bool) -> core_load.Scale:
    """core_load's scale; the full template funds the sweep too (its phones' one top-up stays within a new
    device's limit: 100 codes of 100 yen); the quick one is smaller still (a smoke run: fewer phones to
    enroll, fewer payments; two phones' top-ups cover its codes)."""
    if quick:
        return dataclasses.replace(core_load.QUICK, phones=2, payments=100, flood_payments=20)
    return dataclasses.replace(core_load.FULL, flood_payments=1_700)


def run(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK_SIZES if quick else FULL_SIZES
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="possim-bench-growth-") as folder:
        template = shared(scale(quick))
        for index, size in enumerate(sizes):
            row, sweep = _size(template, size, Path(folder) / f"ledger-{size}.db", sweep=not quick and index == 0)
            result[str(size)] = row
            if index == 0:
                result["concurrency"] = sweep
    first = result[str(sizes[0])]
    for size in sizes:
        row = result[str(size)]
        row["throughput_ratio"] = _ratio(row["payments_per_s"], first["payments_per_s"])
        row["p99_ratio"] = _ratio(row["p99_ms"], first["p99_ms"])
    held = [
        result[str(size)]["throughput_ratio"] is not None
        and result[str(size)]["p99_ratio"] is not None
        and result[str(size)]["throughput_ratio"] >= 1 - TOLERANCE
        and result[str(size)]["p99_ratio"] <= 1 + TOLERANCE
        for size in sizes
    ]
    result.update(
        sizes=list(sizes),
        within_20_percent=all(held),
        terminals=template.scale.terminals,
        phones=template.scale.phones,
        payments=template.scale.payments,
        amount_yen=AMOUNT_YEN,
        store="sqlite",
        setup_s=template.setup_s,
    )
    return result


def _size(template: Template, size: int, db: Path, *, sweep: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    copy_to(template, db)
    started = time.monotonic()
    seed(db, size, template.terminals)
    seed_s = round(time.monotonic() - started, 2)
    with served_core(template, db) as (url, pid):
        row = load(template, url, pid, f"growth-{size}")
        row |= {"entries": size, "seed_s": seed_s, "server_memory_mb": memory_mb(pid)}
        levels = {str(template.scale.terminals): _brief(row)}
        if sweep:
            for registers in SWEEP:
                again = after(template)
                figures = load(again, url, pid, f"sweep-{registers}", registers=registers, payments=SWEEP_PAYMENTS)
                levels[str(registers)] = _brief(figures)
    row["prune"] = _prune(template, db)
    for path in db.parent.glob(f"{db.name}*"):  # the copy, its WAL: a 1M-entry ledger is a gigabyte
        path.unlink()
    ordered = dict(sorted(levels.items(), key=lambda item: int(item[0])))
    return row, ordered


def _prune(template: Template, db: Path) -> dict[str, Any]:
    """``possim admin prune`` on the loaded ledger, as an operator (or ``core serve``'s own thread) runs it:
    its wall time and what it deleted (the seeded history's used codes older than a day among them)."""
    command = [sys.executable, "-m", "possim", "admin", "--db", str(db), "--key-file", str(template.key_file)]
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603
        [*command, "prune", "--json"], capture_output=True, text=True, timeout=600, check=False
    )
    seconds = round(time.monotonic() - started, 2)
    if done.returncode != 0:
        return {"seconds": seconds, "rows": None, "error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    deleted = json.loads(done.stdout)["deleted"]
    return {"seconds": seconds, "rows": sum(deleted.values()), "by_table": deleted}


def _ratio(value: float, smallest: float) -> float | None:
    """``value`` over the smallest ledger's; None when either is missing (no answer at all: NaN) or zero."""
    if not smallest or math.isnan(smallest) or math.isnan(value):
        return None
    return round(value / smallest, 3)


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    names = ("payments_per_s", "p50_ms", "p99_ms", "approved", "sent", "errors", "server_cpu")
    return {name: row[name] for name in names}


# -- the seed --------------------------------------------------------------------------------------


def seed(db: Path, entries: int, terminals: list[RegisteredTerminal]) -> None:
    """Add ``entries`` balanced journals (and what their payments leave) to the SQLite core at ``db``,
    in one transaction; the books' balances move by the sums of the postings added."""
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("PRAGMA synchronous=OFF")  # this connection only: a half-made seed is thrown away anyway
        conn.execute("BEGIN IMMEDIATE")
        try:
            _seed(conn, entries, terminals)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the server starts from a checkpointed file
    _on_disk(db)


def _on_disk(path: Path) -> None:
    """Wait until ``path`` is on the disk. The seed skips SQLite's syncs, which left a 1M-entry ledger as a
    gigabyte of the page cache for the kernel to write back while the load ran: the server's own syncs waited
    behind it (p99 0.25-1.6 s at 1M against 0.1 s at 1k and 100k on one machine, the group writer idle 80%
    of the time). A ledger that size lives on the disk, not in the cache, before anyone pays."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class _Rows:
    """The rows waiting for the next round of ``executemany``, table by table."""

    STATEMENTS: ClassVar[dict[str, str]] = {
        "payments": "INSERT INTO payments (id, terminal_id, merchant_id, order_id, request_hash, amount, status,"
        " account_id, device_id, amount_refunded, balance_after, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, 'succeeded', ?, ?, 0, ?, ?, ?)",
        "topups": "INSERT INTO topups (id, source, topup_key, request_hash, account_id, method, amount, status,"
        " balance_after, created_at) VALUES (?, ?, ?, ?, ?, 'cash', ?, 'succeeded', ?, ?)",
        "journals": "INSERT INTO journals (id, kind, reference, created_at) VALUES (?, ?, ?, ?)",
        "postings": "INSERT INTO postings (journal_id, ledger_account_id, amount) VALUES (?, ?, ?)",
        "audit_events": "INSERT INTO audit_events (at, actor, action, target, result, detail, source)"
        " VALUES (?, ?, ?, ?, 'succeeded', ?, '127.0.0.1')",
        "notifications": "INSERT INTO notifications (account_id, kind, message, created_at) VALUES (?, ?, ?, ?)",
        "used_codes": "INSERT INTO used_codes (use_key, device_id, used_at, used_by) VALUES (?, ?, ?, ?)",
    }

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in self.STATEMENTS}

    def flush(self, conn: sqlite3.Connection) -> None:
        for table, rows in self.rows.items():
            conn.executemany(self.STATEMENTS[table], rows)
            rows.clear()


@dataclass(frozen=True)
class _Till:
    terminal_id: str
    merchant_id: int
    book: int
    store: str


def _seed(conn: sqlite3.Connection, entries: int, terminals: list[RegisteredTerminal]) -> None:
    tills = [_till(conn, terminal.id) for terminal in terminals]
    cash = _one(conn, "SELECT id FROM ledger_accounts WHERE name = ?", CASH_CLEARING)
    journal_id = _one(conn, "SELECT coalesce(max(id), 0) FROM journals") + 1
    start = datetime.now(UTC) - timedelta(days=1, seconds=entries)
    counts = [min(PER_CUSTOMER, entries - done) for done in range(0, entries, PER_CUSTOMER)]
    moved: dict[int, int] = {cash: 0} | {till.book: 0 for till in tills}
    rows = _Rows()
    for (account_id, device_id, book), count in zip(_customers(conn, len(counts), start), counts, strict=True):
        balance = max(1, count - 1) * AMOUNT_YEN  # a customer of one journal only tops up
        at = start + timedelta(seconds=journal_id)
        _topup(rows, journal_id, tills[journal_id % len(tills)], account_id, (cash, book), balance, at)
        moved[cash] -= balance
        moved[book] = balance
        journal_id += 1
        for _ in range(count - 1):
            till = tills[journal_id % len(tills)]
            balance -= AMOUNT_YEN
            _payment(
                rows, journal_id, till, account_id, device_id, book, balance, start + timedelta(seconds=journal_id)
            )
            moved[book] -= AMOUNT_YEN
            moved[till.book] += AMOUNT_YEN
            journal_id += 1
            if len(rows.rows["journals"]) >= BATCH:
                rows.flush(conn)
    rows.flush(conn)
    conn.executemany(
        "UPDATE ledger_accounts SET balance = balance + ? WHERE id = ?", [(d, b) for b, d in moved.items()]
    )


def _topup(
    rows: _Rows, journal_id: int, till: _Till, account_id: int, books: tuple[int, int], amount: int, at: datetime
) -> None:
    topup_id, stamp = f"top_seed{journal_id:016d}", at.strftime(_STAMP)
    rows.rows["topups"].append(
        (topup_id, till.terminal_id, f"seed-{journal_id}", _HASH, account_id, amount, amount, stamp)
    )
    rows.rows["journals"].append((journal_id, "topup", topup_id, stamp))
    rows.rows["postings"] += [(journal_id, books[0], -amount), (journal_id, books[1], amount)]
    detail = json.dumps({"account_id": account_id, "amount": amount}, sort_keys=True)
    rows.rows["audit_events"].append((stamp, till.terminal_id, "topup.cash", topup_id, detail))
    rows.rows["notifications"].append(
        (account_id, "topup", f"{format_yen(amount)} was added to your wallet (cash).", stamp)
    )


def _payment(
    rows: _Rows,
    journal_id: int,
    till: _Till,
    account_id: int,
    device_id: int,
    book: int,
    balance: int,
    at: datetime,
) -> None:
    payment_id, order_id, stamp = f"pay_seed{journal_id:016d}", f"seed-{journal_id}", at.strftime(_STAMP)
    who = (till.terminal_id, till.merchant_id, order_id, _HASH, AMOUNT_YEN, account_id, device_id, balance)
    rows.rows["payments"].append((payment_id, *who, stamp, stamp))
    rows.rows["journals"].append((journal_id, "payment", payment_id, stamp))
    rows.rows["postings"] += [(journal_id, book, -AMOUNT_YEN), (journal_id, till.book, AMOUNT_YEN)]
    detail = json.dumps(
        {"account_id": account_id, "amount": AMOUNT_YEN, "device_id": device_id, "order_id": order_id}, sort_keys=True
    )
    rows.rows["audit_events"].append((stamp, till.terminal_id, "payment", payment_id, detail))
    message = f"You paid {format_yen(AMOUNT_YEN)} at {till.store}."
    rows.rows["notifications"].append((account_id, "payment", message, stamp))
    rows.rows["used_codes"].append((f"{device_id}:{int(at.timestamp())}:0", device_id, stamp, till.terminal_id))


def _customers(conn: sqlite3.Connection, count: int, at: datetime) -> Iterator[tuple[int, int, int]]:
    """``count`` seeded customers, each with an account, a device and a wallet book: their ids."""
    stamp = at.strftime(_STAMP)
    for _ in range(count):
        tag = secrets.token_hex(8)
        account_id = _insert(
            conn,
            "INSERT INTO accounts (email, display_name, password_hash, status, created_at, email_verified_at,"
            " totp_failures, signin_failures) VALUES (?, ?, '!', 'active', ?, ?, 0, 0)",
            f"seed-{tag}@example.jp",
            f"Seed {tag}",
            stamp,
            stamp,
        )
        device_id = _insert(
            conn,
            "INSERT INTO devices (account_id, name, secret_salt, status, enrolled_at) VALUES (?, 'seed phone', ?, 'active', ?)",
            account_id,
            secrets.token_bytes(32),
            stamp,
        )
        book = _insert(
            conn,
            "INSERT INTO ledger_accounts (kind, owner_id, name, balance, allow_negative) VALUES ('wallet', ?, ?, 0, 0)",
            account_id,
            wallet_book_name(account_id),
        )
        yield account_id, device_id, book


def _till(conn: sqlite3.Connection, terminal_id: str) -> _Till:
    row = conn.execute(
        "SELECT t.merchant_id, b.id, m.name FROM terminals t JOIN merchants m ON m.id = t.merchant_id"
        " JOIN ledger_accounts b ON b.name = ? WHERE t.id = ?",
        (till_book_name(terminal_id), terminal_id),
    ).fetchone()
    if row is None:
        raise LookupError(f"no register {terminal_id} with a book of its own")
    return _Till(terminal_id, int(row[0]), int(row[1]), str(row[2]))


def _one(conn: sqlite3.Connection, sql: str, *parameters: Any) -> int:
    return int(conn.execute(sql, parameters).fetchone()[0])


def _insert(conn: sqlite3.Connection, sql: str, *parameters: Any) -> int:
    cursor = conn.execute(sql, parameters)
    if cursor.lastrowid is None:
        raise RuntimeError("no row id")
    return int(cursor.lastrowid)


_HASH = "0" * 64  # the request's fingerprint: no request was made


# -- the report ------------------------------------------------------------------------------------


def print_table(console: Console, growth: dict[str, Any]) -> None:
    table = Table(
        title=f"ledger growth: SQLite, {growth['terminals']} registers, {growth['payments']} × {growth['amount_yen']} yen"
        f" (within 20%: {'yes' if growth['within_20_percent'] else 'no'})"
    )
    columns = ("entries", "seed s", "paid/s", "× smallest", "p50 ms", "p99 ms", "× smallest ", "server MiB", "prune s")
    for column in columns:
        table.add_column(column, justify="right")
    for size in growth["sizes"]:
        row = growth[str(size)]
        table.add_row(
            f"{size:,}",
            f"{row['seed_s']:.1f}",
            f"{row['payments_per_s']:.1f}",
            "-" if row["throughput_ratio"] is None else f"{row['throughput_ratio']:.2f}",
            f"{row['p50_ms']:.1f}",
            f"{row['p99_ms']:.1f}",
            "-" if row["p99_ratio"] is None else f"{row['p99_ratio']:.2f}",
            str(row["server_memory_mb"]["peak"]),
            f"{row['prune']['seconds']:.1f}",
        )
    console.print(table)
    levels = growth["concurrency"]
    if len(levels) > 1:
        table = Table(title=f"concurrency on the smallest ledger ({growth['sizes'][0]:,} entries)")
        for column in ("registers", "paid/s", "p50 ms", "p99 ms", "approved"):
            table.add_column(column, justify="right")
        for registers, row in levels.items():
            table.add_row(
                registers,
                f"{row['payments_per_s']:.1f}",
                f"{row['p50_ms']:.1f}",
                f"{row['p99_ms']:.1f}",
                str(row["approved"]),
            )
        console.print(table)
