"""Where a top-up meets the risk rules (``payment_core.topups`` calls :func:`judge_topup` once the code,
the limits and the account are good, before any money moves).

What a verdict does to a top-up:

- ``allow``: nothing (the findings are kept).
- ``step_up``: a cash top-up at a register is declined, ``risk_declined``, with a message asking the
  customer to top up from the app by card or bank, which takes the authenticator's code: the step-up a
  register cannot do. A card or bank top-up came with that code already, so it goes through.
- ``decline``: refused, ``risk_declined``, whatever the method.
- ``freeze``: refused, and the account frozen until an operator unfreezes it.

The decision is kept beside the top-up (``risk_decisions``, kind ``topup``) and :func:`audit_fields`
gives the top-up's audit event its verdict and the rules that fired, as a payment's has.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_core.codes import EnrolledDevice
from payment_core.core import Core
from payment_core.models import RiskDecision, Topup
from payment_core.risk.actions import freeze_for_risk
from payment_core.risk.engine import assess_topup, keep
from payment_core.risk.facts import TopupFacts
from payment_core.risk.settings import Verdict
from protocol import ErrorCode, ProtocolError

DECLINED_MESSAGE = "This top-up was stopped by a security check; please contact support."
STEP_UP_MESSAGE = (
    "This top-up needs the customer's own confirmation: please top up from the possim app "
    "(card or bank, with your authenticator code)."
)


def judge_topup(session: Session, core: Core, topup: Topup, device: EnrolledDevice, terminal_id: str | None) -> Verdict:
    """Ask the top-up rules, keep their findings, and refuse (or freeze) when they say so."""
    assert topup.account_id is not None
    facts = TopupFacts(
        topup.id,
        topup.account_id,
        device.id,
        device.enrolled_at,
        topup.method,
        terminal_id,
        topup.amount,
        topup.created_at,
    )
    assessment = assess_topup(session, core.config.risk, facts)
    keep(session, "topup", topup.id, topup.account_id, assessment, topup.created_at)
    verdict = assessment.verdict
    if verdict == Verdict.FREEZE:
        freeze_for_risk(session, topup.account_id, assessment.rules, topup.created_at)
    if verdict >= Verdict.DECLINE:
        raise ProtocolError(ErrorCode.RISK_DECLINED)
    if verdict == Verdict.STEP_UP and not facts.from_app:
        raise ProtocolError(ErrorCode.RISK_DECLINED, STEP_UP_MESSAGE)
    return verdict


def audit_fields(session: Session, topup_id: str) -> dict[str, Any]:
    """``{"risk": verdict, "rules": [...]}`` for the top-up's audit event when a rule fired on it, else {}."""
    session.flush()
    row = session.scalars(
        select(RiskDecision).where(RiskDecision.subject_kind == "topup", RiskDecision.subject_id == topup_id)
    ).first()
    if row is None:
        return {}
    return {"risk": row.verdict, "rules": [finding["rule"] for finding in json.loads(row.findings)]}


def topup_decline_message(core: Core, topup_id: str) -> str:
    """What a top-up the rules refused tells the customer: top up from the app after a step-up, else
    contact support (the answer is the same when the top-up is replayed)."""
    with core.transaction() as session:
        verdict = session.scalars(
            select(RiskDecision.verdict).where(
                RiskDecision.subject_kind == "topup", RiskDecision.subject_id == topup_id
            )
        ).first()
    return STEP_UP_MESSAGE if verdict == Verdict.STEP_UP.word else DECLINED_MESSAGE
