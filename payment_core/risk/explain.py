"""``possim admin explain TXN_ID``: a transaction as the risk rules saw it, and what each that fired read."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from payment_core.models import Merchant, Payment, Topup
from payment_core.risk.engine import explain


def explain_transaction(session: Session, txn_id: str) -> dict[str, Any] | None:
    """The payment or top-up ``txn_id`` with every risk decision kept for it, or the decisions kept for a
    sign-in or a phone's enrollment (``enroll_...``, ``signin_...``: the ``risk_subject`` of its audit
    events); None when there is no such transaction or decision."""
    payment = session.get(Payment, txn_id)
    if payment is not None:
        merchant = session.get(Merchant, payment.merchant_id)
        facts: dict[str, Any] = {
            "kind": "payment",
            "amount": payment.amount,
            "status": payment.status,
            "decline_code": payment.decline_code,
            "store": merchant.name if merchant else None,
            "terminal_id": payment.terminal_id,
            "account_id": payment.account_id,
            "device_id": payment.device_id,
            "created": payment.created_at.isoformat(),
        }
    else:
        topup = session.get(Topup, txn_id)
        if topup is None:
            return _explain_attempt(session, txn_id)
        facts = {
            "kind": "topup",
            "amount": topup.amount,
            "status": topup.status,
            "decline_code": topup.decline_code,
            "method": topup.method,
            "account_id": topup.account_id,
            "created": topup.created_at.isoformat(),
        }
    return {"id": txn_id, **facts, "decisions": explain(session, txn_id)}


def _explain_attempt(session: Session, subject_id: str) -> dict[str, Any] | None:
    decisions = explain(session, subject_id)
    if not decisions:
        return None
    first = decisions[0]
    facts = {"kind": first["kind"], "account_id": first["account_id"], "created": first["at"]}
    return {"id": subject_id, **facts, "decisions": decisions}


def explain_lines(explained: dict[str, Any]) -> list[str]:
    """The explanation in words, for a terminal."""
    if "amount" not in explained:  # a sign-in or an enrollment
        lines = [f"{explained['id']}: {explained['kind']}, {explained['created']}: account {explained['account_id']}"]
        return lines + _decision_lines(explained)
    where = f" at {explained['store']}" if explained.get("store") else ""
    outcome = explained["status"] + (f" ({explained['decline_code']})" if explained["decline_code"] else "")
    lines = [
        f"{explained['id']}: {explained['kind']} of {explained['amount']:,} yen{where}, {explained['created']}: {outcome}",
        f"  account {explained['account_id']}"
        + (f", device {explained['device_id']}" if explained.get("device_id") else ""),
    ]
    return lines + _decision_lines(explained)


def _decision_lines(explained: dict[str, Any]) -> list[str]:
    lines = []
    if not explained["decisions"]:
        lines.append("  no risk rule fired on it")
    for decision in explained["decisions"]:
        lines.append(f"  risk: {decision['verdict']} ({decision['at']})")
        for finding in decision["findings"]:
            lines.append(f"    - {finding['rule']} asked to {finding['action']}: {finding['reason']}")
            for name, value in sorted(finding["inputs"].items()):
                lines.append(f"        {name}: {value}")
    return lines
