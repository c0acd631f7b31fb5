"""What a signed-in device reads about its account: the wallet, its history and its devices."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from payment_core.core import Core
from payment_core.ledger import balance_of, book_by_name, wallet_book_name
from payment_core.models import Account, Device, Merchant, Payment, Refund, Topup
from protocol import RefundStatus

HISTORY_MAX = 50


def wallet_view(core: Core, device: Device) -> dict[str, Any]:
    with core.transaction() as session:
        balance = balance_of(session, book_by_name(session, wallet_book_name(device.account_id)).id)
        account = session.get(Account, device.account_id)
    return {
        "account_id": device.account_id,
        "device_id": device.id,
        "balance": balance,
        "currency": "JPY",
        "email": account.email if account else None,
        "display_name": account.display_name if account else None,
    }


def history(core: Core, account_id: int) -> list[dict[str, Any]]:
    """Payments (with the store), refunds (with their payment) and top-ups (with their source), newest first."""
    with core.transaction() as session:
        stores = {merchant.id: merchant.name for merchant in session.scalars(select(Merchant)).all()}
        paid = session.scalars(
            select(Payment)
            .where(Payment.account_id == account_id)
            .order_by(Payment.created_at.desc())
            .limit(HISTORY_MAX)
        ).all()
        refunds = session.execute(
            select(Refund, Payment.merchant_id)
            .join(Payment, Refund.payment_id == Payment.id)
            .where(Payment.account_id == account_id)
            .order_by(Refund.created_at.desc())
            .limit(HISTORY_MAX)
        ).all()
        topped = session.scalars(
            select(Topup).where(Topup.account_id == account_id).order_by(Topup.created_at.desc()).limit(HISTORY_MAX)
        ).all()
    rows: list[tuple[datetime, int, dict[str, Any]]] = []
    for payment in paid:
        extra = {"order_id": payment.order_id, "amount_refunded": payment.amount_refunded}
        view = _row("payment", payment.id, payment.amount, payment.status, stores.get(payment.merchant_id), None)
        rows.append((payment.created_at, 1, view | {"created": payment.created_at.isoformat()} | extra))
    for refund, merchant_id in refunds:
        view = _row("refund", refund.id, refund.amount, RefundStatus.SUCCEEDED, stores.get(merchant_id), None)
        rows.append(
            (refund.created_at, 2, view | {"created": refund.created_at.isoformat(), "payment_id": refund.payment_id})
        )
    for topup in topped:
        view = _row("topup", topup.id, topup.amount, topup.status, None, topup.method)
        rows.append((topup.created_at, 0, view | {"created": topup.created_at.isoformat()}))
    rows.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [view for _at, _rank, view in rows[:HISTORY_MAX]]


def _row(kind: str, row_id: str, amount: int, status: str, store: str | None, source: str | None) -> dict[str, Any]:
    return {"kind": kind, "id": row_id, "amount": amount, "status": status, "store": store, "source": source}


def device_view(device: Device, this_device: int | None = None) -> dict[str, Any]:
    return {
        "id": device.id,
        "object": "device",
        "name": device.name,
        "status": device.status,
        "enrolled_at": device.enrolled_at.isoformat(),
        "revoked_at": device.revoked_at.isoformat() if device.revoked_at else None,
        "this_device": device.id == this_device,
    }


def devices(core: Core, device: Device) -> list[dict[str, Any]]:
    with core.transaction() as session:
        rows = session.scalars(
            select(Device).where(Device.account_id == device.account_id).order_by(Device.enrolled_at, Device.id)
        ).all()
    return [device_view(row, device.id) for row in rows]
