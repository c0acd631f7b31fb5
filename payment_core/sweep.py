"""Closing payments nobody answered: none stays ``awaiting_customer`` past its confirmation window.

A waiting payment is closed (declined, ``confirmation_expired``, audited) whenever it is read again under
its row lock (``payments.expire_if_unanswered``). One nobody reads again (the register lost its network,
the phone never answered) would wait for ever: :func:`sweep_unanswered` closes all of them, each under its
own row lock and transaction, so an approval arriving at the same moment either wins (the money moves)
or finds the payment closed. ``possim admin sweep`` runs it once; ``possim core serve`` runs it every
few seconds in a :class:`Sweeper` thread.
"""

from __future__ import annotations

import functools
from datetime import timedelta

from sqlalchemy import bindparam, select, text

from payment_core import audit
from payment_core.audit import AuditOutcome
from payment_core.core import Core, retry_on_conflict
from payment_core.models import AWAITING_CUSTOMER_ROWS, Payment
from payment_core.payments import expire_if_unanswered
from payment_core.periodic import Periodic

BATCH = 200
# The waiting payments past their window, oldest first, read from their own partial index (the status said as
# a literal, as the index says it: a bound parameter could be any status, and the planner would scan them all).
_WAITING = (
    select(Payment.id)
    .where(text(f"payments.{AWAITING_CUSTOMER_ROWS}"), Payment.created_at <= bindparam("cutoff"))
    .order_by(Payment.created_at, Payment.id)
    .limit(BATCH)
)
ACTION = "payments.sweep"


def sweep_unanswered(core: Core, actor: str | None = None) -> list[str]:
    """Close every payment still waiting after its confirmation window; the ids closed, oldest first.

    With ``actor`` (an operator), the sweep itself is audited too, with how many it closed; each closed
    payment is audited by ``expire_if_unanswered`` either way."""
    closed: list[str] = []
    while True:
        cutoff = core.now() - timedelta(seconds=core.config.limits.confirm_window_seconds)
        with core.transaction() as session:
            waiting = session.scalars(_WAITING, {"cutoff": cutoff}).all()
        for payment_id in waiting:
            if retry_on_conflict(functools.partial(_close, core, payment_id)):
                closed.append(payment_id)
        if len(waiting) < BATCH:
            break
    if actor is not None:
        with core.transaction() as session:
            audit.record(
                session,
                at=core.now(),
                actor=actor,
                action=ACTION,
                target="payments",
                result=AuditOutcome.SUCCEEDED,
                closed=len(closed),
            )
    return closed


def _close(core: Core, payment_id: str) -> bool:
    with core.transaction() as session:
        payment = session.get(Payment, payment_id, with_for_update=True)
        return payment is not None and expire_if_unanswered(core, session, payment, core.now())


class Sweeper(Periodic):
    """:func:`sweep_unanswered` every ``every_seconds`` in a daemon thread, until :meth:`stop`; ``done``
    counts the payments it closed."""

    def __init__(self, core: Core, every_seconds: float) -> None:
        super().__init__(
            "possim-sweeper", every_seconds, lambda: len(sweep_unanswered(core)), "closing unanswered payments"
        )

    @property
    def closed(self) -> int:
        return self.done

    def sweep_now(self, timeout: float = 30.0) -> int:
        """Wake the thread for one sweep and wait for it (tests, and an operator's nudge); its run number."""
        return self.run_now(timeout)
