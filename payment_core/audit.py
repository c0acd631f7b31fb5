"""The audit trail: every money movement, sign-in and admin action, written in the same transaction as the act."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from payment_core.models import AuditEvent
from payment_core.sources import current_source


def record(session: Session, *, at: datetime, actor: str, action: str, target: str, result: str, **detail: Any) -> None:
    """Add one audit event: who (``actor``), what (``action``), on what (``target``), the ``result``, and
    from where (the request's client address). Keyword-only, so an actor and a target cannot swap places.

    Callers pass facts only: never a secret, password, code MAC or token."""
    session.add(
        AuditEvent(
            at=at,
            actor=actor,
            action=action,
            target=target,
            result=result,
            detail=json.dumps(detail, sort_keys=True, default=str),
            source=current_source.get()[:64],
        )
    )
