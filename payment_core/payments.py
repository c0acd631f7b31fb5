"""Payments: create (idempotent on the terminal's order id), look up, reverse, refund.

Using the code and moving the money happen in one transaction: a payment row, the used code, the
journal and the audit event commit together or not at all. A declined payment is stored too, so the
same request again gets the same answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, inspect, select
from sqlalchemy.orm import Session

from payment_core import audit, notify, risk
from payment_core.audit import AuditOutcome
from payment_core.auth import TerminalRef
from payment_core.codes import redeem_code
from payment_core.core import Core, new_id, retry_on_conflict
from payment_core.ledger import (
    InsufficientBalance,
    balance_of,
    book_ids,
    credited_book,
    post,
    till_book_name,
    wallet_book_name,
)
from payment_core.models import Account, Payment, Refund
from payment_core.prepared import Prepared
from payment_core.risk.actions import freeze_for_risk
from protocol import ErrorCode, PaymentStatus, ProtocolError, RefundStatus, require_amount

REVERSED_BEFORE_ARRIVAL = "reversed-before-arrival"
REVERSAL_KEY = "#reversal"  # outside the refund_id pattern: no terminal refund can take it


@dataclass(frozen=True)
class PaymentRequest:
    order_id: str
    amount: int
    code: str
    description: str | None = None
    categories: tuple[str, ...] = ()  # the catalog categories of the goods, for the risk rules

    def fingerprint(self) -> str:
        fields: dict[str, object] = {
            "order_id": self.order_id,
            "amount": self.amount,
            "code": self.code,
            "description": self.description,
        }
        if self.categories:  # only when sent, so payments stored before categories existed replay as before
            fields["categories"] = sorted(self.categories)
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def payment_view(payment: Payment, store: str) -> dict[str, Any]:
    return {
        "id": payment.id,
        "object": "payment",
        "order_id": payment.order_id,
        "amount": payment.amount,
        "currency": "JPY",
        "status": payment.status,
        "decline_code": payment.decline_code,
        "amount_refunded": payment.amount_refunded,
        "balance_after": payment.balance_after,
        "store": store,
        "created": payment.created_at.isoformat(),
    }


def awaiting_view(payment: Payment, store: str, confirm_before: datetime) -> dict[str, Any]:
    """What the phone shows when the core asks it to approve a payment."""
    return payment_view(payment, store) | {"confirm_before": confirm_before.isoformat()}


def store_name(session: Session, merchant_id: int) -> str:
    return notify.store_name(session, merchant_id) or ""


def _replay(existing: Payment, request: PaymentRequest) -> Payment:
    if existing.request_hash == request.fingerprint() or existing.request_hash == REVERSED_BEFORE_ARRIVAL:
        return existing
    raise ProtocolError(ErrorCode.IDEMPOTENCY_CONFLICT, param="order_id")


_THE_ORDER = (Payment.terminal_id == bindparam("terminal"), Payment.order_id == bindparam("order"))
_ORDER = select(Payment).where(*_THE_ORDER)
_ORDER_LOCKED = _ORDER.with_for_update()
_ORDER_SEEN = Prepared(select(Payment.id).where(*_THE_ORDER))
_ACCOUNT_STATUS = Prepared(select(Account.status, Account.created_at).where(Account.id == bindparam("account")))
_PAYMENT_COLUMNS = tuple((attribute.key, attribute.columns[0].key) for attribute in inspect(Payment).column_attrs)
_NEW_PAYMENT = Prepared(insert(Payment).values({column: bindparam(column) for _, column in _PAYMENT_COLUMNS}))


def _find_order(session: Session, terminal_id: str, order_id: str, lock: bool = False) -> Payment | None:
    query = _ORDER_LOCKED if lock else _ORDER
    return session.scalars(query, {"terminal": terminal_id, "order": order_id}).one_or_none()


def _order_seen(session: Session, terminal_id: str, order_id: str) -> bool:
    """Has the register sent this order before? One plain statement: a new charge, nearly every one, loads
    no stored payment (a look-up or a reversal, which nearly always finds one, loads it at once)."""
    return _ORDER_SEEN.first(session, {"terminal": terminal_id, "order": order_id}) is not None


def _insert_decided(session: Session, payment: Payment) -> None:
    """Write the decided payment in one INSERT, without the ORM's unit of work (it stays a plain object,
    which is all an answer reads)."""
    row = {column: getattr(payment, attribute) for attribute, column in _PAYMENT_COLUMNS}
    _NEW_PAYMENT.run(session, row)


def _charge(
    session: Session, core: Core, terminal: TerminalRef, payment: Payment, request: PaymentRequest, now: datetime
) -> risk.Assessment | None:
    """Use the code, ask the risk rules, then move the money, or (above the threshold, or when a rule asks
    for it) wait for the customer's approval. The risk assessment, when the rules ran."""
    assessment: risk.Assessment | None = None
    try:
        device = redeem_code(session, core.config, terminal.id, request.code, now)
        payment.account_id, payment.device_id = device.account_id, device.id
        account_created_at = require_active(session, device.account_id)
        facts = risk.PaymentFacts(
            payment.id,
            device.account_id,
            device.id,
            device.enrolled_at,
            account_created_at,
            terminal.id,
            terminal.merchant_id,
            payment.amount,
            request.categories,
            now,
        )
        assessment = risk.assess_payment(session, core.config.risk, facts)
        risk.keep(session, "payment", payment.id, device.account_id, assessment, now)
        _act_on(session, core, assessment, device.account_id, now)
        step_up = assessment.verdict == risk.Verdict.STEP_UP
        if step_up or payment.amount > core.config.limits.confirm_above_yen:
            (wallet,) = book_ids(session, wallet_book_name(device.account_id))
            if balance_of(session, wallet) < payment.amount:
                raise ProtocolError(ErrorCode.INSUFFICIENT_FUNDS)
            payment.status = PaymentStatus.AWAITING_CUSTOMER  # nothing moves until the phone approves
        else:
            move_money(session, payment, now)
    except ProtocolError as error:
        payment.status, payment.decline_code = PaymentStatus.DECLINED, error.code.value
    fired = {"risk": assessment.verdict.word, "rules": assessment.rules} if assessment and assessment.findings else {}
    audit.record(
        session,
        at=now,
        actor=terminal.id,
        action="payment",
        target=payment.id,
        result=payment.decline_code or payment.status,
        order_id=payment.order_id,
        amount=payment.amount,
        account_id=payment.account_id,
        device_id=payment.device_id,
        **fired,
    )
    return assessment


