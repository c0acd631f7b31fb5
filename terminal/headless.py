"""A register without a screen: ``python -m terminal.headless``.

It builds the till as the Textual register does (its file, the default catalog, a printer writing to a file,
the payment client signing with the terminal's secret) and first does what the register does at start: it
asks the core about the wallet payments a register stopped mid-payment left pending
(``Till.reconcile_pending``) and prints the summary, one line per order after it. With ``--sell JAN ...`` it
then signs the clerk in (``--clerk``; the PIN from ``$POSSIM_CLERK_PIN``), rings the products up and takes one
wallet payment with the code read from standard input, as the register does (the order written down as
pending before it is sent), and prints each step and the outcome.

Exit status: 0 when done (and the payment, if any, approved), 1 when it could not run (bad arguments, a refused
sign-in, an unreadable file), 2 when the payment was not approved (declined, or its fate unknown: then the
order stays pending for the next start). Nothing here raises to the caller: each failure is one line on
standard error.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

from hardware.customer_display import MemoryDisplay
from hardware.printer import dummy_printer
from protocol import PaymentStatus, ScanKind
from terminal.catalog import Catalog, CatalogError
from terminal.client import PaymentClient
from terminal.register_store import RegisterStore, RegisterStoreError
from terminal.till import Till, TillError

PIN_ENV = "POSSIM_CLERK_PIN"
NOT_APPROVED = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m terminal.headless", description=__doc__.split("\n\n")[0])
    parser.add_argument("--core", required=True, help="the payment core's URL")
    parser.add_argument("--terminal-id", required=True)
    parser.add_argument("--secret-file", type=Path, required=True, help="file holding the terminal secret (hex)")
    parser.add_argument("--register-db", type=Path, required=True, help="this register's file")
    parser.add_argument("--receipts", type=Path, default=None, help="where receipts go (default: beside the file)")
    parser.add_argument("--clerk", default=None, help=f"the clerk who sells (PIN from ${PIN_ENV})")
    parser.add_argument("--sell", nargs="+", metavar="JAN", default=[], help="ring these up and pay by wallet")
    parser.add_argument("--store-name", default="possim store")
    args = parser.parse_args(argv)
    try:
        secret = bytes.fromhex(args.secret_file.read_text().strip())
        catalog = Catalog.default()
        store = RegisterStore(args.register_db, terminal_id=args.terminal_id)
    except (OSError, ValueError, CatalogError, RegisterStoreError) as error:
        return _fail(f"cannot open the register: {error}")
    receipts = args.receipts or args.register_db.with_name("receipts.escpos")
    with store, PaymentClient(args.core, args.terminal_id, secret) as client:
        till = Till(
            store,
            catalog,
            client,
            dummy_printer(receipts),
            MemoryDisplay(),
            store_name=args.store_name,
            terminal_id=args.terminal_id,
        )
        try:
            result = till.reconcile_pending()
        except (RegisterStoreError, sqlite3.Error, OSError) as error:
            return _fail(f"cannot check the unfinished payments: {error}")
        _say(f"pending: {result.summary() or 'none'}")
        for settlement in result.settlements:
            _say(f"  {settlement.line()}")
        if not args.sell:
            return 0
        return _sell(till, args.clerk, args.sell)


def _sell(till: Till, clerk_id: str | None, jans: list[str]) -> int:
    """Sign in, ring ``jans`` up, and pay by wallet with the code on standard input."""
    if not clerk_id:
        return _fail("--sell needs --clerk")
    try:
        till.sign_in(clerk_id, os.environ.get(PIN_ENV, ""))
        for jan in jans:
            scanned = till.scan(jan)
            if scanned.kind != ScanKind.PRODUCT:
                return _fail(scanned.message)
        attempt = till.start_payment()
    except (TillError, RegisterStoreError) as error:
        return _fail(str(error))
    code = sys.stdin.readline().strip()
    _say(f"sending order {attempt.order_id} for receipt {attempt.receipt_no}, ¥{attempt.amount:,}")
    try:
        outcome = till.send_wallet(attempt, code)
    except TillError as error:
        return _fail(str(error))
    _say(f"outcome: {outcome.status} {outcome.payment_id or ''} {outcome.message}".rstrip())
    if outcome.status != PaymentStatus.SUCCEEDED:
        if not till.settle_wallet(outcome):
            _say(f"order {attempt.order_id} stays pending: the next start asks the payment service")
        return NOT_APPROVED
    try:
        completed = till.finish_wallet(attempt, outcome)
    except (TillError, RegisterStoreError, sqlite3.Error, OSError) as error:
        _say(f"order {attempt.order_id} is paid but not recorded ({error}): the next start records it")
        return NOT_APPROVED
    _say(f"recorded: receipt {attempt.receipt_no}" + ("" if completed.printed else f" ({completed.printer_message})"))
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


def _fail(message: str) -> int:
    print(f"terminal.headless: {message}", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
