"""Goods that turn stolen money into cash (tobacco, gift cards: the register sends the sale's catalog
categories with the payment), above ``above_yen``, from a new phone (``[new_device]``: added lately to
an account that was already there). No database read: it judges the request as sent."""

from __future__ import annotations

from sqlalchemy.orm import Session

from payment_core.risk.facts import Finding, PaymentFacts
from payment_core.risk.settings import RiskSettings

NAME = "high_risk_goods"


def check(session: Session, settings: RiskSettings, facts: PaymentFacts) -> Finding | None:
    rule = settings.high_risk_goods
    risky = sorted(set(facts.categories) & set(rule.categories))
    if not rule.enabled or not risky or facts.amount <= rule.above_yen:
        return None
    if not facts.is_new_device(settings.new_device):
        return None
    inputs = {
        "categories": risky,
        "amount_yen": facts.amount,
        "above_yen": rule.above_yen,
        "device_age_hours": round(facts.device_age_hours(), 2),
    }
    reason = (
        f"{', '.join(risky)} for {facts.amount:,} yen (over {rule.above_yen:,}) "
        f"from a phone enrolled {facts.device_age_hours():.1f} hours ago"
    )
    return Finding(NAME, rule.action, reason, inputs)
