"""Who is calling: terminals and wallet devices sign their requests (``protocol.signing``).

A signature is checked against the caller's derived secret in constant time, then the timestamp (a stale
one says whose clock, the register's or the phone's, is how far off, and the core's time), then the nonce
is recorded; a nonce seen before is refused. Nonces are pruned after
twice the configured tolerance plus a minute (at least ``NONCE_RETENTION_SECONDS``), longer than any
timestamp the core would still accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import bindparam, delete, select

from payment_core.core import Core
from payment_core.db import insert_new
from payment_core.keys import device_secret, terminal_secret
from payment_core.models import Device, Merchant, RequestNonce, Terminal
from payment_core.notify import remember_store_name
from payment_core.prepared import Prepared
from protocol import (
    NONCE_RETENTION_SECONDS,
    ErrorCode,
    ProtocolError,
    SignedHeaders,
    read_signed_headers,
    verify_signature,
)
from protocol.errors import SkewedClock

_PRUNE_EVERY = 500
_TERMINAL = Prepared(
    select(Terminal.id, Terminal.merchant_id, Terminal.status, Terminal.secret_salt, Merchant.name)
    .join(Merchant, Merchant.id == Terminal.merchant_id)
    .where(Terminal.id == bindparam("terminal"))
)


class TerminalRef(Protocol):
    """What a register's routes need of a terminal: its id and its store (a ``models.Terminal`` will do)."""

    @property
    def id(self) -> str: ...

    @property
    def merchant_id(self) -> int: ...


@dataclass(frozen=True)
class SigningTerminal:
    """The terminal whose signature checked out, as read in one plain statement (no ORM object to load)."""

    id: str
    merchant_id: int


def nonce_retention_seconds(tolerance: int) -> int:
    """How long a nonce is kept: longer than any timestamp still accepted, whatever tolerance is configured."""
    return max(NONCE_RETENTION_SECONDS, 2 * tolerance + 60)


class RequestAuthenticator:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._seen = 0
        self._retention_seconds = nonce_retention_seconds(core.config.signature_tolerance_seconds)

    def terminal(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> SigningTerminal:
        signed = read_signed_headers(headers)
        with self._core.read() as session:
            found = _TERMINAL.first(session, {"terminal": signed.key_id})
            if found is not None:  # the answer names the store: read with the terminal, not again
                remember_store_name(session, found[1], found[4])
        if found is None or found[2] != "active":
            raise ProtocolError(ErrorCode.TERMINAL_UNKNOWN)
        terminal_id, merchant_id, _status, salt, _store = found
        secret = terminal_secret(self._core.config.server_key, terminal_id, salt)
        self._verify(secret, signed, method, path, body, SkewedClock.REGISTER)
        return SigningTerminal(terminal_id, merchant_id)

    def device(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> Device:
        signed = read_signed_headers(headers)
        number = signed.key_id.removeprefix("dev_")
        device = None
        if signed.key_id.startswith("dev_") and number.isascii() and number.isdigit() and len(number) < 10:
            with self._core.read() as session:
                device = session.get(Device, int(number))
        if device is None or device.status != "active":
            raise ProtocolError(ErrorCode.SIGNATURE_INVALID)
        secret = device_secret(self._core.config.server_key, device.id, device.secret_salt)
        self._verify(secret, signed, method, path, body, SkewedClock.PHONE)
        return device

    def _verify(
        self, secret: bytes, signed: SignedHeaders, method: str, path: str, body: bytes, signer: SkewedClock
    ) -> None:
        """The signature, then the timestamp (a stale one is answered with how far the ``signer``'s clock is
        off and the core's time), then the nonce."""
        now = self._core.now()
        tolerance = self._core.config.signature_tolerance_seconds
        verify_signature(secret, signed, method, path, body, now, tolerance, signer)
        with self._core.statement() as session:
            if not insert_new(session, RequestNonce, key_id=signed.key_id, nonce=signed.nonce, seen_at=now):
                raise ProtocolError(ErrorCode.NONCE_REPLAYED)
        self._seen += 1
        if self._seen % _PRUNE_EVERY == 0:
            cutoff = now - timedelta(seconds=self._retention_seconds)
            with self._core.transaction() as session:
                session.execute(delete(RequestNonce).where(RequestNonce.seen_at < cutoff))
