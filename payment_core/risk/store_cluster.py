"""Fraud that clusters at a store: 7pay's losses came through a few shops, where many taken-over
accounts, each on a freshly added phone, paid in a short time. It fires when, counting this payment,
``new_device_accounts`` different accounts paid from new phones (``[new_device]``) at this store in the
last ``within_minutes``. A payment from an established phone never fires it, nor do newcomers' first
phones."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from payment_core.models import Account, Device, Payment
from payment_core.risk.facts import Finding, PaymentFacts
from payment_core.risk.settings import RiskSettings

NAME = "store_cluster"
_P = Payment.__table__.c
_D = Device.__table__.c
_A = Account.__table__.c
_YOUNG_DEVICES_HERE = (
    select(_P.account_id, _D.enrolled_at, _A.created_at)
    .distinct()
    .select_from(
        Payment.__table__.join(Device.__table__, _D.id == _P.device_id).join(Account.__table__, _A.id == _P.account_id)
    )
    .where(
        _P.merchant_id == bindparam("merchant"),
        _P.created_at >= bindparam("since"),
        _P.account_id != bindparam("account"),
        _D.enrolled_at >= bindparam("young_since"),
    )
)


def check(session: Session, settings: RiskSettings, facts: PaymentFacts) -> Finding | None:
    rule = settings.store_cluster
    if not rule.enabled or not facts.is_new_device(settings.new_device):
        return None
    params = {
        "merchant": facts.merchant_id,
        "since": facts.now - timedelta(minutes=rule.within_minutes),
        "account": facts.account_id,
        "young_since": facts.now - timedelta(hours=settings.new_device.younger_than_hours),
    }
    added_after = timedelta(hours=settings.new_device.added_after_account_hours)
    rows = session.connection().execute(_YOUNG_DEVICES_HERE, params).all()
    accounts = len({account for account, enrolled, created in rows if enrolled - created >= added_after}) + 1
    if accounts < rule.new_device_accounts:
        return None
    inputs = {
        "new_device_accounts": accounts,
        "limit": rule.new_device_accounts,
        "within_minutes": rule.within_minutes,
        "store_id": facts.merchant_id,
    }
    reason = (
        f"{accounts} different accounts paid from newly enrolled phones at this store "
        f"in the last {rule.within_minutes} minutes (limit {rule.new_device_accounts})"
    )
    return Finding(NAME, rule.action, reason, inputs)
