"""Top-up velocity: too many top-ups into one account, in an hour or in 24 hours, whichever way they came
(cash at a register, card, bank) and in any state (a run of refused ones is a pattern too). This one
counts. A customer tops up once or twice a day; a wallet filled again and again is being used as a
conduit (fake cash from a register, card testing from the app)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from payment_core.models import Topup
from payment_core.risk.facts import Finding, TopupFacts
from payment_core.risk.settings import RiskSettings

NAME = "topup_velocity"
_SPANS = {"account_per_hour": "in an hour", "account_per_day": "in 24 hours"}
_T = Topup.__table__.c
_BY_ACCOUNT = select(func.count(), func.count().filter(_T.created_at >= bindparam("hour_ago"))).where(
    _T.account_id == bindparam("account"), _T.created_at >= bindparam("day_ago"), _T.id != bindparam("topup")
)


def check(session: Session, settings: RiskSettings, facts: TopupFacts) -> Finding | None:
    rule = settings.topup_velocity
    if not rule.enabled:
        return None
    params = {
        "account": facts.account_id,
        "topup": facts.topup_id,
        "hour_ago": facts.now - timedelta(hours=1),
        "day_ago": facts.now - timedelta(hours=24),
    }
    day, hour = session.connection().execute(_BY_ACCOUNT, params).one()
    counts = {"account_per_hour": (hour + 1, rule.account_per_hour), "account_per_day": (day + 1, rule.account_per_day)}
    over = [name for name, (seen, limit) in counts.items() if seen > limit]
    if not over:
        return None
    words = ", ".join(f"{counts[name][0]} top-ups {_SPANS[name]} (limit {counts[name][1]})" for name in over)
    inputs = {name: {"seen": seen, "limit": limit} for name, (seen, limit) in counts.items()}
    return Finding(NAME, rule.action, f"too many top-ups into this account: {words}", inputs)
