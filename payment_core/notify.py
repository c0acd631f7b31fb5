"""Wallet notifications, written in the same transaction as the event they tell of.

A notification with no ``device_id`` is for every device of the account; one with a ``device_id`` is
for that device only (a "new device signed in" notice goes to each of the account's other devices).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, or_, select
from sqlalchemy.orm import Session

from payment_core.core import Core
from payment_core.models import Device, Merchant, Notification, Payment, Topup
from payment_core.prepared import Prepared
from protocol import format_yen

NEW_DEVICE = "new_device"
PAYMENT = "payment"
REFUND = "refund"
TOPUP = "topup"
DEVICE_REVOKED = "device_revoked"
PASSWORD_CHANGED = "password_changed"  # noqa: S105 (a notification kind)
SECURITY = "security"  # a sign-in ended, a recovery code used, a sign-in with the right password but no second factor
MAX_LIST = 50
_NEW_NOTIFICATION = Prepared(
    insert(Notification).values(
        {name: bindparam(name) for name in ("account_id", "device_id", "kind", "message", "created_at")}
    )
)


def notify(
    session: Session, account_id: int, kind: str, message: str, at: datetime, device_id: int | None = None
) -> None:
    row = {"account_id": account_id, "device_id": device_id, "kind": kind, "message": message[:300], "created_at": at}
    _NEW_NOTIFICATION.run(session, row)  # at once, in the caller's transaction: no ORM object


_STORE_NAMES = "possim_store_names"  # Session.info: the store names this session has read
_STORE_NAME = Prepared(select(Merchant.name).where(Merchant.id == bindparam("merchant")))


def store_name(session: Session, merchant_id: int) -> str | None:
    """The store's name, read once a session (a payment's notice and its answer both need it; the register's
    signature check has usually read it already: :func:`remember_store_name`)."""
    names: dict[int, str | None] = session.info.setdefault(_STORE_NAMES, {})
    if merchant_id not in names:
        names[merchant_id] = _STORE_NAME.scalar(session, {"merchant": merchant_id})
    return names[merchant_id]


def remember_store_name(session: Session, merchant_id: int, name: str) -> None:
    session.info.setdefault(_STORE_NAMES, {})[merchant_id] = name


def _store(session: Session, merchant_id: int) -> str:
    return store_name(session, merchant_id) or "a store"


def payment_succeeded(session: Session, payment: Payment, at: datetime) -> None:
    if payment.account_id is not None:
        text = f"You paid {format_yen(payment.amount)} at {_store(session, payment.merchant_id)}."
        notify(session, payment.account_id, PAYMENT, text, at)


def refunded(session: Session, payment: Payment, amount: int, at: datetime) -> None:
    if payment.account_id is not None:
        text = f"{_store(session, payment.merchant_id)} refunded {format_yen(amount)} to your wallet."
        notify(session, payment.account_id, REFUND, text, at)


def topped_up(session: Session, topup: Topup) -> None:
    if topup.account_id is not None:
        text = f"{format_yen(topup.amount)} was added to your wallet ({topup.method})."
        notify(session, topup.account_id, TOPUP, text, topup.created_at)


def new_device(session: Session, device: Device, at: datetime) -> None:
    """Tell each other active device of the account that a new one signed in."""
    others = session.scalars(
        select(Device.id).where(
            Device.account_id == device.account_id, Device.status == "active", Device.id != device.id
        )
    ).all()
    text = f"A new device signed in: {device.name}. If it was not you, revoke it and change your password."
    for other in others:
        notify(session, device.account_id, NEW_DEVICE, text, at, device_id=other)


def device_revoked(session: Session, device: Device, at: datetime) -> None:
    notify(session, device.account_id, DEVICE_REVOKED, f"The device {device.name} was signed out.", at)


def for_device(core: Core, device: Device) -> list[dict[str, Any]]:
    """What this device shows: the account's notices and its own, newest first."""
    with core.transaction() as session:
        rows = session.scalars(
            select(Notification)
            .where(
                Notification.account_id == device.account_id,
                or_(Notification.device_id.is_(None), Notification.device_id == device.id),
            )
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(MAX_LIST)
        ).all()
    return [
        {"id": row.id, "kind": row.kind, "message": row.message, "created": row.created_at.isoformat()} for row in rows
    ]