def _act_on(session: Session, core: Core, assessment: risk.Assessment, account_id: int, now: datetime) -> None:
    """Decline (and freeze the account) when the rules say so; a step-up is the caller's to do."""
    if assessment.verdict == risk.Verdict.FREEZE:
        freeze_for_risk(session, account_id, assessment.rules, now)
    if assessment.verdict >= risk.Verdict.DECLINE:
        raise ProtocolError(ErrorCode.RISK_DECLINED)


def require_active(session: Session, account_id: int | None) -> datetime:
    """Refuse a frozen (or missing) account; the account's creation time when it is active."""
    row = None if account_id is None else _ACCOUNT_STATUS.first(session, {"account": account_id})
    if row is None or row[0] != "active":
        raise ProtocolError(ErrorCode.ACCOUNT_FROZEN)
    created_at: datetime = row[1]
    return created_at


def expire_if_unanswered(core: Core, session: Session, payment: Payment, now: datetime) -> bool:
    """Close a payment the customer never answered in time (declined, ``confirmation_expired``).

    Called wherever a waiting payment is read under its row lock (lookup, reverse, repeat, answer), so
    every payment reaches a final state even when nobody polls it again. True when it expired now.
    """
    window = timedelta(seconds=core.config.limits.confirm_window_seconds)
    if payment.status != PaymentStatus.AWAITING_CUSTOMER or now < payment.created_at + window:
        return False
    payment.status, payment.decline_code = PaymentStatus.DECLINED, ErrorCode.CONFIRMATION_EXPIRED.value
    payment.updated_at = now
    audit.record(
        session,
        at=now,
        actor="core",
        action="confirm",
        target=payment.id,
        result=AuditOutcome.EXPIRED_UNANSWERED,
        order_id=payment.order_id,
    )
    return True


