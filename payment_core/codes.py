"""Redeeming a payment code at the core: verify it, throttle guessing, and use it up exactly once.

Guessing is throttled by its source, not by its target (issue 13). A failed code is counted against the
register that sent it and against that register's store (``Limits.terminal_code_failures`` and
``store_code_failures`` in ``code_failure_window_seconds``); a register or store over its limit is refused
every code, valid or not, while the owner of the device it was guessing at pays on at any other store.
Counting by the device instead (as before) let any register pause a stranger's wallet everywhere with
ten bad codes.

One bound stays per device, for guessers spread over many stores: after ``device_numeric_failures`` failed
codes naming a device in ``device_numeric_window_seconds``, that device's *numeric* codes (a 7-digit MAC)
are refused; its QR codes (a 19-digit MAC, out of any guesser's reach) still pay everywhere, and the
owner is told once, when it happens. One register alone needs ``device_numeric_failures /
terminal_code_failures`` windows of flooding (50 minutes by default) to get there, and gets nothing but
that.

An unknown device number and a wrong MAC answer alike (``code_forged``, the same message; an unknown
device's code is checked against a decoy secret), so answers never tell a guesser which device numbers
exist; the audit keeps the difference (``code.refused`` events with ``device_unknown`` or ``code_forged``).

Clock skew: the MAC is checked before the code's time (``protocol.payment_code.verify_code``), so a wrong
MAC is ``code_forged`` and a counted guess whatever second the code names, and only a genuine code is
answered ``code_not_yet_valid`` or ``code_expired`` with how far its phone's clock looks off
(``protocol.errors.ClockSkew``). A stored decline is answered again with the same measurement
(:func:`declined_code_error`): it is recomputed from the code's digits and the time of the decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import and_, bindparam, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from payment_core import audit, notify
from payment_core.audit import AuditOutcome
from payment_core.config import CoreConfig
from payment_core.db import insert_new, is_postgres
from payment_core.keys import device_secret
from payment_core.models import CodeFailure, Device, Terminal, UsedCode
from payment_core.prepared import Prepared
from protocol import CodeForm, ErrorCode, ParsedCode, ProtocolError, parse_code, verify_code
from protocol.payment_code import code_time_refusal, restore_minted_at

_SENDER = aliased(Terminal)
_SENDERS_STORE = select(_SENDER.merchant_id).where(_SENDER.id == bindparam("terminal")).scalar_subquery()
_STORE_TERMINALS = select(Terminal.id).where(Terminal.merchant_id == _SENDERS_STORE)
_RECENT = CodeFailure.at >= bindparam("since")
_AT_TERMINAL = and_(_RECENT, CodeFailure.terminal_id == bindparam("terminal"))
_AT_STORE = and_(_RECENT, CodeFailure.terminal_id.in_(_STORE_TERMINALS))  # the register's own included
_AT_DEVICE = and_(CodeFailure.device_id == bindparam("device"), CodeFailure.at >= bindparam("device_since"))
_FAILURES_SINCE = Prepared(  # built once: it runs for every code presented
    select(
        func.coalesce(func.sum(case((_AT_TERMINAL, 1), else_=0)), 0),
        func.coalesce(func.sum(case((_AT_STORE, 1), else_=0)), 0),
        func.coalesce(func.sum(case((_AT_DEVICE, 1), else_=0)), 0),
    ).where(or_(_AT_STORE, _AT_DEVICE))
)

# PostgreSQL only: NO KEY UPDATE on the register's row (see redeem_code), built once like the count above.
_LOCK_TERMINAL = Prepared(
    select(Terminal.id).where(Terminal.id == bindparam("terminal")).with_for_update(key_share=True)
)
_DEVICE_QUERY = select(
    Device.id, Device.account_id, Device.name, Device.status, Device.enrolled_at, Device.secret_salt
).where(Device.id == bindparam("device"))
_DEVICE = Prepared(_DEVICE_QUERY)
_DEVICE_SHARED = Prepared(
    _DEVICE_QUERY.with_for_update(key_share=True)
)  # PostgreSQL: FOR NO KEY UPDATE, as the register


class EnrolledDevice(Protocol):
    """What the limits and risk rules read of a device: a ``models.Device``, or the row a code's redemption
    read (:class:`CodeDevice`)."""

    @property
    def id(self) -> int: ...

    @property
    def enrolled_at(self) -> datetime: ...


@dataclass(frozen=True)
class CodeDevice:
    """What redeeming a code reads of the device it names (a plain row: no ORM object to load)."""

    id: int
    account_id: int
    name: str
    status: str
    enrolled_at: datetime
    secret_salt: bytes = field(repr=False)


# An unknown device's code is checked against a secret derived with this salt, so it takes the same steps
# (and the same answers) as a known device's forged code. No device has this salt: new_salt() is random.
_DECOY_SALT = b"possim/no-such-device/v1"

NUMERIC_PAUSED_MESSAGE = "Too many invalid codes named this wallet; show the QR code instead."


def _failures(session: Session, config: CoreConfig, terminal_id: str, device_id: int, now: datetime) -> tuple[int, ...]:
    """Bad codes lately from the register, from its store, and naming the device: one statement."""
    limits = config.limits
    params = {
        "since": now - timedelta(seconds=limits.code_failure_window_seconds),
        "device_since": now - timedelta(seconds=limits.device_numeric_window_seconds),
        "terminal": terminal_id,
        "device": device_id,
    }
    at_terminal, at_store, at_device = _FAILURES_SINCE.first(session, params) or (0, 0, 0)
    return int(at_terminal), int(at_store), int(at_device)


def _check_guessing(config: CoreConfig, parsed: ParsedCode, at_terminal: int, at_store: int, at_device: int) -> None:
    """Refuse a register or store that sent too many bad codes; and a numeric code of a much-guessed device.

    Design note, the odds (numeric form, 1 in 10^7 a guess): one register gets at most
    ``terminal_code_failures`` = 20 guesses per 10 minutes and its store 40, whichever devices they name:
    at most 5,760 a day per store, about 1 in 1,700 a day of hitting *some* code, and only at device numbers
    the guesser has seen on a code (they are drawn at random from 10^7 at enrollment, so a sprayed number
    names nobody almost always). Against one device, however many stores guess, at most
    ``device_numeric_failures`` = 100 numeric guesses a day count: about 1 in 100,000 a day, 1 in 270
    over a year; the QR form's 1 in 10^19 is out of reach. Every failure is audited. PostgreSQL counts
    one register's guesses one at a time (its row lock); guesses at different registers of a store may
    overshoot the store's and the device's limits by the few that are in flight at once.
    """
    limits = config.limits
    if at_terminal >= limits.terminal_code_failures or at_store >= limits.store_code_failures:
        raise ProtocolError(ErrorCode.CODE_GUESSING_THROTTLED)
    if parsed.form is CodeForm.NUMERIC and at_device >= limits.device_numeric_failures:
        raise ProtocolError(ErrorCode.CODE_GUESSING_THROTTLED, NUMERIC_PAUSED_MESSAGE)


def _record_failure(
    session: Session,
    config: CoreConfig,
    used_by: str,
    parsed: ParsedCode,
    device: CodeDevice | None,
    at_device: int,
    now: datetime,
) -> None:
    """Count a bad code against its source (and the device it named), audit it, and warn the owner once
    when the device's numeric codes stop being accepted."""
    session.add(CodeFailure(terminal_id=used_by, device_id=parsed.device_id, at=now))
    reason = ErrorCode.CODE_FORGED if device is not None else ErrorCode.DEVICE_UNKNOWN
    target = f"device:{parsed.device_id}"
    audit.record(session, at=now, actor=used_by, action="code.refused", target=target, result=reason, form=parsed.form)
    if device is None or at_device + 1 != config.limits.device_numeric_failures:
        return
    hours = config.limits.device_numeric_window_seconds // 3600
    audit.record(
        session, at=now, actor="core", action="code.numeric_paused", target=target, result=AuditOutcome.THROTTLED
    )
    message = (
        f"Many invalid payment codes named your phone {device.name}: someone may be guessing them. For up to "
        f"{hours} hours registers take only its QR code, not the number; nothing was paid."
    )
    notify.notify(session, device.account_id, notify.SECURITY, message, now)


