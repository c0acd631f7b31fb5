"""Accounts and devices: sign-up, device enrollment (returns the device secret once), revocation.

Sign-up returns the account's TOTP secret once (derived, never stored) and mails a verification code.
Enrolling a device needs the password, a fresh TOTP code and a verified address; every failure is the
same ``CREDENTIALS_INVALID`` after the same argon2 work, and a success notifies the other devices and
the registered address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from payment_core import audit, notify, otp, outbox
from payment_core.core import Core
from payment_core.keys import device_secret, new_salt
from payment_core.ledger import open_book, wallet_book_name
from payment_core.models import Account, Device
from protocol import ErrorCode, ProtocolError

MIN_PASSWORD_LENGTH = 10
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}$")
_PHONE = re.compile(r"^\+?[0-9]{10,15}$")
_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 low-memory defaults
# Verified against when the e-mail is unknown, so the answer takes as long as for a real account.
_DUMMY_HASH = _hasher.hash("possim-no-such-account")


@dataclass(frozen=True)
class Enrollment:
    device: Device
    secret: bytes = field(repr=False)  # shown to the wallet once, never stored


@dataclass(frozen=True)
class SignUp:
    account: Account
    totp_secret: str = field(repr=False)  # shown to the user once, never stored
    totp_uri: str = field(repr=False)


def _normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "That is not an e-mail address.", param="email")
    return email


def normalise_phone(phone: str) -> str:
    """Digits with an optional leading +, 10-15 digits; spaces, dots and hyphens are dropped."""
    compact = re.sub(r"[\s.\-()]", "", phone)
    if not _PHONE.match(compact):
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "That is not a phone number.", param="phone")
    return compact


def sign_up(core: Core, email: str, phone: str, password: str, display_name: str | None = None) -> SignUp:
    """A new account with a phone, its TOTP secret (returned once) and a verification mail in the outbox."""
    account = create_account(core, email, password, display_name, phone=normalise_phone(phone))
    secret = otp.account_totp_secret(core, account)
    return SignUp(account, secret, otp.provisioning_uri(secret, account.email))


def create_account(
    core: Core,
    email: str,
    password: str,
    display_name: str | None = None,
    actor: str = "signup",
    phone: str | None = None,
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
                phone=phone,
                totp_salt=new_salt(),
                totp_failures=0,
            )
            session.add(account)
            session.flush()
            open_book(session, "wallet", wallet_book_name(account.id), owner_id=account.id)
            audit.record(session, now, actor, "account.create", f"account:{account.id}", "succeeded")
            otp.send_email_code(session, core, account, now)
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


def enroll_device(core: Core, email: str, password: str, code: str | None, device_name: str) -> Enrollment:
    """A new device for a verified account, after the password and a fresh TOTP code."""
    account = check_password(core, email, password)
    now = core.now()
    salt = new_salt()
    device = None
    with core.transaction() as session:
        locked = session.get(Account, account.id, with_for_update=True)
        actor = f"account:{account.id}"
        if locked is None or locked.email_verified_at is None:
            audit.record(session, now, actor, "device.enroll", actor, "refused_unverified")
        elif otp.accept_totp(session, core, locked, code, now):
            device = Device(
                account_id=account.id, name=device_name[:100], secret_salt=salt, status="active", enrolled_at=now
            )
            session.add(device)
            session.flush()
            audit.record(session, now, actor, "device.enroll", f"device:{device.id}", "succeeded")
            notify.new_device(session, device, now)
            body = (
                f"A new device signed in to your possim wallet: {device.name}, at {now:%Y-%m-%d %H:%M} UTC.\n"
                "If it was not you, sign out everywhere from the wallet and change your password.\n"
            )
            outbox.send(session, outbox.EMAIL, locked.email, "New device signed in", body, now)
        else:
            audit.record(session, now, actor, "device.enroll", actor, "refused_otp")
    if device is None:  # after the commit: a failed code still counts
        raise ProtocolError(ErrorCode.CREDENTIALS_INVALID)
    return Enrollment(device, device_secret(core.config.server_key, device.id, salt))


def revoke_device(core: Core, device_id: int, actor: str, account_id: int | None = None) -> Device:
    """Revoke a device (its codes fail from now); with ``account_id``, only one of that account's."""
    now = core.now()
    with core.transaction() as session:
        device = session.get(Device, device_id, with_for_update=True)
        if device is None or (account_id is not None and device.account_id != account_id):
            raise ProtocolError(ErrorCode.NOT_FOUND, param="device_id")
        if device.status != "revoked":
            device.status, device.revoked_at = "revoked", now
            audit.record(session, now, actor, "device.revoke", f"device:{device_id}", "succeeded")
            notify.device_revoked(session, device, now)
        return device


def revoke_all(core: Core, account_id: int, actor: str) -> int:
    """Sign out every device of the account; the number revoked."""
    now = core.now()
    with core.transaction() as session:
        devices = session.scalars(
            select(Device).where(Device.account_id == account_id, Device.status == "active").with_for_update()
        ).all()
        for device in devices:
            device.status, device.revoked_at = "revoked", now
            audit.record(session, now, actor, "device.revoke", f"device:{device.id}", "succeeded", everywhere=True)
        if devices:
            notify.notify(session, account_id, notify.DEVICE_REVOKED, f"Signed out everywhere ({len(devices)}).", now)
        return len(devices)


def set_account_status(core: Core, account_id: int, status: str, actor: str) -> Account:
    now = core.now()
    with core.transaction() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, param="account_id")
        account.status = status
        audit.record(session, now, actor, f"account.{status}", f"account:{account_id}", "succeeded")
        return account
