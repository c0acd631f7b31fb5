"""A list attack spread over many addresses, seen over the whole service (``[signin_list_attack]`` in
``rules.toml``).

The per-address throttle (``payment_core.throttle``) cannot see 7pay's attack: each address tries a few
accounts and moves on. Here every failed sign-in looks at the last ``window_seconds`` of all of them: how
many failed, what share named addresses that have no account (a leaked list is full of them), from how
many address ranges, and how many accounts had their right password tried without the second factor.
When the signs are there, an alert goes up (audited ``signin.list_attack``, mailed to the operator) and,
while it stays up, sign-ins from places new to the account are slowed down service-wide before any
password work: at most ``unfamiliar_failures_per_minute`` failures a minute for all of them together,
or none at all with ``action = "decline"``. Owners signing in from a range they used before (recorded on
every successful sign-in, ``account_places``) are never held back.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from payment_core import audit, outbox
from payment_core.audit import AuditOutcome
from payment_core.models import SIGNIN_FACTOR_FAILED, SIGNIN_FAILURES, Account, AccountPlace, RiskAlert, SigninAttempt
from payment_core.risk.settings import RiskSettings, Verdict

KIND = "signin.list_attack"
OPERATOR_SUBJECT = "possim: a sign-in list attack is under way"
_RECHECK_EVERY = timedelta(seconds=10)  # an alert already up is re-measured at most this often
_A = SigninAttempt.__table__.c
_FAILED = _A.outcome.in_(SIGNIN_FAILURES)
_SIGNS = select(
    func.count().filter(_FAILED),
    func.count().filter(_FAILED, _A.account_id.is_(None)),
    func.count(func.distinct(_A.account_id)).filter(_A.outcome == SIGNIN_FACTOR_FAILED),
).where(_A.at >= bindparam("since"))
_FAILING_SOURCES = select(_A.source).distinct().where(_FAILED, _A.at >= bindparam("since"))
# How many failures since ``since``, counted no further than ``enough`` (the rule's threshold): while a list
# attack runs thousands fail a minute, and every held try asks (ix_signin_attempts_outcome_at)
_FAILURES_SINCE = select(func.count()).select_from(
    select(_A.id).where(_FAILED, _A.at >= bindparam("since")).limit(bindparam("enough")).subquery()
)
_LIVE = (RiskAlert.kind == KIND, RiskAlert.until > bindparam("now"), RiskAlert.lifted_by.is_(None))
_ACTIVE = select(RiskAlert).where(*_LIVE).order_by(RiskAlert.id.desc()).limit(1)
_ACTIVE_ID = select(RiskAlert.id).where(*_LIVE).limit(1)
_FAMILIAR = (
    select(AccountPlace.account_id)
    .join(Account, Account.id == AccountPlace.account_id)
    .where(Account.email == bindparam("email"), AccountPlace.place == bindparam("place"))
    .limit(1)
)


@dataclass(frozen=True)
class Signs:
    failures: int
    unknown_share_percent: int
    ranges: int
    right_password_accounts: int

    def as_json(self) -> dict[str, int]:
        return dict(self.__dict__)


@functools.lru_cache(maxsize=4096)  # a pure function of a string; a held sign-in asks it three times
def place_of(source: str) -> str:
    """The range an address is in: IPv4 /24, IPv6 /48 (a source already keyed per /64 included)."""
    try:
        network = ipaddress.ip_network(source, strict=False)
    except ValueError:
        return source
    prefix = 24 if network.version == 4 else 48
    return str(network.supernet(new_prefix=prefix)) if network.prefixlen > prefix else str(network)


def remember_place(session: Session, account_id: int, source: str, now: datetime) -> None:
    """Note that the account signed in from ``source``'s range (called on every successful sign-in)."""
    place = session.get(AccountPlace, (account_id, place_of(source)))
    if place is None:
        session.add(AccountPlace(account_id=account_id, place=place_of(source), first_seen=now, last_seen=now))
    else:
        place.last_seen = now


