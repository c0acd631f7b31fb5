"""Clerk sign-in: clerks, their PINs, lockout after failed tries, and opening a shift.

Clerk PINs are kept only as argon2id hashes (the ``PIN_HASH_*`` constants), checked with argon2's constant-time
verify, never logged and never echoed in a message. Sign-in is throttled per clerk id, known or not.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta
from functools import cache
from typing import Final

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from terminal.register_db import RegisterDB, from_iso, iso, shift_from_row
from terminal.register_records import Clerk, RegisterStoreError, Shift, SignInRefused

# OWASP Password Storage Cheat Sheet minimum for argon2id: m=19 MiB, t=2, p=1 (about 30 ms here).
PIN_HASH_TIME_COST: Final = 2
PIN_HASH_MEMORY_KIB: Final = 19456
PIN_HASH_PARALLELISM: Final = 1
_PIN_RE: Final = re.compile(r"[0-9]{4,8}")
_CLERK_ID_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,32}")


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher(
        time_cost=PIN_HASH_TIME_COST, memory_cost=PIN_HASH_MEMORY_KIB, parallelism=PIN_HASH_PARALLELISM, type=Type.ID
    )


@cache
def _dummy_hash() -> str:
    """A hash of no real PIN, verified against for unknown clerk ids so they take as long as known ones."""
    return _hasher().hash("dummy-pin-for-unknown-clerks")


class Clerks:
    """Who may work this register, and the shift one of them has open."""

    def __init__(self, db: RegisterDB, terminal_id: str, *, max_pin_failures: int, lockout_seconds: int) -> None:
        if max_pin_failures < 1 or lockout_seconds < 1:
            raise ValueError("max_pin_failures and lockout_seconds must be positive")
        self._db = db
        self._terminal_id = terminal_id
        self._max_failures = max_pin_failures
        self._lockout = lockout_seconds

    def add_clerk(self, clerk_id: str, name: str, pin: str) -> Clerk:
        if not _CLERK_ID_RE.fullmatch(clerk_id):
            raise RegisterStoreError("A clerk id is 1-32 letters, digits, '.', '_' or '-'")
        if not name.strip():
            raise RegisterStoreError("A clerk needs a name")
        if not _PIN_RE.fullmatch(pin):
            raise RegisterStoreError("A PIN is 4 to 8 digits")
        pin_hash = _hasher().hash(pin)
        with self._db.tx() as conn:
            if conn.execute("SELECT 1 FROM clerks WHERE clerk_id = ?", (clerk_id,)).fetchone():
                raise RegisterStoreError(f"Clerk id {clerk_id} is already taken")
            conn.execute(
                "INSERT INTO clerks (clerk_id, name, pin_hash, created_at) VALUES (?, ?, ?, ?)",
                (clerk_id, name.strip(), pin_hash, iso(self._db.now())),
            )
        return Clerk(clerk_id, name.strip())

    def get_clerk(self, clerk_id: str) -> Clerk | None:
        rows = self._db.read("SELECT clerk_id, name FROM clerks WHERE clerk_id = ?", (clerk_id,))
        return Clerk(rows[0]["clerk_id"], rows[0]["name"]) if rows else None

    def sign_in(self, clerk_id: str, pin: str) -> Clerk:
        """The clerk, if the PIN is right and the id is not locked; else :class:`SignInRefused`."""
        now = self._db.now()
        with self._db.tx() as conn:
            self._refuse_if_locked(conn, clerk_id, now)
            row = conn.execute("SELECT name, pin_hash FROM clerks WHERE clerk_id = ?", (clerk_id,)).fetchone()
        # The slow, constant-time verify runs outside the lock so other threads are not held up.
        ok = self._verify(row["pin_hash"] if row else _dummy_hash(), pin) and row is not None
        with self._db.tx() as conn:
            self._refuse_if_locked(conn, clerk_id, now)
            if ok:
                conn.execute("DELETE FROM sign_in_failures WHERE clerk_id = ?", (clerk_id,))
                if _hasher().check_needs_rehash(row["pin_hash"]):
                    new_hash = _hasher().hash(pin)
                    conn.execute("UPDATE clerks SET pin_hash = ? WHERE clerk_id = ?", (new_hash, clerk_id))
                return Clerk(clerk_id, row["name"])
            locked_for = self._count_failure(conn, clerk_id, now)
        if locked_for:
            raise SignInRefused("locked", locked_for)
        raise SignInRefused("invalid")

    @staticmethod
    def _verify(pin_hash: str, pin: str) -> bool:
        try:
            return _hasher().verify(pin_hash, pin)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _refuse_if_locked(self, conn: sqlite3.Connection, clerk_id: str, now: datetime) -> None:
        row = conn.execute("SELECT locked_until FROM sign_in_failures WHERE clerk_id = ?", (clerk_id,)).fetchone()
        if row is None or row["locked_until"] is None:
            return
        until = from_iso(row["locked_until"])
        if now < until:
            raise SignInRefused("locked", max(1, int((until - now).total_seconds() + 0.999)))
        conn.execute("DELETE FROM sign_in_failures WHERE clerk_id = ?", (clerk_id,))

    def _count_failure(self, conn: sqlite3.Connection, clerk_id: str, now: datetime) -> int:
        """Record one failure; returns the lockout in seconds if this failure locks the id, else 0."""
        row = conn.execute(
            "SELECT failures, first_failure_at FROM sign_in_failures WHERE clerk_id = ?", (clerk_id,)
        ).fetchone()
        window = timedelta(seconds=self._lockout)
        if row is None or now - from_iso(row["first_failure_at"]) >= window:
            failures, first = 1, now
        else:
            failures, first = row["failures"] + 1, from_iso(row["first_failure_at"])
        locked_until = iso(now + window) if failures >= self._max_failures else None
        conn.execute(
            "INSERT OR REPLACE INTO sign_in_failures (clerk_id, failures, first_failure_at, locked_until) "
            "VALUES (?, ?, ?, ?)",
            (clerk_id, failures, iso(first), locked_until),
        )
        return self._lockout if locked_until else 0

    def open_shift(self, clerk_id: str) -> Shift:
        now = self._db.now()
        with self._db.tx() as conn:
            if not conn.execute("SELECT 1 FROM clerks WHERE clerk_id = ?", (clerk_id,)).fetchone():
                raise RegisterStoreError(f"No clerk {clerk_id}")
            held = conn.execute("SELECT shift_id, clerk_id FROM shifts WHERE closed_at IS NULL").fetchone()
            if held:
                raise RegisterStoreError(
                    f"Shift #{held['shift_id']} of clerk {held['clerk_id']} is still open on {self._terminal_id}; "
                    "close it first"
                )
            cur = conn.execute("INSERT INTO shifts (clerk_id, opened_at) VALUES (?, ?)", (clerk_id, iso(now)))
            shift_id = cur.lastrowid
        assert shift_id is not None
        return Shift(shift_id, clerk_id, now, None)

    def current_shift(self) -> Shift | None:
        rows = self._db.read("SELECT * FROM shifts WHERE closed_at IS NULL")
        return shift_from_row(rows[0]) if rows else None

    def get_shift(self, shift_id: int) -> Shift | None:
        rows = self._db.read("SELECT * FROM shifts WHERE shift_id = ?", (shift_id,))
        return shift_from_row(rows[0]) if rows else None
