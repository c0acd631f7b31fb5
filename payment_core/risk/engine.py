"""Run the rules on a transaction, combine what they ask for, and keep the reasons.

Each rule (one module each: for payments ``topup_then_spend``, ``velocity``, ``high_risk_goods``,
``store_cluster``; for top-ups ``cash_topup_spread``, ``topup_velocity``; for sign-ins ``new_place``, which
``devices`` asks through ``new_place.judge``) reads what it needs and either
stays quiet or returns a :class:`Finding`. The strictest action among the findings is the verdict. When any rule fired, the findings are stored beside the transaction
(``risk_decisions``) in the same database transaction as the decision itself, and ``explain`` reads
them back: ``possim admin explain TXN_ID``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_core.models import RiskDecision
from payment_core.risk import (
    cash_topup_spread,
    high_risk_goods,
    store_cluster,
    topup_then_spend,
    topup_velocity,
    velocity,
)
from payment_core.risk.facts import Finding, PaymentFacts, TopupFacts
from payment_core.risk.settings import RiskSettings, Verdict

PaymentRule = Callable[[Session, RiskSettings, PaymentFacts], Finding | None]
PAYMENT_RULES: tuple[PaymentRule, ...] = (
    velocity.check,
    topup_then_spend.check,
    high_risk_goods.check,
    store_cluster.check,
)

TopupRule = Callable[[Session, RiskSettings, TopupFacts], Finding | None]
TOPUP_RULES: tuple[TopupRule, ...] = (cash_topup_spread.check, topup_velocity.check)


@dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    findings: tuple[Finding, ...]

    @property
    def rules(self) -> list[str]:
        return [finding.rule for finding in self.findings]


def combine(findings: Sequence[Finding]) -> Assessment:
    verdict = max((finding.action for finding in findings), default=Verdict.ALLOW)
    return Assessment(verdict, tuple(findings))


def assess_payment(session: Session, settings: RiskSettings, facts: PaymentFacts) -> Assessment:
    return combine([finding for rule in PAYMENT_RULES if (finding := rule(session, settings, facts)) is not None])


def assess_topup(session: Session, settings: RiskSettings, facts: TopupFacts) -> Assessment:
    return combine([finding for rule in TOPUP_RULES if (finding := rule(session, settings, facts)) is not None])


def keep(
    session: Session, kind: str, subject_id: str, account_id: int | None, assessment: Assessment, at: datetime
) -> None:
    """Store the findings beside the transaction (nothing when no rule fired)."""
    if not assessment.findings:
        return
    findings = json.dumps([finding.as_json() for finding in assessment.findings], sort_keys=True)
    session.add(
        RiskDecision(
            subject_kind=kind,
            subject_id=subject_id,
            account_id=account_id,
            verdict=assessment.verdict.word,
            findings=findings,
            at=at,
        )
    )


def explain(session: Session, subject_id: str) -> list[dict[str, Any]]:
    """Every decision kept for a transaction, oldest first: kind, verdict, when, and the findings."""
    rows = session.scalars(
        select(RiskDecision).where(RiskDecision.subject_id == subject_id).order_by(RiskDecision.id)
    ).all()
    return [
        {
            "kind": row.subject_kind,
            "verdict": row.verdict,
            "at": row.at.isoformat(),
            "account_id": row.account_id,
            "findings": json.loads(row.findings),
        }
        for row in rows
    ]