def familiar_place(session: Session, email: str, source: str) -> bool:
    """Whether the account named ``email`` (if there is one) has signed in from ``source``'s range before."""
    found = session.execute(_FAMILIAR, {"email": email.strip().lower(), "place": place_of(source)}).first()
    return found is not None


def active_alert(session: Session, now: datetime) -> RiskAlert | None:
    return session.scalars(_ACTIVE, {"now": now}).first()


def alert_up(session: Session, now: datetime) -> bool:
    """Whether an alert is up (``refusal`` asks on every sign-in: one indexed row, no object)."""
    return session.execute(_ACTIVE_ID, {"now": now}).first() is not None


def refusal(session: Session, settings: RiskSettings, email: str, source: str, now: datetime) -> str | None:
    """Why a sign-in from ``source`` for ``email`` must wait (None: let it try the password)."""
    rule = settings.signin_list_attack
    if not rule.enabled or rule.action == Verdict.ALLOW or not alert_up(session, now):
        return None
    if familiar_place(session, email, source):
        return None  # the owner's usual place
    if rule.action == Verdict.STEP_UP:
        enough = rule.unfamiliar_failures_per_minute
        failures = session.execute(
            _FAILURES_SINCE, {"since": now - timedelta(minutes=1), "enough": enough}
        ).scalar_one()
        if failures < enough:
            return None
    return (
        "Signing in from a new place is paused for a while because the service is under attack; "
        "try again later, or from where you usually sign in."
    )


def measure(session: Session, settings: RiskSettings, now: datetime) -> Signs:
    since = now - timedelta(seconds=settings.signin_list_attack.window_seconds)
    failures, unknown, right_password = session.execute(_SIGNS, {"since": since}).one()
    sources = session.scalars(_FAILING_SOURCES, {"since": since}).all()
    share = (100 * unknown // failures) if failures else 0
    return Signs(int(failures), int(share), len({place_of(source) for source in sources}), int(right_password))


def fires(settings: RiskSettings, signs: Signs) -> bool:
    rule = settings.signin_list_attack
    return signs.failures >= rule.min_failures and (
        signs.unknown_share_percent >= rule.unknown_share_percent
        or signs.ranges >= rule.ranges
        or signs.right_password_accounts >= rule.right_password_accounts
    )


def watch(session: Session, settings: RiskSettings, operator_email: str, now: datetime) -> RiskAlert | None:
    """After a failed sign-in: raise the alert (or keep it up) when the signs are there. The alert, if up."""
    rule = settings.signin_list_attack
    if not rule.enabled:
        return None
    alert = active_alert(session, now)
    if alert is not None and now - alert.last_seen < _RECHECK_EVERY:
        return alert
    signs = measure(session, settings, now)
    if not fires(settings, signs):
        return alert
    until = now + timedelta(minutes=rule.alert_minutes)
    if alert is not None:
        alert.last_seen, alert.until = now, until
        return alert
    alert = RiskAlert(kind=KIND, opened_at=now, last_seen=now, until=until, signals=json.dumps(signs.as_json()))
    session.add(alert)
    audit.record(
        session, at=now, actor="risk", action=KIND, target="service", result=AuditOutcome.ALERTED, **signs.as_json()
    )
    outbox.send(
        session, outbox.EMAIL, operator_email, OPERATOR_SUBJECT, _operator_mail(signs, rule.window_seconds, now), now
    )
    return alert


def _operator_mail(signs: Signs, window: int, now: datetime) -> str:
    return (
        f"At {now:%Y-%m-%d %H:%M:%S} UTC the core saw a sign-in list attack: in the last {window} s, "
        f"{signs.failures} failed sign-ins, {signs.unknown_share_percent}% for addresses with no account, "
        f"from {signs.ranges} address ranges, and {signs.right_password_accounts} accounts whose right password "
        "came without the second factor (their owners have been told to change it).\n"
        "Sign-ins from places new to each account are being slowed down. See the audit (signin.list_attack).\n"
    )


def alert_view(alert: RiskAlert) -> dict[str, Any]:
    return {
        "kind": alert.kind,
        "opened_at": alert.opened_at.isoformat(),
        "until": alert.until.isoformat(),
        "signals": json.loads(alert.signals),
    }
