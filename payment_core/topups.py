"""Top-ups: cash handed over at a register (the customer shows a payment code), simulated cards and
bank transfers. Limits (``config.Limits``, after 7pay's 100,000 yen a charge and 3 a day): at least
``topup_min_yen`` and at most ``topup_max_yen`` a top-up, a per-day sum over any 24 hours, a per-day count
of the owner's own (card and bank) top-ups, and lower ones while the device that asks (or whose code is
shown at the register) is less than 72 hours enrolled. A card or bank top-up needs a fresh TOTP code
(7pay's lesson; the login password is not accepted), checked before the top-up is recorded, so a wrong
code is a 401 that leaves nothing stored; a repeat of a recorded top-up (same id and parameters) replays
it without using another code.

Design note, what a payment code alone can do (issue 13). A code names a wallet, and anyone who sees it
(over a shoulder, on a screen, in a photo) holds it for its lifetime, 60 s plus 30 s of skew, until it is
used once. With it alone:

- *a payment* of at most ``Limits.confirm_above_yen`` (10,000 yen): above that the phone must approve
  (``confirmations``). That bounds a seen code's worth to one small payment, which the owner is notified
  of at once, and keeps everyday payments to one scan. Lower it for a stricter deployment; it is one setting.
- *a cash top-up* of any amount the limits allow: it puts the stranger's own cash into the owner's wallet,
  so it takes nothing from the owner. What it could take is the owner's *allowance*, and it must not:
  cash top-ups at a register are not counted against ``topup_daily_count`` (only card and bank top-ups,
  each needing the owner's TOTP code, are), so strangers with seen codes cannot use up the owner's
  top-ups of the day; and every top-up is at least ``topup_min_yen`` (1,000 yen), so filling the owner's
  daily *sum* instead would cost a stranger that whole sum (200,000 yen, or 20,000 for a new phone),
  handed to the owner. The sum stays shared: it bounds what reaches a wallet in a day however it comes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from payment_core import audit, cards, incident, notify, otp
from payment_core.auth import TerminalRef
from payment_core.codes import EnrolledDevice, redeem_code
from payment_core.core import Core, new_id, retry_on_conflict
from payment_core.ledger import (
    BANK_CLEARING,
    CARD_CLEARING,
    CASH_CLEARING,
    book_ids,
    post,
    wallet_book_name,
)
from payment_core.models import Account, Device, Topup
from payment_core.risk.topup_check import audit_fields, judge_topup
from protocol import ErrorCode, ProtocolError, TopupStatus, format_yen, require_amount

# Test cards, as in Stripe's test mode.
CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000002"
# Test bank accounts: the first transfers, any other is declined.
BANK_OK = "0001234"
BANK_DECLINED = "0009999"
BANK_DECLINED_MESSAGE = "The bank declined the transfer."


@dataclass(frozen=True)
class TopupRequest:
    topup_id: str
    amount: int
    method: str  # cash | card | bank
    detail: str  # the payment code (cash), the card number (card) or the bank account (bank)

    def fingerprint(self) -> str:
        fields = {"topup_id": self.topup_id, "amount": self.amount, "method": self.method, "detail": self.detail}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def topup_view(topup: Topup) -> dict[str, Any]:
    return {
        "id": topup.id,
        "object": "topup",
        "topup_id": topup.topup_key,
        "amount": topup.amount,
        "currency": "JPY",
        "method": topup.method,
        "status": topup.status,
        "decline_code": topup.decline_code,
        "balance_after": topup.balance_after,
        "created": topup.created_at.isoformat(),
    }


def _existing(session: Session, source: str, request: TopupRequest) -> Topup | None:
    found = session.scalars(
        select(Topup).where(Topup.source == source, Topup.topup_key == request.topup_id)
    ).one_or_none()
    if found is not None and found.request_hash != request.fingerprint():
        raise ProtocolError(ErrorCode.IDEMPOTENCY_CONFLICT, param="topup_id")
    return found


OWNER_METHODS = ("card", "bank")  # top-ups only the owner can make (a TOTP code); counted per day


def _check_limits(core: Core, request: TopupRequest) -> None:
    """The bounds of one top-up, checked before anything is stored (a cash top-up's code is not used up)."""
    require_amount(request.amount)
    limits = core.config.limits
    if request.amount < limits.topup_min_yen:
        message = f"A top-up is at least {format_yen(limits.topup_min_yen)}."
        raise ProtocolError(ErrorCode.AMOUNT_INVALID, message, "amount")
    if request.amount > limits.topup_max_yen:
        message = f"A top-up is at most {format_yen(limits.topup_max_yen)}."
        raise ProtocolError(ErrorCode.LIMIT_EXCEEDED, message, "amount")


def check_daily_limits(
    session: Session, core: Core, account_id: int, device: EnrolledDevice, amount: int, now: datetime, method: str
) -> None:
    """The per-day limits (any 24 hours) of the account, and the lower ones of a device enrolled lately.

    The count is of the owner's own top-ups (card and bank) and binds only them: cash at a register, which
    anyone holding a seen code can make, never uses it up (see the module's design note). The sum is of
    every top-up. The caller holds the account's row lock, so two top-ups at once cannot both squeeze under
    a limit."""
    limits = core.config.limits
    since = now - timedelta(hours=24)
    by_owner = case((Topup.method.in_(OWNER_METHODS), 1), else_=0)
    count, total = session.execute(
        select(func.coalesce(func.sum(by_owner), 0), func.coalesce(func.sum(Topup.amount), 0)).where(
            Topup.account_id == account_id, Topup.status == TopupStatus.SUCCEEDED, Topup.created_at >= since
        )
    ).one()
    if method in OWNER_METHODS and count >= limits.topup_daily_count:
        message = f"At most {limits.topup_daily_count} top-ups a day by card or bank."
        raise ProtocolError(ErrorCode.LIMIT_EXCEEDED, message, "amount")
    if total + amount > limits.topup_daily_sum_yen:
        message = f"At most {format_yen(limits.topup_daily_sum_yen)} of top-ups a day; {format_yen(total)} so far."
        raise ProtocolError(ErrorCode.LIMIT_EXCEEDED, message, "amount")
    recent = device.enrolled_at > now - timedelta(hours=limits.new_device_hours)
    if recent and (amount > limits.new_device_topup_max_yen or total + amount > limits.new_device_daily_sum_yen):
        message = (
            f"This phone signed in less than {limits.new_device_hours} hours ago: up to "
            f"{format_yen(limits.new_device_topup_max_yen)} a top-up and "
            f"{format_yen(limits.new_device_daily_sum_yen)} a day until then."
        )
        raise ProtocolError(ErrorCode.LIMIT_EXCEEDED, message, "amount")


def _credit(session: Session, topup: Topup, clearing: str) -> None:
    """Move the money in from outside; a frozen account takes nothing."""
    assert topup.account_id is not None
    account = session.get(Account, topup.account_id, with_for_update=True)
    if account is None or account.status != "active":
        raise ProtocolError(ErrorCode.ACCOUNT_FROZEN)
    wallet, source = book_ids(session, wallet_book_name(topup.account_id), clearing)
    balances = post(session, "topup", topup.id, topup.created_at, [(source, -topup.amount), (wallet, topup.amount)])
    topup.status = TopupStatus.SUCCEEDED
    topup.balance_after = balances[wallet]
    notify.topped_up(session, topup)


def _record(
    core: Core, source: str, request: TopupRequest, account_id: int | None, decide: Callable[[Session, Topup], None]
) -> Topup:
    """One top-up, idempotent on (source, topup id), like a payment: the row is written first, so a
    concurrent duplicate waits for it and then replays it; a decline is stored (and committed, with
    any failed-code record) instead of rolled back."""
    _check_limits(core, request)

    def attempt() -> Topup:
        now = core.now()
        with core.transaction() as session:
            found = _existing(session, source, request)
            if found is not None:
                return found
            topup = Topup(
                id=new_id("tu"),
                source=source,
                topup_key=request.topup_id,
                request_hash=request.fingerprint(),
                account_id=account_id,
                method=request.method,
                amount=request.amount,
                status=TopupStatus.PROCESSING,
                created_at=now,
            )
            session.add(topup)
            session.flush()
            try:
                decide(session, topup)
            except ProtocolError as error:
                topup.status, topup.decline_code = TopupStatus.DECLINED, error.code.value
            detail: dict[str, object] = {"amount": request.amount, "account_id": topup.account_id}
            if request.method in ("card", "bank"):
                detail[f"{request.method}_last4"] = request.detail[-4:]
            detail.update(audit_fields(session, topup.id))  # the risk verdict and rules, when any fired
            audit.record(
                session,
                at=now,
                actor=source,
                action=f"topup.{request.method}",
                target=topup.id,
                result=topup.decline_code or topup.status,
                **detail,
            )
            return topup

    return retry_on_conflict(attempt)


def topup_cash(core: Core, terminal: TerminalRef, request: TopupRequest) -> Topup:
    """Cash at the register: the code names the wallet and is used up (even if the top-up declines)."""
    incident.require_running(core, incident.TOPUP_SWITCHES["cash"])  # before the code is used up

    def decide(session: Session, topup: Topup) -> None:
        device = redeem_code(session, core.config, terminal.id, request.detail, topup.created_at)
        topup.account_id = device.account_id
        session.get(Account, device.account_id, with_for_update=True)
        check_daily_limits(session, core, device.account_id, device, request.amount, topup.created_at, request.method)
        judge_topup(session, core, topup, device, terminal.id)  # the risk rules (payment_core/risk/topup_check.py)
        _credit(session, topup, CASH_CLEARING)

    return _record(core, terminal.id, request, None, decide)


def _from_device(core: Core, device: Device, request: TopupRequest, code: str | None, ok: str, clearing: str) -> Topup:
    incident.require_running(core, incident.TOPUP_SWITCHES[request.method])  # before the TOTP code is spent
    source = f"dev_{device.id}"
    with core.transaction() as session:
        found = _existing(session, source, request)
    if found is not None:
        return found
    _check_limits(core, request)
    with core.transaction() as session:  # before the code is spent: a top-up over a limit burns no TOTP step
        check_daily_limits(session, core, device.account_id, device, request.amount, core.now(), request.method)
    if core.config.defences.code_for_owner_topups:
        otp.require_totp(core, device.account_id, code)

    def decide(session: Session, topup: Topup) -> None:
        session.get(Account, device.account_id, with_for_update=True)
        check_daily_limits(session, core, device.account_id, device, request.amount, topup.created_at, request.method)
        judge_topup(session, core, topup, device, None)  # the risk rules; a step-up is the TOTP code given
        linked = request.method == "card" and cards.is_linked(session, core, device.account_id, request.detail)
        if request.detail != ok and not linked:
            raise ProtocolError(ErrorCode.CARD_DECLINED)
        _credit(session, topup, clearing)

    return _record(core, source, request, device.account_id, decide)


def topup_card(core: Core, device: Device, request: TopupRequest, code: str | None) -> Topup:
    """A simulated card charge into the device's wallet (test card numbers only), after a TOTP code."""
    return _from_device(core, device, request, code, CARD_OK, CARD_CLEARING)


def topup_bank(core: Core, device: Device, request: TopupRequest, code: str | None) -> Topup:
    """A simulated bank transfer into the device's wallet (test bank accounts only), after a TOTP code."""
    return _from_device(core, device, request, code, BANK_OK, BANK_CLEARING)
