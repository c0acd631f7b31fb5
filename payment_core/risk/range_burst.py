"""A slow list attack from one address range (``[signin_range_burst]`` in ``rules.toml``).

The per-address throttle (``payment_core.throttle``) holds an address that fails across many accounts,
and the service-wide alert (``signin_attack``) sees a fast attack over many ranges. An attacker who keeps
every address under the first and the whole service under the second, but sends from related addresses
(one hosting network, one proxy pool), still shows in one place: many different e-mail addresses failing
from one range (IPv4 /24, IPv6 /48) within the hour, from more than one address (one address alone is
the per-address throttle's to hold). After every failed sign-in this counts them; when the
rule fires, the range is held for a while as one of the throttle's address blocks (``address_blocks``,
reason ``range_burst``: listed by ``possim admin blocks``, lifted by ``possim admin address-unblock RANGE``), audited
``signin.range_burst`` and mailed to the operator. While held, sign-ins from the range are refused before
any password work: for accounts that never signed in from it (``step_up``) or for everyone (``decline``).

After a hold ends or is lifted, the range is measured afresh from that moment, so a lift is not undone by
the failures that raised it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from payment_core import audit, outbox
from payment_core.audit import AuditOutcome
from payment_core.models import SIGNIN_FAILURES, AddressBlock, SigninAttempt
from payment_core.risk.settings import RiskSettings, Verdict
from payment_core.risk.signin_attack import familiar_place, place_of

KIND = "signin.range_burst"
REASON = "range_burst"
OPERATOR_SUBJECT = "possim: many accounts failing from one address range"
MESSAGE = (
    "Signing in from your network is paused for a while after many failed sign-ins from it; "
    "try again later, or from where you usually sign in."
)
_A = SigninAttempt.__table__.c
_FAILED_FROM_PLACE = select(func.count(func.distinct(_A.subject)), func.count(func.distinct(_A.source))).where(
    _A.place == bindparam("place"), _A.outcome.in_(SIGNIN_FAILURES), _A.at >= bindparam("since")
)


def window(settings: RiskSettings) -> timedelta:
    return timedelta(minutes=settings.signin_range_burst.window_minutes)


def holding(
    settings: RiskSettings, row: AddressBlock | None, email: str, source: str, now: datetime, session: Session
) -> AddressBlock | None:
    """The hold on ``source``'s range that refuses this sign-in, if any (None: go on to the password);
    ``row`` is the range's ``address_blocks`` row, if it has one (``throttle.admit`` reads it)."""
    rule = settings.signin_range_burst
    if not rule.enabled or rule.action == Verdict.ALLOW:
        return None
    if row is None or row.reason != REASON or now >= row.blocked_until:
        return None
    if rule.action == Verdict.STEP_UP and familiar_place(session, email, source):
        return None  # the owner signing in from a range they use
    return row


def watch(session: Session, settings: RiskSettings, operator_email: str, source: str, now: datetime) -> None:
    """After a failed sign-in from ``source`` (already flushed): hold its range when the rule fires."""
    rule = settings.signin_range_burst
    if not rule.enabled:
        return
    place = place_of(source)
    existing = session.get(AddressBlock, place)
    row = existing if existing is not None and existing.reason == REASON else None
    if row is not None and now < row.blocked_until:
        return  # held already
    since = now - window(settings)
    if row is not None:
        since = max(since, row.blocked_until)  # measured afresh after a hold ends or is lifted
    accounts, addresses = session.execute(_FAILED_FROM_PLACE, {"place": place, "since": since}).one()
    if accounts < rule.accounts or addresses < rule.addresses:
        return
    until = now + timedelta(minutes=rule.hold_minutes)
    if existing is None:
        existing = AddressBlock(source=place, reason=REASON, blocked_at=now, refused=0)
        session.add(existing)
    existing.reason, existing.blocked_at, existing.blocked_until, existing.accounts_tried = REASON, now, until, accounts
    audit.record(
        session,
        at=now,
        actor="risk",
        action=KIND,
        target=f"range:{place}",
        result=AuditOutcome.BLOCKED if rule.action != Verdict.ALLOW else AuditOutcome.ALERTED,
        accounts_failed=accounts,
        addresses=addresses,
        window_minutes=rule.window_minutes,
        action_taken=rule.action.word,
        until=until.isoformat(),
    )
    body = (
        f"At {now:%Y-%m-%d %H:%M:%S} UTC, sign-ins for {accounts} different e-mail addresses had failed from "
        f"{addresses} addresses in the range {place} in the last {rule.window_minutes} minutes.\n"
        f"Action: {rule.action.word}, until {until:%Y-%m-%d %H:%M} UTC. See the audit ({KIND}); "
        "`possim admin blocks` lists the hold; `possim admin address-unblock RANGE` lifts it.\n"
    )
    outbox.send(session, outbox.EMAIL, operator_email, OPERATOR_SUBJECT, body, now)