def redeem_code(session: Session, config: CoreConfig, used_by: str, text: str, now: datetime) -> CodeDevice:
    """The device behind a valid, unexpired, unused code, marking the code used.

    Raises :class:`ProtocolError` with the reason otherwise. A failed MAC is recorded (in the caller's
    transaction) for throttling, whatever the code's time. A genuine code outside its window is refused with
    its phone's clock measured; one of a revoked phone is ``device_revoked``. The code is used up even if the
    payment later declines.
    """
    parsed = parse_code(text)
    # Lock the register's row, then the device's, so concurrent guesses are counted one at a time
    # (on PostgreSQL a count-then-insert would otherwise let a burst past the limit).
    # NO KEY UPDATE: it does not wait for the key-share locks that inserting rows referencing the
    # terminal takes, so two payments at one register cannot deadlock on it.
    # On SQLite the transaction is the database's one writer (BEGIN IMMEDIATE): there are no row locks to take.
    if is_postgres(session.get_bind()):
        _LOCK_TERMINAL.run(session, {"terminal": used_by})
        found = _DEVICE_SHARED.first(session, {"device": parsed.device_id})
    else:
        found = _DEVICE.first(session, {"device": parsed.device_id})
    device = None if found is None else CodeDevice(*found)
    at_terminal, at_store, at_device = _failures(session, config, used_by, parsed.device_id, now)
    _check_guessing(config, parsed, at_terminal, at_store, at_device)
    salt = device.secret_salt if device is not None else _DECOY_SALT
    secret = device_secret(config.server_key, parsed.device_id, salt)
    try:
        verified = verify_code(parsed, secret, now, config.code_ttl_seconds, config.clock_skew_seconds)
        if device is None:  # the decoy's MAC matched (1 in 10^7): still no such device
            raise ProtocolError(ErrorCode.CODE_FORGED)
    except ProtocolError as error:
        if error.code is ErrorCode.CODE_FORGED or device is None:  # a wrong MAC, at any time, is a guess
            _record_failure(session, config, used_by, parsed, device, at_device, now)
            raise ProtocolError(ErrorCode.CODE_FORGED) from None
        if device.status != "active":  # a genuine code of a revoked phone: that, not its clock, is the news
            raise ProtocolError(ErrorCode.DEVICE_REVOKED) from None
        raise  # its MAC was right: the phone's clock, measured (code_not_yet_valid, code_expired)
    assert device is not None
    if device.status != "active":
        raise ProtocolError(ErrorCode.DEVICE_REVOKED)
    if not insert_new(session, UsedCode, use_key=verified.use_key, device_id=device.id, used_at=now, used_by=used_by):
        raise ProtocolError(ErrorCode.CODE_ALREADY_USED)
    return device


_TIME_REFUSALS = frozenset({ErrorCode.CODE_NOT_YET_VALID, ErrorCode.CODE_EXPIRED})


def declined_code_error(
    config: CoreConfig, decline: ErrorCode, code_text: str | None, decided_at: datetime
) -> ProtocolError:
    """The error a stored decline is answered with, the first time and on every replay of the same request.

    For a code refused for its time (``code_not_yet_valid``, ``code_expired``) the phone's clock is measured
    again from the code's digits and the decision's time, which gives what :func:`redeem_code` measured then:
    such a decline is only ever stored for a code whose MAC was right. Any other decline, or no code text,
    is the code's plain error.
    """
    if code_text is None or decline not in _TIME_REFUSALS:
        return ProtocolError(decline)
    try:
        parsed = parse_code(code_text)
    except ProtocolError:
        return ProtocolError(decline)
    minted_at = restore_minted_at(parsed, decided_at)
    refusal = code_time_refusal(minted_at, decided_at, config.code_ttl_seconds, config.clock_skew_seconds)
    return refusal if refusal is not None and refusal.code is decline else ProtocolError(decline)