def move_money(session: Session, payment: Payment, now: datetime) -> None:
    """Post the wallet-to-store journal and mark the payment succeeded (``INSUFFICIENT_FUNDS`` if it cannot)."""
    if payment.account_id is None:
        raise ProtocolError(ErrorCode.INTERNAL)
    wallet, till = book_ids(session, wallet_book_name(payment.account_id), till_book_name(payment.terminal_id))
    try:
        balances = post(session, "payment", payment.id, now, [(wallet, -payment.amount), (till, payment.amount)])
    except InsufficientBalance:
        raise ProtocolError(ErrorCode.INSUFFICIENT_FUNDS) from None
    payment.status = PaymentStatus.SUCCEEDED
    payment.balance_after = balances[wallet]
    payment.updated_at = now
    notify.payment_succeeded(session, payment, now)


def create_payment(core: Core, terminal: TerminalRef, request: PaymentRequest) -> Payment:
    """Charge once per (terminal, order id); a repeat returns the stored payment, a changed one is a 409."""
    require_amount(request.amount)

    def attempt() -> Payment:
        now = core.now()
        with core.transaction() as session:
            # A twin that gets in after this look makes this payment's INSERT fail, and the retry finds it.
            seen = _order_seen(session, terminal.id, request.order_id)
            existing = _find_order(session, terminal.id, request.order_id, lock=True) if seen else None
            if existing is not None:
                expire_if_unanswered(core, session, existing, now)
                return _replay(existing, request)
            payment = Payment(
                id=new_id("pay"),
                terminal_id=terminal.id,
                merchant_id=terminal.merchant_id,
                order_id=request.order_id,
                request_hash=request.fingerprint(),
                amount=request.amount,
                description=request.description,
                status=PaymentStatus.PROCESSING,
                amount_refunded=0,
                created_at=now,
                updated_at=now,
            )
            _charge(session, core, terminal, payment, request, now)
            # Written once, decided: a concurrent twin of this order that got in first makes this INSERT fail,
            # which undoes all of the above (the savepoint), and the next attempt answers with the twin's result.
            _insert_decided(session, payment)
            return payment

    return retry_on_conflict(attempt)


def get_order(core: Core, terminal: TerminalRef, order_id: str) -> Payment:
    def attempt() -> Payment | None:
        now = core.now()
        with core.transaction() as session:
            payment = _find_order(session, terminal.id, order_id)
            if payment is not None and payment.status == PaymentStatus.AWAITING_CUSTOMER:
                session.refresh(payment, with_for_update=True)
                expire_if_unanswered(core, session, payment, now)
            return payment

    payment = retry_on_conflict(attempt)
    if payment is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, param="order_id")
    return payment


def _refund_into_wallet(
    session: Session, payment: Payment, amount: int, reason: str, key: str, actor: str, now: datetime
) -> Refund:
    if payment.account_id is None:
        raise ProtocolError(ErrorCode.PAYMENT_NOT_REFUNDABLE)
    refund = Refund(
        id=new_id("re"), payment_id=payment.id, refund_key=key, amount=amount, reason=reason, created_at=now
    )
    session.add(refund)
    session.flush()
    (wallet,) = book_ids(session, wallet_book_name(payment.account_id))
    paid_into = credited_book(session, "payment", payment.id)
    try:
        balances = post(session, "refund", refund.id, now, [(paid_into, -amount), (wallet, amount)])
    except InsufficientBalance:
        raise ProtocolError(ErrorCode.PAYMENT_NOT_REFUNDABLE, "The store's balance cannot cover it.") from None
    payment.amount_refunded += amount
    payment.balance_after = balances[wallet]
    payment.updated_at = now
    notify.refunded(session, payment, amount, now)
    audit.record(
        session,
        at=now,
        actor=actor,
        action=reason,
        target=refund.id,
        result=AuditOutcome.SUCCEEDED,
        payment_id=payment.id,
        amount=amount,
        account_id=payment.account_id,
    )
    return refund


