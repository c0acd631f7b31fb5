"""Top-up velocity: too many top-ups too fast, whichever way they came (cash at a register, card, bank) and
in any state (a run of refused ones is a pattern too). This one counts.

- per account, in a minute, an hour and 24 hours: a customer tops up once or twice a day; a wallet filled
  again and again is being used as a conduit (fake cash from a register, card testing from the app);
- per phone asking from the app (its key id is the top-up's ``source``), in an hour;
- per register taking cash (the ``source`` of a cash top-up), in a minute and an hour, and per store (its
  registers together), in an hour: the core takes a register's word that cash was handed over.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from payment_core.keys import device_key_id
from payment_core.models import Terminal, Topup
from payment_core.risk.facts import Finding, TopupFacts
from payment_core.risk.settings import RiskSettings

NAME = "topup_velocity"
_SPANS = {"minute": "in a minute", "hour": "in an hour", "day": "in 24 hours"}
_T = Topup.__table__.c
_R = Terminal.__table__.c
_NOT_THIS = _T.id != bindparam("topup")
_MINUTE, _HOUR = _T.created_at >= bindparam("minute_ago"), _T.created_at >= bindparam("hour_ago")
_BY_ACCOUNT = select(
    func.count(), func.count().filter(_HOUR), func.count().filter(_T.created_at >= bindparam("minute_ago"))
).where(_T.account_id == bindparam("account"), _T.created_at >= bindparam("day_ago"), _NOT_THIS)
_BY_SOURCE = select(func.count(), func.count().filter(_MINUTE)).where(
    _T.source == bindparam("source"), _HOUR, _NOT_THIS
)
_STORE_OF = select(_R.merchant_id).where(_R.id == bindparam("terminal"))
_BY_STORE = (
    select(func.count())
    .select_from(Topup.__table__.join(Terminal.__table__, _R.id == _T.source))
    .where(_R.merchant_id == bindparam("merchant"), _HOUR, _NOT_THIS)
)


def check(session: Session, settings: RiskSettings, facts: TopupFacts) -> Finding | None:
    rule = settings.topup_velocity
    if not rule.enabled:
        return None
    connection = session.connection()
    params = {
        "account": facts.account_id,
        "topup": facts.topup_id,
        "minute_ago": facts.now - timedelta(minutes=1),
        "hour_ago": facts.now - timedelta(hours=1),
        "day_ago": facts.now - timedelta(hours=24),
    }
    day, hour, minute = connection.execute(_BY_ACCOUNT, params).one()
    counts = {
        "account_per_minute": (minute + 1, rule.account_per_minute),
        "account_per_hour": (hour + 1, rule.account_per_hour),
        "account_per_day": (day + 1, rule.account_per_day),
    }
    if facts.terminal_id is None:  # from the app: the phone that asks
        device_hour, _ = connection.execute(_BY_SOURCE, params | {"source": device_key_id(facts.device_id)}).one()
        counts["device_per_hour"] = (device_hour + 1, rule.device_per_hour)
    else:  # cash at a register, and its store
        register_hour, register_minute = connection.execute(_BY_SOURCE, params | {"source": facts.terminal_id}).one()
        merchant = connection.execute(_STORE_OF, {"terminal": facts.terminal_id}).scalar_one()
        store_hour = connection.execute(_BY_STORE, params | {"merchant": merchant}).scalar_one()
        counts["terminal_per_minute"] = (register_minute + 1, rule.terminal_per_minute)
        counts["terminal_per_hour"] = (register_hour + 1, rule.terminal_per_hour)
        counts["store_per_hour"] = (store_hour + 1, rule.store_per_hour)
    over = [name for name, (seen, limit) in counts.items() if seen > limit]
    if not over:
        return None
    words = ", ".join(_words(name, *counts[name]) for name in over)
    inputs = {name: {"seen": seen, "limit": limit} for name, (seen, limit) in counts.items()}
    return Finding(NAME, rule.action, f"too many top-ups too fast: {words}", inputs)


def _words(name: str, seen: int, limit: int) -> str:
    who, _, span = name.partition("_per_")
    place = {"account": "into this account", "device": "from this phone", "terminal": "at this register"}
    return f"{seen} top-ups {place.get(who, 'at this store')} {_SPANS[span]} (limit {limit})"
