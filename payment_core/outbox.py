"""The outbox: simulated e-mail and SMS, written in the same transaction as the act that sends them.

The table holds each message as sent, so it is the simulated user's mailbox (an e-mail code is in its
body, as in a real mail). Nothing here logs a message body. ``possim outbox`` prints it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_core.core import Core
from payment_core.models import OutboxMessage

EMAIL = "email"
SMS = "sms"
MAX_LIST = 500


def send(session: Session, channel: str, to: str, subject: str, body: str, at: datetime) -> OutboxMessage:
    message = OutboxMessage(channel=channel, to=to, subject=subject[:200], body=body, created_at=at)
    session.add(message)
    return message


def messages(core: Core, to: str | None = None, limit: int = 50) -> list[OutboxMessage]:
    """The newest ``limit`` messages (to one address when given), newest first."""
    query = select(OutboxMessage).order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
    if to is not None:
        query = query.where(OutboxMessage.to == to.strip().lower())
    with core.transaction() as session:
        return list(session.scalars(query.limit(max(1, min(limit, MAX_LIST)))).all())


def message_view(message: OutboxMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "channel": message.channel,
        "to": message.to,
        "subject": message.subject,
        "body": message.body,
        "created": message.created_at.isoformat(),
    }