def reverse_order(core: Core, terminal: TerminalRef, order_id: str) -> Payment:
    """Close an order whatever happened to it: refund a success in full, close one never seen."""

    def attempt() -> Payment:
        now = core.now()
        with core.transaction() as session:
            payment = _find_order(session, terminal.id, order_id, lock=True)
            if payment is None:
                payment = Payment(
                    id=new_id("pay"),
                    terminal_id=terminal.id,
                    merchant_id=terminal.merchant_id,
                    order_id=order_id,
                    request_hash=REVERSED_BEFORE_ARRIVAL,
                    amount=0,
                    status=PaymentStatus.REVERSED,
                    amount_refunded=0,
                    created_at=now,
                    updated_at=now,
                )
                session.add(payment)
                session.flush()
                audit.record(
                    session,
                    at=now,
                    actor=terminal.id,
                    action="reverse",
                    target=payment.id,
                    result=AuditOutcome.CLOSED_UNSEEN,
                    order_id=order_id,
                )
                return payment
            expire_if_unanswered(core, session, payment, now)
            if payment.status == PaymentStatus.SUCCEEDED:
                remaining = payment.amount - payment.amount_refunded
                if remaining > 0:
                    _refund_into_wallet(session, payment, remaining, "reversal", REVERSAL_KEY, terminal.id, now)
                payment.status = PaymentStatus.REVERSED
            elif payment.status == PaymentStatus.AWAITING_CUSTOMER:  # nothing moved; a late approval finds it closed
                payment.status, payment.updated_at = PaymentStatus.REVERSED, now
                audit.record(
                    session,
                    at=now,
                    actor=terminal.id,
                    action="reverse",
                    target=payment.id,
                    result=AuditOutcome.CLOSED_AWAITING,
                    order_id=order_id,
                )
            return payment

    return retry_on_conflict(attempt)


def refund_payment(core: Core, terminal: TerminalRef, payment_id: str, refund_key: str, amount: int | None) -> Refund:
    """Refund part or all of what is left; the same ``refund_key`` again returns the same refund."""
    return retry_on_conflict(lambda: _refund_once(core, terminal, payment_id, refund_key, amount))


def _refund_once(core: Core, terminal: TerminalRef, payment_id: str, refund_key: str, amount: int | None) -> Refund:
    now = core.now()
    with core.transaction() as session:
        payment = session.get(Payment, payment_id, with_for_update=True)
        if payment is None or payment.merchant_id != terminal.merchant_id:
            raise ProtocolError(ErrorCode.NOT_FOUND, param="payment_id")
        existing = session.scalars(
            select(Refund).where(Refund.payment_id == payment_id, Refund.refund_key == refund_key)
        ).one_or_none()
        if existing is not None:
            if amount is not None and amount != existing.amount:
                raise ProtocolError(ErrorCode.IDEMPOTENCY_CONFLICT, param="refund_id")
            return existing
        if payment.status != PaymentStatus.SUCCEEDED:
            raise ProtocolError(ErrorCode.PAYMENT_NOT_REFUNDABLE)
        remaining = payment.amount - payment.amount_refunded
        value = remaining if amount is None else require_amount(amount)
        if value > remaining:
            raise ProtocolError(ErrorCode.REFUND_EXCEEDS_PAYMENT, param="amount")
        refund = _refund_into_wallet(session, payment, value, "refund", refund_key, terminal.id, now)
        if payment.amount_refunded == payment.amount:
            payment.status = PaymentStatus.REFUNDED
        return refund


def refund_view(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "object": "refund",
        "payment_id": refund.payment_id,
        "amount": refund.amount,
        "currency": "JPY",
        "status": RefundStatus.SUCCEEDED,
        "created": refund.created_at.isoformat(),
    }
