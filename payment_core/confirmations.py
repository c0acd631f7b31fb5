"""Payments that wait for the customer (WeChat's USERPAYING): the phone approves or denies them.

Above ``Limits.confirm_above_yen`` a payment uses the code at once (it stays single use) but moves no
money: it is ``awaiting_customer`` until a device of the paying account answers. The register polls the
order every 2-3 s and reverses it after 30 s. Approval, denial, expiry and the register's reverse all
take the payment row's lock, so whichever comes first decides and the others find it closed: a reverse
after an approval refunds in full, an approval after a reverse is refused. No money is lost or taken twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from payment_core import audit
from payment_core.audit import AuditOutcome
from payment_core.core import Core, retry_on_conflict
from payment_core.models import Device, Payment
from payment_core.payments import expire_if_unanswered, move_money, require_active, store_name
from protocol import ErrorCode, PaymentStatus, ProtocolError


def confirm_before(core: Core, payment: Payment) -> datetime:
    return payment.created_at + timedelta(seconds=core.config.limits.confirm_window_seconds)


def awaiting_for(core: Core, device: Device) -> list[tuple[Payment, str]]:
    """The account's payments still waiting for an answer, newest first, with their store names."""
    now = core.now()
    with core.transaction() as session:
        rows = session.scalars(
            select(Payment)
            .where(Payment.account_id == device.account_id, Payment.status == PaymentStatus.AWAITING_CUSTOMER)
            .order_by(Payment.created_at.desc())
            .limit(20)
        ).all()
        return [(row, store_name(session, row.merchant_id)) for row in rows if confirm_before(core, row) > now]


def answer(core: Core, device: Device, payment_id: str, approve: bool) -> Payment:
    """Approve (move the money) or deny a waiting payment; repeating the same answer returns the same payment.

    An answer to a closed payment is refused (``PAYMENT_NOT_PENDING``) and the refusal is audited.
    """
    decision = "approve" if approve else "deny"

    def attempt() -> tuple[Payment, bool]:
        now = core.now()
        with core.transaction() as session:
            payment = session.get(Payment, payment_id, with_for_update=True)
            if payment is None or payment.account_id != device.account_id:
                raise ProtocolError(ErrorCode.NOT_FOUND, param="payment_id")
            expire_if_unanswered(core, session, payment, now)
            if payment.status != PaymentStatus.AWAITING_CUSTOMER:
                if _same_answer(payment, approve):
                    return payment, False
                audit.record(
                    session,
                    at=now,
                    actor=f"device:{device.id}",
                    action="confirm",
                    target=payment.id,
                    result=AuditOutcome.REFUSED_NOT_PENDING,
                    decision=decision,
                    status=payment.status,
                )
                return payment, True
            if not approve:
                payment.status, payment.decline_code = PaymentStatus.DECLINED, ErrorCode.CUSTOMER_DECLINED.value
            else:
                try:
                    require_active(session, device.account_id)  # a freeze since the code was used still counts
                    move_money(session, payment, now)
                except ProtocolError as error:
                    payment.status, payment.decline_code = PaymentStatus.DECLINED, error.code.value
            payment.updated_at = now
            audit.record(
                session,
                at=now,
                actor=f"device:{device.id}",
                action="confirm",
                target=payment.id,
                result=payment.decline_code or payment.status,
                decision=decision,
                amount=payment.amount,
                account_id=payment.account_id,
            )
            return payment, False

    payment, refused = retry_on_conflict(attempt)
    if refused:
        raise ProtocolError(ErrorCode.PAYMENT_NOT_PENDING)
    return payment


def _same_answer(payment: Payment, approve: bool) -> bool:
    if approve:
        return payment.status == PaymentStatus.SUCCEEDED
    return payment.status == PaymentStatus.DECLINED and payment.decline_code == ErrorCode.CUSTOMER_DECLINED.value
