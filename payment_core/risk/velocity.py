"""Velocity: too many payments too fast, per account and per device (a minute, an hour) and per register
and per store (a minute). Payments in any state count: a run of declined attempts is a pattern too."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, bindparam, func, select, true
from sqlalchemy.orm import Session

from payment_core.models import Payment
from payment_core.prepared import Prepared
from payment_core.risk.facts import Finding, PaymentFacts
from payment_core.risk.settings import RiskSettings

NAME = "velocity"
_P = Payment.__table__.c
_MINUTE = _P.created_at >= bindparam("minute_ago")
_THIS_DEVICE = _P.device_id == bindparam("device")
_BY_ACCOUNT = select(
    func.count().label("account_hour"),
    func.count().filter(_MINUTE).label("account_minute"),
    func.count().filter(_THIS_DEVICE).label("device_hour"),
    func.count().filter(and_(_THIS_DEVICE, _MINUTE)).label("device_minute"),
).where(_P.account_id == bindparam("account"), _P.created_at >= bindparam("hour_ago"))
_BY_STORE = select(
    func.count().label("store_minute"),
    func.count().filter(_P.terminal_id == bindparam("terminal")).label("terminal_minute"),
).where(_P.merchant_id == bindparam("merchant"), _MINUTE)
# Both windows in one statement (each side is one row of counts): one round trip a payment, not two.
_account, _store = _BY_ACCOUNT.subquery(), _BY_STORE.subquery()
_COUNTS = Prepared(select(*_account.c, *_store.c).select_from(_account.join(_store, true())))


def check(session: Session, settings: RiskSettings, facts: PaymentFacts) -> Finding | None:
    rule = settings.velocity
    if not rule.enabled:
        return None
    minute_ago, hour_ago = facts.now - timedelta(minutes=1), facts.now - timedelta(hours=1)
    params = {
        "account": facts.account_id,
        "device": facts.device_id,
        "merchant": facts.merchant_id,
        "terminal": facts.terminal_id,
        "minute_ago": minute_ago,
        "hour_ago": hour_ago,
    }
    counts_now = _COUNTS.first(session, params) or (0, 0, 0, 0, 0, 0)
    account_hour, account_minute, device_hour, device_minute, store_minute, terminal_minute = counts_now
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
