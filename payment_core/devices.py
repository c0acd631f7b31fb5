"""Devices: signing in on a new phone (enrollment), signing in again on an enrolled one, revocation.

Signing in on a phone the account has never used needs the password **and** the second factor (a TOTP
code, or a recovery code), a verified address and a free device slot (``Limits.max_devices``); it then
notifies every other device and the registered address (7pay let a new phone in silently). An enrolled
phone signs in again with its device key and the password. Every sign-in passes the throttles
(``throttle.admit`` before, ``throttle.settle`` after) and every failure is the same
``CREDENTIALS_INVALID``. A sign-in with the right password but a wrong second factor also warns the
owner: the password is known to someone else. Both kinds of sign-in are judged by the risk rule
``new_place`` (a range or a country new to the account) once the credentials are right: a refusal is
``RISK_DECLINED`` with words that say how to go on, and the attempt's audit events name the decision.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payment_core import accounts, audit, incident, notify, otp, outbox, sessions, throttle
from payment_core.audit import AuditOutcome
from payment_core.core import Core
from payment_core.db import insert_new
from payment_core.keys import device_secret, new_salt
from payment_core.models import Account, Device, OutboxMessage
from payment_core.risk import new_place
from payment_core.sources import current_source
from protocol import ErrorCode, ProtocolError
from protocol.payment_code import MAX_DEVICE_NUMBER

_WARN_AGAIN_AFTER = timedelta(hours=1)
_NUMBER_DRAWS = 64
LEAKED_PASSWORD_SUBJECT = "Your password was used without your authenticator"  # noqa: S105 (a subject line)


@dataclass(frozen=True)
class Enrollment:
    device: Device
    secret: bytes = field(repr=False)  # shown to the wallet once, never stored
    tokens: sessions.Tokens


def _active_devices(session: Session, account_id: int) -> int:
    query = select(func.count()).where(Device.account_id == account_id, Device.status == "active")
    return int(session.execute(query).scalar_one())


def _warn_password_known(session: Session, account: Account, now: datetime) -> None:
    """Tell the owner (at most once an hour) that their password worked for someone without the factor."""
    recent = session.scalars(
        select(OutboxMessage.id).where(
            OutboxMessage.to == account.email,
            OutboxMessage.subject == LEAKED_PASSWORD_SUBJECT,
            OutboxMessage.created_at >= now - _WARN_AGAIN_AFTER,
        )
    ).first()
    if recent is not None:
        return
    body = (
        f"At {now:%Y-%m-%d %H:%M} UTC someone signed in to your possim wallet with your password but without\n"
        "the code from your authenticator, so they were refused. Your password is known to someone else:\n"
        "change it now (and anywhere else you used it).\n"
    )
    outbox.send(session, outbox.EMAIL, account.email, LEAKED_PASSWORD_SUBJECT, body, now)
    notify.notify(
        session,
        account.id,
        notify.SECURITY,
        "Someone had your password but not your authenticator code; change your password.",
        now,
    )


def enroll_device(core: Core, email: str, password: str, second_factor: str | None, device_name: str) -> Enrollment:
    """Sign in on a new device (see the module's docstring)."""
    source = current_source.get()
    throttle.admit(core, source, email, incident.ENROLLMENT)  # an operator's kill switch first, then the throttle
    checked = accounts.check_password(core, email, password)
    account = checked.account
    now = core.now()
    enrolled: Enrollment | None = None
    full = wrong_factor = False
    place: new_place.PlaceDecision | None = None
    with core.transaction() as session:
        locked = session.get(Account, account.id, with_for_update=True) if account is not None else None
        actor = f"account:{locked.id}" if locked is not None else "anonymous"
        if locked is None:
            pass
        elif locked.email_verified_at is None:
            audit.record(
                session,
                at=now,
                actor=actor,
                action="device.enroll",
                target=actor,
                result=AuditOutcome.REFUSED_UNVERIFIED,
            )
        elif core.config.defences.second_factor_for_new_phones and not otp.accept_second_factor(
            session, core, locked, second_factor, now
        ):
            audit.record(
                session,
                at=now,
                actor=actor,
                action="device.enroll",
                target=actor,
                result=AuditOutcome.REFUSED_SECOND_FACTOR,
            )
            _warn_password_known(session, locked, now)
            wrong_factor = True
        elif (place := new_place.judge(session, core.config.risk, new_place.ENROLLMENT, locked, source, now)).refused:
            audit.record(
                session,
                at=now,
                actor=actor,
                action="device.enroll",
                target=actor,
                result=ErrorCode.RISK_DECLINED.value,
                **place.audit_fields(),
            )
        elif _active_devices(session, locked.id) >= core.config.limits.max_devices:
            audit.record(
                session,
                at=now,
                actor=actor,
                action="device.enroll",
                target=actor,
                result=AuditOutcome.REFUSED_DEVICE_LIMIT,
                **(place.audit_fields() if place is not None else {}),
            )
            full = True
        else:
            risk = place.audit_fields() if place is not None else {}
            enrolled = _add_device(session, core, locked, device_name, now, risk)
    refused = place is not None and place.refused
    ok = enrolled is not None or full
    risk = place.audit_fields() if place is not None else {}
    right = wrong_factor or refused  # a refused new place still had the right password: a leak's sign
    throttle.settle(core, source, email, checked.account_id, ok, "signin.new_device", password_was_right=right, **risk)
    if full:
        raise ProtocolError(ErrorCode.DEVICE_LIMIT)
    if place is not None and place.refused:
        raise ProtocolError(ErrorCode.RISK_DECLINED, place.message())
    if enrolled is None:  # after the commit: a failed code still counts
        raise ProtocolError(ErrorCode.CREDENTIALS_INVALID)
    return enrolled


def _device_numbers() -> Iterator[int]:
    """Device numbers to try, drawn at random from the whole of the code's 7-digit field (1 to 9,999,999).

    A code shows its device number, so numbers must not be guessable: handed out in order, every number
    below the newest named a phone, and a register could aim guesses (or, before issue 13, a pause) at all
    of them. Drawn at random, a number someone did not see on a code names a device with the odds of
    (devices enrolled) / 10^7. The number is the ``devices.id`` key, taken with INSERT ... ON CONFLICT DO
    NOTHING, so a number in use, or taken by a concurrent enrollment, is simply drawn again; with the field
    even half full, 64 draws all failing is 1 in 2^64.
    """
    for _ in range(_NUMBER_DRAWS):
        yield _draw_device_number()
    raise RuntimeError("no free device number after many draws")


def _draw_device_number() -> int:
    return secrets.randbelow(MAX_DEVICE_NUMBER) + 1


def _add_device(
    session: Session, core: Core, account: Account, name: str, now: datetime, risk: dict[str, Any]
) -> Enrollment:
    salt = new_salt()
    row = {"account_id": account.id, "name": name[:100], "secret_salt": salt, "status": "active", "enrolled_at": now}
    number = next(n for n in _device_numbers() if insert_new(session, Device, id=n, **row))
    device = session.get_one(Device, number)
    audit.record(
        session,
        at=now,
        actor=f"account:{account.id}",
        action="device.enroll",
        target=f"device:{device.id}",
        result=AuditOutcome.SUCCEEDED,
        **risk,  # the new_place rule's verdict and subject id, when it fired
    )
    notify.new_device(session, device, now)
    body = (
        f"A new device signed in to your possim wallet: {device.name}, at {now:%Y-%m-%d %H:%M} UTC.\n"
        "If it was not you, sign out everywhere from the wallet and change your password.\n"
    )
    outbox.send(session, outbox.EMAIL, account.email, "New device signed in", body, now)
    tokens = sessions.start(session, core, account.id, device.id, now)
    return Enrollment(device, device_secret(core.config.server_key, device.id, salt), tokens)


def sign_in(core: Core, device: Device, password: str) -> sessions.Tokens:
    """A new session on an enrolled device (its request is signed with its key): the password suffices."""
    source = current_source.get()
    with core.transaction() as session:
        owner = session.get(Account, device.account_id)
    email = owner.email if owner is not None else ""
    throttle.admit(core, source, email)
    account = accounts.check_password(core, email, password).account
    tokens = None
    place: new_place.PlaceDecision | None = None
    if account is not None and account.id == device.account_id:
        with core.transaction() as session:
            now = core.now()
            owner = session.get_one(Account, account.id)
            place = new_place.judge(session, core.config.risk, new_place.SIGNIN, owner, source, now)
            if not place.refused:
                tokens = sessions.start(session, core, account.id, device.id, now)
    refused = place is not None and place.refused
    risk = place.audit_fields() if place is not None else {}
    ok = tokens is not None
    throttle.settle(
        core, source, email, device.account_id, ok, "signin.known_device", password_was_right=refused, **risk
    )
    if place is not None and place.refused:
        raise ProtocolError(ErrorCode.RISK_DECLINED, place.message())
    if tokens is None:
        raise ProtocolError(ErrorCode.CREDENTIALS_INVALID)
    return tokens


def revoke_device(core: Core, device_id: int, actor: str, account_id: int | None = None) -> Device:
    """Revoke a device (its codes fail from now); with ``account_id``, only one of that account's."""
    now = core.now()
    with core.transaction() as session:
        device = session.get(Device, device_id, with_for_update=True)
        if device is None or (account_id is not None and device.account_id != account_id):
            raise ProtocolError(ErrorCode.NOT_FOUND, param="device_id")
        if device.status != "revoked":
            device.status, device.revoked_at = "revoked", now
            audit.record(
                session,
                at=now,
                actor=actor,
                action="device.revoke",
                target=f"device:{device_id}",
                result=AuditOutcome.SUCCEEDED,
            )
            notify.device_revoked(session, device, now)
        return device


def revoke_all_devices(session: Session, account_id: int, actor: str, now: datetime) -> int:
    """Revoke every device of the account in the caller's transaction; how many."""
    return sessions.revoke_devices(session, account_id, actor, now)


def sign_out_everywhere(core: Core, account_id: int, actor: str) -> int:
    """Revoke every device and end every session of the account; the number of devices revoked."""
    now = core.now()
    with core.transaction() as session:
        revoked = revoke_all_devices(session, account_id, actor, now)
        sessions.revoke_all(session, account_id, now, "signed_out_everywhere")
        notify.notify(session, account_id, notify.DEVICE_REVOKED, f"Signed out everywhere ({revoked}).", now)
        return revoked
