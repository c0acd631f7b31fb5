"""The floor of ``possim bench --only core``: the least a durable payment can cost on this stack.

The same FastAPI and uvicorn as ``possim.bench.ceiling_app`` (and the core), the same ``POST /v1/payments``
from the same clients, but each answer waits for the rows a payment of the core's writes, in one SQLite
transaction on the core's settings (WAL, ``synchronous=FULL``), written by hand with the standard library's
``sqlite3``: no ORM, no signature or code check, no risk rule, one writer thread. The nonce, the used code,
the payment, the journal, the two balance updates, the two postings, the notification and the audit
event: ten statements and a commit, the core's ledger shape (``payment_core.models``), reduced to what a
durable charge cannot skip.

It is a bound, not a design: ``floor / ceiling`` is the best ratio any core built on FastAPI, uvicorn and
a durable SQLite commit could reach on this machine, so the core's ``ratio`` reads against it.

    python -m possim.bench.floor_app --port 8798 --db /tmp/floor.db
"""

from __future__ import annotations

import argparse
import itertools
import sqlite3
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from payment_core.db import sqlite_synchronous_name
from protocol.signing import HEADER_NONCE

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (key_id TEXT, nonce TEXT, seen_at REAL, PRIMARY KEY (key_id, nonce));
CREATE TABLE IF NOT EXISTS used_codes (use_key TEXT PRIMARY KEY, used_at REAL);
CREATE TABLE IF NOT EXISTS payments (id TEXT PRIMARY KEY, order_id TEXT, amount INTEGER, status TEXT, at REAL);
CREATE TABLE IF NOT EXISTS journals (id INTEGER PRIMARY KEY, reference TEXT, at REAL);
CREATE TABLE IF NOT EXISTS books (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS postings (journal_id INTEGER, book_id INTEGER, amount INTEGER);
CREATE TABLE IF NOT EXISTS notifications (id INTEGER PRIMARY KEY, message TEXT, at REAL);
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, action TEXT, target TEXT, at REAL);
INSERT OR IGNORE INTO books (id, balance) VALUES (1, 1000000000000), (2, 0);
"""


class FloorStore:
    """One SQLite connection, one writer at a time: a payment's rows in one durable transaction."""

    def __init__(self, path: str) -> None:
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)

    def synchronous(self) -> str:
        """SQLite's ``synchronous`` on the store's connection, by name (2 is FULL)."""
        return sqlite_synchronous_name(self._connection.execute("PRAGMA synchronous").fetchone()[0])

    def charge(self, body: dict[str, Any], nonce: str) -> dict[str, Any]:
        number = next(self._numbers)
        payment_id = f"pay_{number}"
        amount = int(body.get("amount") or 0)
        now = time.time()
        with self._lock:
            run = self._connection.execute
            run("BEGIN IMMEDIATE")
            try:
                run("INSERT INTO nonces VALUES (?, ?, ?)", ("floor", nonce, now))
                run("INSERT INTO used_codes VALUES (?, ?)", (f"{body.get('code')}:{number}", now))
                run(
                    "INSERT INTO payments VALUES (?, ?, ?, 'succeeded', ?)",
                    (payment_id, body.get("order_id"), amount, now),
                )
                journal = run("INSERT INTO journals (reference, at) VALUES (?, ?)", (payment_id, now)).lastrowid
                run("UPDATE books SET balance = balance - ? WHERE id = 1 AND balance >= ?", (amount, amount))
                run("UPDATE books SET balance = balance + ? WHERE id = 2", (amount,))
                run("INSERT INTO postings VALUES (?, 1, ?), (?, 2, ?)", (journal, -amount, journal, amount))
                run("INSERT INTO notifications (message, at) VALUES (?, ?)", (f"paid {amount}", now))
                run("INSERT INTO audit (action, target, at) VALUES ('payment', ?, ?)", (payment_id, now))
                run("COMMIT")
            except BaseException:
                run("ROLLBACK")
                raise
        return {"id": payment_id, "order_id": body.get("order_id"), "status": "succeeded", "amount": amount}


def create_app(path: str) -> FastAPI:
    app = FastAPI(title="possim bench floor", docs_url=None, redoc_url=None, openapi_url=None)
    store = FloorStore(path)

    @app.post("/v1/payments")
    async def create_payment(request: Request) -> dict[str, Any]:
        body = await request.json()
        nonce = request.headers.get(HEADER_NONCE, "")
        return await run_in_threadpool(store.charge, body, nonce)

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m possim.bench.floor_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True, help="the SQLite file (made if missing)")
    args = parser.parse_args(argv)
    print(f"possim bench floor on http://{args.host}:{args.port}", flush=True)
    # The options of possim.commands.core.run_serve and of the ceiling, so that only the app differs.
    uvicorn.run(create_app(args.db), host=args.host, port=args.port, log_level="info", proxy_headers=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
