"""``possim admin explain TXN_ID``: a transaction as the risk rules saw it, and what each that fired read."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from payment_core.models import Merchant, Payment, Topup
from payment_core.risk.engine import explain


def explain_transaction(session: Session, txn_id: str) -> dict[str, Any] | None:
    """The payment or top-up ``txn_id`` with every risk decision kept for it (None when there is no such
    transaction)."""
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
            return None
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


def explain_lines(explained: dict[str, Any]) -> list[str]:
    """The explanation in words, for a terminal."""
    where = f" at {explained['store']}" if explained.get("store") else ""
    outcome = explained["status"] + (f" ({explained['decline_code']})" if explained["decline_code"] else "")
    lines = [
        f"{explained['id']}: {explained['kind']} of {explained['amount']:,} yen{where}, {explained['created']}: {outcome}",
        f"  account {explained['account_id']}"
        + (f", device {explained['device_id']}" if explained.get("device_id") else ""),
    ]
    if not explained["decisions"]:
        lines.append("  no risk rule fired on it")
    for decision in explained["decisions"]:
        lines.append(f"  risk: {decision['verdict']} ({decision['at']})")
        for finding in decision["findings"]:
            lines.append(f"    - {finding['rule']} asked to {finding['action']}: {finding['reason']}")
            for name, value in sorted(finding["inputs"].items()):
                lines.append(f"        {name}: {value}")
    return lines
