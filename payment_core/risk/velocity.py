"""Velocity: too many payments too fast, per account and per device (a minute, an hour) and per register
and per store (a minute). Payments in any state count: a run of declined attempts is a pattern too."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm import Session

from payment_core.models import Payment
from payment_core.prepared import Prepared
from payment_core.risk.facts import Finding, PaymentFacts
from payment_core.risk.settings import RiskSettings

NAME = "velocity"
_P = Payment.__table__.c
_MINUTE = _P.created_at >= bindparam("minute_ago")
_THIS_DEVICE = _P.device_id == bindparam("device")
_BY_ACCOUNT = Prepared(
    select(
        func.count(),
        func.count().filter(_MINUTE),
        func.count().filter(_THIS_DEVICE),
        func.count().filter(and_(_THIS_DEVICE, _MINUTE)),
    ).where(_P.account_id == bindparam("account"), _P.created_at >= bindparam("hour_ago"))
)
_BY_STORE = Prepared(
    select(func.count(), func.count().filter(_P.terminal_id == bindparam("terminal"))).where(
        _P.merchant_id == bindparam("merchant"), _MINUTE
    )
)


def check(session: Session, settings: RiskSettings, facts: PaymentFacts) -> Finding | None:
    rule = settings.velocity
    if not rule.enabled:
        return None
    minute_ago, hour_ago = facts.now - timedelta(minutes=1), facts.now - timedelta(hours=1)
    by_account = {
        "account": facts.account_id,
        "device": facts.device_id,
        "minute_ago": minute_ago,
        "hour_ago": hour_ago,
    }
    account_hour, account_minute, device_hour, device_minute = _BY_ACCOUNT.first(session, by_account) or (0, 0, 0, 0)
    by_store = {"merchant": facts.merchant_id, "terminal": facts.terminal_id, "minute_ago": minute_ago}
    store_minute, terminal_minute = _BY_STORE.first(session, by_store) or (0, 0)
    # this payment counts too
    counts = {
        "account_per_minute": (account_minute + 1, rule.account_per_minute),
        "account_per_hour": (account_hour + 1, rule.account_per_hour),
        "device_per_minute": (device_minute + 1, rule.device_per_minute),
        "device_per_hour": (device_hour + 1, rule.device_per_hour),
        "terminal_per_minute": (terminal_minute + 1, rule.terminal_per_minute),
        "store_per_minute": (store_minute + 1, rule.store_per_minute),
    }
    over = [name for name, (seen, limit) in counts.items() if seen > limit]
    if not over:
        return None
    words = ", ".join(
        f"{counts[name][0]} {name.replace('_per_', ' payments a ')} (limit {counts[name][1]})" for name in over
    )
    inputs = {name: {"seen": seen, "limit": limit} for name, (seen, limit) in counts.items()}
    return Finding(NAME, rule.action, f"too many payments too fast: {words}", inputs)
