"""One register's local store: a SQLite file (``register_db``) holding clerk sign-in and the sales journal.

Clerk sign-in (clerks, PINs, lockout, opening a shift) lives in :mod:`terminal.clerks`; sales, refunds and
shift reports in :mod:`terminal.journal`; wallet orders written down before they are sent (what a register
stopped mid-payment reconciles at start) in :mod:`terminal.wallet_orders`. :class:`RegisterStore` opens the
file and hands them out as ``store.clerks``, ``store.journal`` and ``store.wallet_orders``; callers use those
(``store.clerks.sign_in``, ``store.journal.record_sale``, ``store.wallet_orders.pending``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from protocol.clock import Clock, system_clock
from terminal.clerks import Clerks
from terminal.journal import Journal
from terminal.register_db import RegisterDB
from terminal.register_records import (
    Clerk,
    RegisterStoreError,
    SaleRecord,
    Shift,
    ShiftReport,
    SignInRefused,
    TenderTotals,
    format_receipt_no,
)
from terminal.wallet_orders import WalletOrders

__all__ = [
    "Clerk",
    "RegisterStore",
    "RegisterStoreError",
    "SaleRecord",
    "Shift",
    "ShiftReport",
    "SignInRefused",
    "TenderTotals",
    "format_receipt_no",
]


class RegisterStore:
    """The register's file, opened once: ``clerks`` signs clerks in, ``journal`` records what they sell,
    ``wallet_orders`` what was sent to the core and not yet settled."""

    def __init__(
        self,
        path: str | Path,
        clock: Clock = system_clock,
        *,
        terminal_id: str = "T1",
        max_pin_failures: int = 5,
        lockout_seconds: int = 300,
    ) -> None:
        if max_pin_failures < 1 or lockout_seconds < 1:
            raise ValueError("max_pin_failures and lockout_seconds must be positive")
        self.terminal_id = terminal_id
        self._db = RegisterDB(path, clock)
        self.clerks = Clerks(self._db, terminal_id, max_pin_failures=max_pin_failures, lockout_seconds=lockout_seconds)
        self.journal = Journal(self._db, terminal_id)
        self.wallet_orders = WalletOrders(self._db)

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._db.connection

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RegisterStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
