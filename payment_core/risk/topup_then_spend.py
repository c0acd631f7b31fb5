"""7pay's own pattern: a top-up, then most of it spent soon after, from a phone enrolled a moment ago.

7pay's staff found their fraud by hand, two days late, from "charged 10,000 yen or more, then spent
about the same that day". Here the core sees it on the payment that completes it: from a new phone
(``[new_device]``: added lately to an account that was already there), the account's top-ups of at least ``topup_at_least_yen``
in the last ``within_minutes``, against what the account has paid since the first of them plus this
payment. When that reaches ``spent_share_percent`` of the top-ups, the rule fires.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from payment_core.models import Payment, Topup
from payment_core.risk.facts import Finding, PaymentFacts
from payment_core.risk.settings import RiskSettings
from protocol import PaymentStatus, TopupStatus

NAME = "topup_then_spend"
_T = Topup.__table__.c
_P = Payment.__table__.c
_TOPUPS = select(func.coalesce(func.sum(_T.amount), 0), func.min(_T.created_at)).where(
    _T.account_id == bindparam("account"),
    _T.status == TopupStatus.SUCCEEDED.value,
    _T.amount >= bindparam("at_least"),
    _T.created_at >= bindparam("since"),
)
_SPENT = select(func.coalesce(func.sum(_P.amount), 0)).where(
    _P.account_id == bindparam("account"),
    _P.status == PaymentStatus.SUCCEEDED.value,
    _P.created_at >= bindparam("since"),
)


def check(session: Session, settings: RiskSettings, facts: PaymentFacts) -> Finding | None:
    rule = settings.topup_then_spend
    if not rule.enabled or not facts.is_new_device(settings.new_device):
        return None
    connection = session.connection()
    since = facts.now - timedelta(minutes=rule.within_minutes)
    topped_up, first_at = connection.execute(
        _TOPUPS, {"account": facts.account_id, "at_least": rule.topup_at_least_yen, "since": since}
    ).one()
    topped_up = int(topped_up)  # PostgreSQL sums integers as numeric
    if not topped_up:
        return None
    spent_before = connection.execute(_SPENT, {"account": facts.account_id, "since": first_at}).scalar_one()
    spent = int(spent_before) + facts.amount
    if spent * 100 < topped_up * rule.spent_share_percent:
        return None
    inputs = {
        "topped_up_yen": topped_up,
        "spent_yen": spent,
        "within_minutes": rule.within_minutes,
        "device_age_hours": round(facts.device_age_hours(), 2),
        "spent_share_percent": rule.spent_share_percent,
    }
    reason = (
        f"{spent:,} yen spent of {topped_up:,} yen topped up in the last {rule.within_minutes} minutes, "
        f"from a phone enrolled {facts.device_age_hours():.1f} hours ago"
    )
    return Finding(NAME, rule.action, reason, inputs)
