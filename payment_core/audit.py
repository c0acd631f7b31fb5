"""The audit trail: every money movement, sign-in and admin action, written in the same transaction as the act."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, insert
from sqlalchemy.orm import Session

from payment_core.models import AuditEvent
from payment_core.prepared import Prepared
from payment_core.sources import current_source

_NEW_EVENT = Prepared(
    insert(AuditEvent).values(
        {name: bindparam(name) for name in ("at", "actor", "action", "target", "result", "detail", "source")}
    )
)


class AuditOutcome(StrEnum):
    """How an audited act ended: the ``result`` of every event except a payment's, a confirmation's and a
    top-up's, which record the decision itself (its decline code, else its ``PaymentStatus`` / ``TopupStatus``)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a wrong password
    REJECTED = "rejected"  # a wrong TOTP, recovery or card security code
    REPLAYED = "replayed"  # a TOTP code used before
    LOCKED = "locked"
    THROTTLED = "throttled"
    BLOCKED = "blocked"  # an address trying many accounts
    ALERTED = "alerted"  # the risk engine raised a service-wide alert
    SENT = "sent"  # a reset mail
    NO_ACCOUNT = "no_account"
    REPLACED_UNVERIFIED = "replaced_unverified"
    REFUSED_EXISTS = "refused_exists"
    REFUSED_UNVERIFIED = "refused_unverified"
    REFUSED_SECOND_FACTOR = "refused_second_factor"
    REFUSED_DEVICE_LIMIT = "refused_device_limit"
    REFUSED_BY_ISSUER = "refused_by_issuer"  # a card's holder refused the issuer's prompt (3-D Secure)
    REFUSED_TOKEN = "refused_token"  # noqa: S105 (an audit word, not a secret)
    REFUSED_EXPIRED = "refused_expired"
    REFUSED_REVOKED = "refused_revoked"
    REUSE_DETECTED = "reuse_detected"  # a refresh token used twice
    REFUSED_NOT_PENDING = "refused_not_pending"  # an answer to a payment already closed
    EXPIRED_UNANSWERED = "expired_unanswered"
    CLOSED_UNSEEN = "closed_unseen"  # a reverse of an order the core never saw
    CLOSED_AWAITING = "closed_awaiting"  # a reverse of a payment still awaiting the customer


def record(session: Session, *, at: datetime, actor: str, action: str, target: str, result: str, **detail: Any) -> None:
    """Add one audit event: who (``actor``), what (``action``), on what (``target``), the ``result``, and
    from where (the request's client address). Keyword-only, so an actor and a target cannot swap places.

    ``result`` is an :class:`AuditOutcome`, or for a payment, confirmation or top-up its decline code or status.
    Callers pass facts only: never a secret, password, code MAC or token."""
    event = {
        "at": at,
        "actor": actor,
        "action": action,
        "target": target,
        "result": result,
        "detail": json.dumps(detail, sort_keys=True, default=str),
        "source": current_source.get()[:64],
    }
    _NEW_EVENT.run(session, event)  # at once, in the caller's transaction: no ORM object
