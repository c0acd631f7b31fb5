"""Retention: the rows the core keeps only against replays and guessing, and the job that forgets them once
no window reads them any more, so those tables do not grow without end.

What is kept how long (``config.Retention``; each at least as long as the window that reads it, whatever
the setting says):

| table | what it guards | kept |
|---|---|---|
| ``request_nonces`` | a signed request replayed | 5 minutes at least (twice the signature tolerance and a minute) |
| ``used_codes`` | a payment code presented twice | 24 hours (a code expires after its life and the clock skew) |
| ``code_failures`` | codes guessed at a register or for a device | 24 hours (the longer guessing window) |
| ``signin_attempts`` | passwords guessed, list attacks | the longest window reading them (60 minutes as shipped) |
| ``card_code_tries`` | card testing | 30 days (the issuer's check looks back that far) |
| ``password_resets`` | a reset code used twice | 1 day after it expired or was used |
| ``auth_sessions``, ``refresh_tokens`` | a refresh token used twice | 7 days after the session ended |
| ``address_blocks`` | the throttle's blocks and range holds | 30 days after they ended |
| ``outbox`` | the simulated mailbox | 30 days |

Never pruned: money (journals, postings, payments, top-ups, refunds; an order id is its payment's
idempotency key for as long as the payment exists), the audit trail, the risk decisions and alerts, the
accounts and their devices. Nor is ``queued_work``: a row is work promised with a 202, deleted by the
transaction that does it (``payment_core.queued_work``), or dropped with an audit event after its last try.

:func:`prune` deletes in batches of ``Retention.batch`` rows, each batch its own short transaction, so the
job never holds the database's writer for long; it is audited (``retention.prune``, with what it deleted)
whenever it deleted anything or an operator ran it. ``possim admin prune`` runs it once; ``possim core
serve`` every ``Retention.prune_every_minutes`` (a :class:`Pruner` thread).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, or_, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from payment_core import audit, throttle
from payment_core.audit import AuditOutcome
from payment_core.auth import nonce_retention_seconds
from payment_core.config import Retention
from payment_core.core import Core
from payment_core.models import (
    AddressBlock,
    AuthSession,
    CardCodeTry,
    CodeFailure,
    OutboxMessage,
    PasswordReset,
    RefreshToken,
    RequestNonce,
    SigninAttempt,
    UsedCode,
)
from payment_core.periodic import Periodic

ACTION = "retention.prune"
MAX_BATCHES = 1_000  # a run's bound: what is left waits for the next run


@dataclass(frozen=True)
class Rule:
    table: str
    keys: tuple[InstrumentedAttribute[object], ...]  # the primary key
    expired: Callable[[Core, Retention, datetime], ColumnElement[bool]]  # rows no window reads any more


def _hours(value: int) -> timedelta:
    return timedelta(hours=value)


def _used_codes(core: Core, settings: Retention, now: datetime) -> ColumnElement[bool]:
    life = timedelta(seconds=core.config.code_ttl_seconds + 2 * core.config.clock_skew_seconds + 60)
    return UsedCode.used_at < now - max(_hours(settings.used_codes_hours), life)


def _code_failures(core: Core, settings: Retention, now: datetime) -> ColumnElement[bool]:
    limits = core.config.limits
    window = timedelta(seconds=max(limits.code_failure_window_seconds, limits.device_numeric_window_seconds))
    return CodeFailure.at < now - max(_hours(settings.code_failures_hours), window)


def _card_code_tries(core: Core, settings: Retention, now: datetime) -> ColumnElement[bool]:
    limits = core.config.limits
    window = max(
        timedelta(seconds=limits.card_code_window_seconds), timedelta(days=limits.card_wrong_codes_remembered_days)
    )
    return CardCodeTry.at < now - window


def _password_resets(core: Core, settings: Retention, now: datetime) -> ColumnElement[bool]:
    cut = now - timedelta(days=settings.spent_resets_days)
    return or_(PasswordReset.expires_at < cut, PasswordReset.used_at < cut)


def _blocks(core: Core, settings: Retention, now: datetime) -> ColumnElement[bool]:
    return AddressBlock.blocked_until < now - timedelta(days=settings.ended_blocks_days)


def _mail(core: Core, settings: Retention, now: datetime) -> ColumnElement[bool]:
    return OutboxMessage.created_at < now - timedelta(days=settings.mail_days)


def ended_sessions(core: Core, settings: Retention, now: datetime) -> ColumnElement[bool]:
    cut = now - timedelta(days=settings.ended_sessions_days)
    return or_(AuthSession.expires_at < cut, AuthSession.revoked_at < cut)


RULES = (
    Rule(
        "request_nonces",
        (RequestNonce.key_id, RequestNonce.nonce),
        lambda core, settings, now: (
            RequestNonce.seen_at
            < now - timedelta(seconds=nonce_retention_seconds(core.config.signature_tolerance_seconds))
        ),
    ),
    Rule("used_codes", (UsedCode.use_key,), _used_codes),
    Rule("code_failures", (CodeFailure.id,), _code_failures),
    Rule(
        "signin_attempts",
        (SigninAttempt.id,),
        lambda core, settings, now: SigninAttempt.at < throttle.attempts_needed_since(core, now),
    ),
    Rule("card_code_tries", (CardCodeTry.id,), _card_code_tries),
    Rule("password_resets", (PasswordReset.id,), _password_resets),
    Rule("address_blocks", (AddressBlock.source,), _blocks),
    Rule("outbox", (OutboxMessage.id,), _mail),
)


def _delete_batch(session: Session, *, rule: Rule, condition: ColumnElement[bool], batch: int) -> int:
    chosen = select(*rule.keys).where(condition).limit(batch)
    key = rule.keys[0] if len(rule.keys) == 1 else tuple_(*rule.keys)
    table = rule.keys[0].class_
    return int(session.execute(delete(table).where(key.in_(chosen))).rowcount or 0)  # type: ignore[attr-defined]


def _delete_sessions_batch(session: Session, core: Core, settings: Retention, now: datetime, batch: int) -> int:
    """Ended sessions and their refresh tokens, together: a token outlives its session by nothing."""
    ids = list(session.scalars(select(AuthSession.id).where(ended_sessions(core, settings, now)).limit(batch)))
    if ids:
        session.execute(delete(RefreshToken).where(RefreshToken.session_id.in_(ids)))
        session.execute(delete(AuthSession).where(AuthSession.id.in_(ids)))
    return len(ids)


def prune(core: Core, actor: str | None = None, settings: Retention | None = None) -> dict[str, int]:
    """Delete what no window reads any more (see the module's docstring); rows deleted by table. With
    ``actor`` (an operator) the run is audited even when it found nothing. ``settings`` stand in for the
    core's ``Retention``."""
    settings = settings or core.config.retention
    now, batch = core.now(), max(1, settings.batch)
    deleted: dict[str, int] = {}
    for rule in RULES:
        condition = rule.expired(core, settings, now)
        deleted[rule.table] = _until_done(
            core, functools.partial(_delete_batch, rule=rule, condition=condition, batch=batch), batch
        )
    deleted["auth_sessions"] = _until_done(
        core, lambda session: _delete_sessions_batch(session, core, settings, now, batch), batch
    )
    if actor is not None or any(deleted.values()):
        with core.transaction() as session:
            audit.record(
                session,
                at=now,
                actor=actor or "core",
                action=ACTION,
                target="retention",
                result=AuditOutcome.SUCCEEDED,
                **{table: count for table, count in deleted.items() if count},
            )
    return deleted


def _until_done(core: Core, delete_batch: Callable[[Session], int], batch: int) -> int:
    total = 0
    for _ in range(MAX_BATCHES):
        with core.transaction() as session:
            count = delete_batch(session)
        total += count
        if count < batch:
            break
    return total


class Pruner(Periodic):
    """:func:`prune` every ``Retention.prune_every_minutes`` in a daemon thread (``possim core serve``)."""

    def __init__(self, core: Core, every_seconds: float | None = None) -> None:
        every = every_seconds if every_seconds is not None else core.config.retention.prune_every_minutes * 60.0
        super().__init__("possim-pruner", every, lambda: sum(prune(core).values()), "pruning kept rows")
