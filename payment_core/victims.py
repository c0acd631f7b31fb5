"""Suspected victims of account takeover, with the evidence (issue 13, incident controls).

7pay found its 808 victims by hand, two days late. Here the core's own records name them. The definition,
the one ``possim admin victims`` and ``possim admin report`` use:

- A **takeover device** is a phone enrolled on an account that already had an earlier phone, from an
  address range (IPv4 /24, IPv6 /48: ``signin_attack.place_of``) the account had never signed in from
  before that enrollment. The range is that of the address the successful ``device.enroll`` audit event
  came from; "never before" means ``account_places`` has no row for (account, range) first seen before
  the device's ``enrolled_at`` (every successful sign-in records its range there).
- The account is **taken over** when such a device was then used: a payment (any outcome) or a card or
  bank top-up from it.
- It is a **victim** when money left its wallet through that device: a payment from it that has a
  payment journal (it succeeded, even if refunded or reversed later).
- **Yen lost** is, for those payments, what the ledger took from the wallet (the payment journal's wallet
  posting) less what went back to it (refund and reversal journals of the same payments). A card or bank
  top-up from the device is shown as evidence but is not a loss by itself: it is money coming in, and
  what the attacker spent of it is counted in the payments.

The evidence per victim: each takeover device (when, from which address and range, whether still active),
the payments (when, where, how much, what came back, what the risk rules said), the refused attempts,
the top-ups from the device, the leaked-password warnings sent to the owner
(``devices.LEAKED_PASSWORD_SUBJECT``), and what has been paid back (``compensation``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payment_core.compensation import compensated_by_account
from payment_core.devices import LEAKED_PASSWORD_SUBJECT
from payment_core.models import (
    Account,
    AccountPlace,
    AuditEvent,
    Device,
    Journal,
    LedgerAccount,
    Merchant,
    OutboxMessage,
    Payment,
    Posting,
    Refund,
    RiskDecision,
    Topup,
)
from payment_core.risk.signin_attack import place_of
from protocol import TopupStatus


@dataclass(frozen=True)
class TakeoverDevice:
    device_id: int
    account_id: int
    name: str
    enrolled_at: datetime
    address: str
    place: str
    status: str

    def as_json(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "name": self.name,
            "enrolled_at": self.enrolled_at.isoformat(),
            "from_address": self.address,
            "from_range": self.place,
            "status": self.status,
        }


@dataclass
class Victim:
    account_id: int
    email: str
    devices: list[TakeoverDevice] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    topups: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    yen_lost: int = 0
    yen_compensated: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "email": self.email,
            "yen_lost": self.yen_lost,
            "yen_compensated": self.yen_compensated,
            "yen_outstanding": max(0, self.yen_lost - self.yen_compensated),
            "devices": [device.as_json() for device in self.devices],
            "payments": self.payments,
            "refused_payments": self.refused,
            "device_topups": self.topups,
            "leaked_password_warnings": self.warnings,
        }


def takeover_device(session: Session, device_id: int) -> TakeoverDevice | None:
    """The device as a takeover device (see the module's docstring), or None if it is not one."""
    device = session.get(Device, device_id)
    if device is None:
        return None
    earlier = session.scalar(
        select(func.count()).where(
            Device.account_id == device.account_id, Device.id != device.id, Device.enrolled_at < device.enrolled_at
        )
    )
    if not earlier:
        return None  # the account's first phone: where a new customer starts, not a takeover
    address = session.scalars(
        select(AuditEvent.source)
        .where(
            AuditEvent.action == "device.enroll",
            AuditEvent.target == f"device:{device.id}",
            AuditEvent.result == "succeeded",
        )
        .order_by(AuditEvent.id)
        .limit(1)
    ).first()
    if address is None:
        return None  # no record of where it came from: no evidence
    place = place_of(address)
    known = session.scalar(
        select(func.count()).where(
            AccountPlace.account_id == device.account_id,
            AccountPlace.place == place,
            AccountPlace.first_seen < device.enrolled_at,
        )
    )
    if known:
        return None
    return TakeoverDevice(device.id, device.account_id, device.name, device.enrolled_at, address, place, device.status)


def _window(query: Any, column: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    return query


def used_devices(session: Session, since: datetime | None = None, until: datetime | None = None) -> set[int]:
    """Devices that made a payment (any outcome) or a card or bank top-up within [since, until)."""
    paid = session.scalars(
        _window(
            select(Payment.device_id).distinct().where(Payment.device_id.is_not(None)), Payment.created_at, since, until
        )
    ).all()
    topped = session.scalars(
        _window(
            select(Topup.source).distinct().where(Topup.source.like("dev\\_%", escape="\\")),
            Topup.created_at,
            since,
            until,
        )
    ).all()
    return {int(device) for device in paid} | {int(source.removeprefix("dev_")) for source in topped}


def takeover_devices(
    session: Session, since: datetime | None = None, until: datetime | None = None
) -> dict[int, TakeoverDevice]:
    """Takeover devices used within [since, until), by device id."""
    found = {}
    for device_id in sorted(used_devices(session, since, until)):
        device = takeover_device(session, device_id)
        if device is not None:
            found[device_id] = device
    return found


def lost_by_payment(session: Session, payment_ids: list[str]) -> dict[str, int]:
    """What the ledger took from the paying wallet for each payment that has a journal, less what its refund
    and reversal journals put back (a payment with no journal moved nothing and is absent)."""
    if not payment_ids:
        return {}
    wallet = LedgerAccount.kind == "wallet"
    taken = session.execute(
        select(Journal.reference, func.sum(-Posting.amount))
        .join(Posting, Posting.journal_id == Journal.id)
        .join(LedgerAccount, LedgerAccount.id == Posting.ledger_account_id)
        .where(Journal.kind == "payment", Journal.reference.in_(payment_ids), wallet)
        .group_by(Journal.reference)
    ).all()
    back = session.execute(
        select(Refund.payment_id, func.sum(Posting.amount))
        .join(Journal, (Journal.kind == "refund") & (Journal.reference == Refund.id))
        .join(Posting, Posting.journal_id == Journal.id)
        .join(LedgerAccount, LedgerAccount.id == Posting.ledger_account_id)
        .where(Refund.payment_id.in_(payment_ids), wallet)
        .group_by(Refund.payment_id)
    ).all()
    returned = {payment_id: int(total) for payment_id, total in back}
    return {payment_id: int(total) - returned.get(payment_id, 0) for payment_id, total in taken}


def find_victims(session: Session, since: datetime | None = None, until: datetime | None = None) -> list[Victim]:
    """Suspected victims whose money moved within [since, until), with the evidence; most lost first."""
    devices = takeover_devices(session, since, until)
    if not devices:
        return []
    payments = session.scalars(
        _window(select(Payment).where(Payment.device_id.in_(list(devices))), Payment.created_at, since, until).order_by(
            Payment.created_at, Payment.id
        )
    ).all()
    lost = lost_by_payment(session, [payment.id for payment in payments])
    stores = {int(merchant_id): str(name) for merchant_id, name in session.execute(select(Merchant.id, Merchant.name))}
    reasons = _risk_reasons(session, [payment.id for payment in payments])
    victims: dict[int, Victim] = {}
    refused: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for payment in payments:
        assert payment.account_id is not None and payment.device_id is not None
        row = {
            "payment_id": payment.id,
            "at": payment.created_at.isoformat(),
            "device_id": payment.device_id,
            "store": stores.get(payment.merchant_id, ""),
            "terminal_id": payment.terminal_id,
            "amount": payment.amount,
            "status": payment.status,
            "risk": reasons.get(payment.id, []),
        }
        if payment.id not in lost:
            refused[payment.account_id].append(row | {"decline_code": payment.decline_code})
            continue
        victim = victims.setdefault(payment.account_id, Victim(payment.account_id, ""))
        victim.payments.append(row | {"lost": lost[payment.id], "refunded": payment.amount - lost[payment.id]})
        victim.yen_lost += lost[payment.id]
    compensated = compensated_by_account(session)
    for account_id, victim in victims.items():
        account = session.get(Account, account_id)
        victim.email = account.email if account is not None else ""
        victim.devices = [device for device in devices.values() if device.account_id == account_id]
        victim.refused = refused.get(account_id, [])
        victim.topups = _device_topups(session, [device.device_id for device in victim.devices], since, until)
        victim.warnings = _warnings(session, victim.email)
        victim.yen_compensated = compensated.get(account_id, 0)
    return sorted(victims.values(), key=lambda victim: (-victim.yen_lost, victim.account_id))


def _risk_reasons(session: Session, payment_ids: list[str]) -> dict[str, list[str]]:
    reasons: dict[str, list[str]] = defaultdict(list)
    if not payment_ids:
        return reasons
    rows = session.execute(
        select(RiskDecision.subject_id, RiskDecision.verdict, RiskDecision.findings)
        .where(RiskDecision.subject_kind == "payment", RiskDecision.subject_id.in_(payment_ids))
        .order_by(RiskDecision.id)
    ).all()
    for subject_id, verdict, findings in rows:
        for finding in json.loads(findings):
            reasons[subject_id].append(f"{finding['rule']} ({verdict}): {finding['reason']}")
    return reasons


def _device_topups(
    session: Session, device_ids: list[int], since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    query = _window(
        select(Topup).where(Topup.source.in_([f"dev_{device}" for device in device_ids])),
        Topup.created_at,
        since,
        until,
    ).order_by(Topup.created_at)
    return [
        {
            "topup_id": topup.id,
            "at": topup.created_at.isoformat(),
            "device_id": int(topup.source.removeprefix("dev_")),
            "method": topup.method,
            "amount": topup.amount,
            "status": topup.status,
            "succeeded": topup.status == TopupStatus.SUCCEEDED,
        }
        for topup in session.scalars(query)
    ]


def _warnings(session: Session, email: str) -> list[str]:
    """When the owner was told their password was used without the second factor."""
    rows = session.scalars(
        select(OutboxMessage.created_at)
        .where(OutboxMessage.to == email, OutboxMessage.subject == LEAKED_PASSWORD_SUBJECT)
        .order_by(OutboxMessage.created_at)
    ).all()
    return [at.isoformat() for at in rows]


def victim_lines(victims: list[Victim]) -> list[str]:
    """The victims in words, for the terminal."""
    if not victims:
        return ["no suspected victims"]
    lines = [f"{len(victims)} suspected victims, {sum(v.yen_lost for v in victims):,} yen lost"]
    for victim in victims:
        outstanding = max(0, victim.yen_lost - victim.yen_compensated)
        lines.append(
            f"account {victim.account_id} ({victim.email}): lost {victim.yen_lost:,} yen, "
            f"compensated {victim.yen_compensated:,} yen, outstanding {outstanding:,} yen"
        )
        for device in victim.devices:
            lines.append(
                f"  device {device.device_id} {device.name!r} enrolled {device.enrolled_at:%Y-%m-%d %H:%M:%S} "
                f"from {device.address} (range {device.place}, new to the account; now {device.status})"
            )
        for payment in victim.payments:
            lines.append(
                f"  paid {payment['amount']:,} yen at {payment['store']} {payment['at']} ({payment['payment_id']}, "
                f"device {payment['device_id']}, lost {payment['lost']:,})"
            )
            lines.extend(f"    risk: {reason}" for reason in payment["risk"])
        for refused in victim.refused:
            lines.append(f"  refused {refused['amount']:,} yen at {refused['store']} ({refused['decline_code']})")
        for topup in victim.topups:
            lines.append(f"  top-up {topup['amount']:,} yen by {topup['method']} from the device ({topup['status']})")
        if victim.warnings:
            lines.append(f"  told the password was used without the second factor: {', '.join(victim.warnings)}")
    return lines
