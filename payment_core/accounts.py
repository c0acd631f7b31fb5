"""Accounts and devices: sign-up, device enrollment (returns the device secret once), revocation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from payment_core import audit
from payment_core.core import Core
from payment_core.keys import device_secret, new_salt
from payment_core.ledger import open_book, wallet_book_name
from payment_core.models import Account, Device
from protocol import ErrorCode, ProtocolError

MIN_PASSWORD_LENGTH = 10
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}$")
_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 low-memory defaults
# Verified against when the e-mail is unknown, so the answer takes as long as for a real account.
_DUMMY_HASH = _hasher.hash("possim-no-such-account")


@dataclass(frozen=True)
class Enrollment:
    device: Device
    secret: bytes = field(repr=False)  # shown to the wallet once, never stored


def _normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "That is not an e-mail address.", param="email")
    return email


def create_account(
    core: Core, email: str, password: str, display_name: str | None = None, actor: str = "signup"
) -> Account:
    email = _normalise_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ProtocolError(
            ErrorCode.VALIDATION_FAILED, f"Use at least {MIN_PASSWORD_LENGTH} characters.", param="password"
        )
    now = core.now()
    try:
        with core.transaction() as session:
            account = Account(
                email=email,
                display_name=display_name or email.split("@")[0],
                password_hash=_hasher.hash(password),
                status="active",
                created_at=now,
            )
            session.add(account)
            session.flush()
            open_book(session, "wallet", wallet_book_name(account.id), owner_id=account.id)
            audit.record(session, now, actor, "account.create", f"account:{account.id}", "succeeded")
            return account
    except IntegrityError:
        raise ProtocolError(ErrorCode.ACCOUNT_EXISTS, param="email") from None


def check_password(core: Core, email: str, password: str) -> Account:
    """The account for these credentials; the same error, after the same work, for any failure."""
    with core.transaction() as session:
        account = session.scalars(select(Account).where(Account.email == email.strip().lower())).one_or_none()
    stored = account.password_hash if account else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        account = None
    if account is None:
        raise ProtocolError(ErrorCode.CREDENTIALS_INVALID)
    return account


def enroll_device(core: Core, email: str, password: str, device_name: str) -> Enrollment:
    account = check_password(core, email, password)
    now = core.now()
    salt = new_salt()
    with core.transaction() as session:
        device = Device(
            account_id=account.id, name=device_name[:100], secret_salt=salt, status="active", enrolled_at=now
        )
        session.add(device)
        session.flush()
        audit.record(session, now, f"account:{account.id}", "device.enroll", f"device:{device.id}", "succeeded")
    return Enrollment(device, device_secret(core.config.server_key, device.id, salt))


def revoke_device(core: Core, device_id: int, actor: str) -> Device:
    now = core.now()
    with core.transaction() as session:
        device = session.get(Device, device_id)
        if device is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, param="device_id")
        device.status, device.revoked_at = "revoked", now
        audit.record(session, now, actor, "device.revoke", f"device:{device_id}", "succeeded")
        return device


def set_account_status(core: Core, account_id: int, status: str, actor: str) -> Account:
    now = core.now()
    with core.transaction() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, param="account_id")
        account.status = status
        audit.record(session, now, actor, f"account.{status}", f"account:{account_id}", "succeeded")
        return account
