"""Redeeming a payment code at the core: verify it, throttle guessing, and use it up exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, func, or_, select
from sqlalchemy.orm import Session

from payment_core.config import CoreConfig
from payment_core.db import insert_new, is_postgres
from payment_core.keys import device_secret
from payment_core.models import CodeFailure, Device, Terminal, UsedCode
from protocol import ErrorCode, ProtocolError, parse_code, verify_code

_AT_DEVICE = CodeFailure.device_id == bindparam("device")
_AT_TERMINAL = CodeFailure.terminal_id == bindparam("terminal")
_FAILURES_SINCE = select(  # built once: it runs for every code presented
    func.coalesce(func.sum(case((_AT_DEVICE, 1), else_=0)), 0),
    func.coalesce(func.sum(case((_AT_TERMINAL, 1), else_=0)), 0),
).where(CodeFailure.at >= bindparam("since"), or_(_AT_DEVICE, _AT_TERMINAL))

# PostgreSQL only: NO KEY UPDATE on the register's row (see redeem_code), built once like the count above.
_LOCK_TERMINAL = select(Terminal.id).where(Terminal.id == bindparam("terminal")).with_for_update(key_share=True)


def _failures_since(session: Session, since: datetime, device_id: int, terminal_id: str) -> tuple[int, int]:
    """Bad codes since ``since`` for the device and for the terminal, counted in one statement."""
    params = {"since": since, "device": device_id, "terminal": terminal_id}
    device_count, terminal_count = session.connection().execute(_FAILURES_SINCE, params).one()
    return int(device_count), int(terminal_count)


def _check_guessing(session: Session, config: CoreConfig, terminal_id: str, device_id: int, now: datetime) -> None:
    """Refuse codes once a device or a terminal has had too many bad MACs in the window.

    Design note: with ``device_code_failures`` = 10 per 10 minutes, a guesser gets at most 1,440 tries a
    day at one device, each 1 in 10^7 for the numeric form: about 1 in 7,000 a day, and the failures
    are visible in the audit. The price is that a flood of forged codes pauses the real owner's codes
    for the window; the terminal limit stops one register from spraying many devices.
    """
    since = now - timedelta(seconds=config.limits.code_failure_window_seconds)
    at_device, at_terminal = _failures_since(session, since, device_id, terminal_id)
    if at_device >= config.limits.device_code_failures or at_terminal >= config.limits.terminal_code_failures:
        raise ProtocolError(ErrorCode.CODE_GUESSING_THROTTLED)


def redeem_code(session: Session, config: CoreConfig, used_by: str, text: str, now: datetime) -> Device:
    """The device behind a valid, unexpired, unused code, marking the code used.

    Raises :class:`ProtocolError` with the reason otherwise. A failed MAC is recorded (in the caller's
    transaction) for throttling. The code is used up even if the payment later declines.
    """
    parsed = parse_code(text)
    # Lock the register's row, then the device's, so concurrent guesses are counted one at a time
    # (on PostgreSQL a count-then-insert would otherwise let a burst past the limit).
    # NO KEY UPDATE: it does not wait for the key-share locks that inserting rows referencing the
    # terminal takes, so two payments at one register cannot deadlock on it.
    # On SQLite the transaction is the database's one writer (BEGIN IMMEDIATE): there are no row locks to take.
    if is_postgres(session.get_bind()):
        session.execute(_LOCK_TERMINAL, {"terminal": used_by})
        device = session.get(Device, parsed.device_id, with_for_update={"key_share": True})
    else:
        device = session.get(Device, parsed.device_id)
    _check_guessing(session, config, used_by, parsed.device_id, now)
    if device is None:  # a guess at a device number: counts against the terminal like a bad MAC
        session.add(CodeFailure(terminal_id=used_by, device_id=parsed.device_id, at=now))
        raise ProtocolError(ErrorCode.DEVICE_UNKNOWN)
    secret = device_secret(config.server_key, device.id, device.secret_salt)
    try:
        verified = verify_code(parsed, secret, now, config.code_ttl_seconds, config.clock_skew_seconds)
    except ProtocolError as error:
        if error.code is ErrorCode.CODE_FORGED:
            session.add(CodeFailure(terminal_id=used_by, device_id=device.id, at=now))
        raise
    if device.status != "active":
        raise ProtocolError(ErrorCode.DEVICE_REVOKED)
    if not insert_new(session, UsedCode, use_key=verified.use_key, device_id=device.id, used_at=now, used_by=used_by):
        raise ProtocolError(ErrorCode.CODE_ALREADY_USED)
    return device
