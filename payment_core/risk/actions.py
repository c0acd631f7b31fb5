"""What the core does on its own when a rule asks for more than a refusal."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from payment_core import audit
from payment_core.audit import AuditOutcome
from payment_core.models import Account


def freeze_for_risk(session: Session, account_id: int, rules: list[str], now: datetime) -> None:
    """Freeze the account until an operator unfreezes it (``possim admin account-unfreeze``); audited with
    the rules that asked for it."""
    session.execute(update(Account).where(Account.id == account_id).values(status="frozen"))
    audit.record(
        session,
        at=now,
        actor="risk",
        action="account.frozen",
        target=f"account:{account_id}",
        result=AuditOutcome.SUCCEEDED,
        rules=rules,
    )
