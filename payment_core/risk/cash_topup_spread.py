"""Cash top-ups at one register into many different wallets.

The core takes a register's word that cash was handed over, so a compromised register (or a clerk at
one) could credit "cash" that never came into many wallets, to be spent elsewhere. It fires when,
counting this one, ``accounts`` different accounts were topped up in cash at this register in the last
``within_minutes`` (refused top-ups count: a run of them is a pattern too). A busy register takes a
cash top-up every few minutes at most, each for another customer, which the default leaves alone.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from payment_core.models import Topup
from payment_core.risk.facts import Finding, TopupFacts
from payment_core.risk.settings import RiskSettings

NAME = "cash_topup_spread"
_T = Topup.__table__.c
_OTHER_WALLETS_HERE = (
    select(_T.account_id)
    .distinct()
    .where(
        _T.source == bindparam("terminal"),
        _T.method == "cash",
        _T.created_at >= bindparam("since"),
        _T.account_id.is_not(None),
        _T.account_id != bindparam("account"),
    )
)


def check(session: Session, settings: RiskSettings, facts: TopupFacts) -> Finding | None:
    rule = settings.cash_topup_spread
    if not rule.enabled or facts.method != "cash" or facts.terminal_id is None:
        return None
    params = {
        "terminal": facts.terminal_id,
        "since": facts.now - timedelta(minutes=rule.within_minutes),
        "account": facts.account_id,
    }
    accounts = len(session.connection().execute(_OTHER_WALLETS_HERE, params).all()) + 1
    if accounts < rule.accounts:
        return None
    inputs = {
        "accounts": accounts,
        "limit": rule.accounts,
        "within_minutes": rule.within_minutes,
        "terminal_id": facts.terminal_id,
    }
    reason = (
        f"{accounts} different wallets topped up in cash at this register in the last "
        f"{rule.within_minutes} minutes (limit {rule.accounts})"
    )
    return Finding(NAME, rule.action, reason, inputs)
