"""Sign-in throttling per source address and per account (the settings and their sources: ``config.Throttling``).

Every password check goes through :func:`admit` first and :func:`settle` after:

- ``admit`` refuses at once (HTTP 429, ``Retry-After``) an address that is blocked or still in its
  backoff, before any argon2 work, and records the refused try: an attacker who keeps hammering through
  the 429s is still naming accounts, and that is how a list attack is seen. Every refusal is one audit
  event ``signin.attempt`` on ``address:KEY``: ``blocked`` (an operator's block of a range or country, or
  the throttle's own block of a list-attacking address; ``by`` says which) or ``throttled`` (backoff, or
  held while a service-wide list-attack alert is up), so the incident report counts them.
- ``settle`` records the outcome. A failure counts against the address (sliding window, exponential
  backoff) and against the account if it exists (10 in a row lock it for 30 minutes or until a
  password reset; the owner gets an e-mail). When one address has failed on ``list_attack_accounts``
  different e-mail addresses in the window it is blocked and the block is audited as a list attack.

Accounts are named in the attempts table by a keyed hash of the e-mail, so unknown addresses from a
leaked list count the same as real ones and the list itself is not kept. A locked account answers
exactly like a wrong password, so a lock does not tell an attacker that the account exists.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.orm import Session

from payment_core import audit, incident, outbox
from payment_core.audit import AuditOutcome
from payment_core.config import Throttling
from payment_core.core import Core
from payment_core.keys import keyed_hash
from payment_core.models import (
    SIGNIN_FACTOR_FAILED,
    SIGNIN_FAILED,
    SIGNIN_FAILURES,
    SIGNIN_SUCCEEDED,
    SIGNIN_THROTTLED,
    Account,
    AddressBlock,
    SigninAttempt,
)
from payment_core.risk import range_burst, signin_attack
from payment_core.sources import throttle_key
from protocol import ErrorCode, ProtocolError

FAILED, SUCCEEDED, THROTTLED = SIGNIN_FAILED, SIGNIN_SUCCEEDED, SIGNIN_THROTTLED
_PRUNE_EVERY = 200


class Throttled(ProtocolError):
    """429 with the seconds to wait (sent as ``Retry-After``)."""

    def __init__(self, retry_after: int, message: str) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, message)
        self.retry_after = max(1, retry_after)


def subject_of(core: Core, email: str) -> str:
    return keyed_hash(core.config.server_key, "signin-subject", "", email.strip().lower())


def _settings(core: Core) -> Throttling:
    return core.config.throttling


def _window_start(core: Core, now: datetime) -> datetime:
    return now - timedelta(seconds=_settings(core).window_seconds)


def _failures(session: Session, key: str, since: datetime) -> tuple[int, datetime | None]:
    query = select(func.count(), func.max(SigninAttempt.at)).where(
        SigninAttempt.source == key, SigninAttempt.outcome.in_(SIGNIN_FAILURES), SigninAttempt.at >= since
    )
    count, last = session.execute(query).one()
    return int(count), last


def _accounts_tried(session: Session, key: str, since: datetime) -> int:
    query = select(func.count(func.distinct(SigninAttempt.subject))).where(
        SigninAttempt.source == key,
        SigninAttempt.outcome.in_((*SIGNIN_FAILURES, THROTTLED)),
        SigninAttempt.at >= since,
    )
    return int(session.execute(query).scalar_one())


def backoff_seconds(settings: Throttling, failures: int) -> int:
    """How long after its last failure an address waits, having failed ``failures`` times in the window."""
    if failures < settings.free_failures:
        return 0
    return int(min(2 ** min(failures - settings.free_failures, 30), settings.backoff_max_seconds))


def _block_if_list_attack(session: Session, core: Core, key: str, now: datetime) -> AddressBlock | None:
    settings = _settings(core)
    tried = _accounts_tried(session, key, _window_start(core, now))
    if tried < settings.list_attack_accounts:
        return None
    until = now + timedelta(minutes=settings.list_attack_block_minutes)
    block = session.get(AddressBlock, key)
    if block is None:
        block = AddressBlock(source=key, reason="list_attack", blocked_at=now, refused=0)
        session.add(block)
    block.reason, block.blocked_at, block.blocked_until, block.accounts_tried = "list_attack", now, until, tried
    audit.record(
        session,
        at=now,
        actor="core",
        action="signin.list_attack",
        target=f"address:{key}",
        result=AuditOutcome.BLOCKED,
        accounts_tried=tried,
        blocked_until=until.isoformat(),
    )
    return block


def _record_attempt(
    session: Session, core: Core, source: str, email: str, outcome: str, now: datetime, account_id: int | None = None
) -> None:
    """One ``signin_attempts`` row, inserted at once in the caller's transaction (no ORM object to flush)."""
    row = {
        "source": throttle_key(source),
        "place": signin_attack.place_of(source),
        "subject": subject_of(core, email),
        "account_id": account_id,
        "outcome": outcome,
        "at": now,
    }
    session.connection().execute(_NEW_ATTEMPT, row)


def _held(session: Session, key: str, now: datetime, result: AuditOutcome, **why: str) -> None:
    """Audit a try turned away before any password work (``why``: which block or alert, when one did)."""
    audit.record(session, at=now, actor="core", action="signin.attempt", target=f"address:{key}", result=result, **why)


_NEW_ATTEMPT = insert(SigninAttempt)
# The address's own block and its range's hold, in one read (locked on PostgreSQL: refused counts add up)
_BLOCKS_OF = select(AddressBlock).where(AddressBlock.source.in_(bindparam("keys", expanding=True))).with_for_update()


def admit(core: Core, source: str, email: str, switch: str | None = None) -> None:
    """Refuse (429) an address that is blocked or in backoff; let anyone else try the password. With
    ``switch`` (an operator's kill switch, ``incident``), refuse (503) first while it is on: read in the
    same transaction, as every try that is turned away is one write and nothing more."""
    if not _settings(core).enabled:  # the 7pay replay: every try goes to the password
        if switch is not None:
            incident.require_running(core, switch)
        return
    key, now = throttle_key(source), core.now()
    place = signin_attack.place_of(source)
    refusal: Throttled | None = None
    with core.transaction(durable=False) as session:  # writes only the record of a refusal (db.durable_commit)
        if switch is not None:
            incident.check_running(session, switch)
        blocks = {row.source: row for row in session.scalars(_BLOCKS_OF, {"keys": [key, place]})}
        block = blocks.get(key)
        if (barred := incident.blocking(session, source)) is not None:  # an operator's block (range, country)
            _held(session, key, now, AuditOutcome.BLOCKED, by=barred.kind)
            refusal = Throttled(incident.BLOCKED_RETRY_AFTER, incident.BLOCKED_MESSAGE)
        elif block is not None and now < block.blocked_until:
            block.refused += 1
            _held(session, key, now, AuditOutcome.BLOCKED, by=block.reason)
            wait = int((block.blocked_until - now).total_seconds()) + 1
            refusal = Throttled(wait, "Too many failed sign-ins from your network; try again later.")
        elif (
            hold := range_burst.holding(core.config.risk, blocks.get(place), email, source, now, session)
        ) is not None:
            hold.refused += 1
            _held(session, key, now, AuditOutcome.BLOCKED, by=range_burst.REASON)
            refusal = Throttled(int((hold.blocked_until - now).total_seconds()) + 1, range_burst.MESSAGE)
        elif (held := signin_attack.refusal(session, core.config.risk, email, source, now)) is not None:
            _record_attempt(session, core, source, email, THROTTLED, now)
            _held(session, key, now, AuditOutcome.THROTTLED, by=signin_attack.KIND)
            refusal = Throttled(60, held)
        else:
            count, last = _failures(session, key, _window_start(core, now))
            wait_until = last + timedelta(seconds=backoff_seconds(_settings(core), count)) if last else now
            if now < wait_until:
                _record_attempt(session, core, source, email, THROTTLED, now)
                _held(session, key, now, AuditOutcome.THROTTLED)
                wait = int((wait_until - now).total_seconds()) + 1
                refusal = Throttled(wait, "Too many failed sign-ins; wait before trying again.")
                if _block_if_list_attack(session, core, key, now) is not None:
                    refusal = Throttled(
                        _settings(core).list_attack_block_minutes * 60,
                        "Too many failed sign-ins from your network; try again later.",
                    )
    if refusal is not None:
        raise refusal


def account_locked(account: Account, now: datetime) -> bool:
    return account.signin_locked_until is not None and now < account.signin_locked_until


def settle(
    core: Core,
    source: str,
    email: str,
    account_id: int | None,
    ok: bool,
    what: str,
    *,
    password_was_right: bool = False,
    **detail: Any,
) -> None:
    """Record the outcome of a sign-in (``what`` names it in the audit: ``device.enroll``, ``session.start``);
    ``password_was_right`` for a failure at the second factor or a sign-in the risk rules refused (a sign of
    a leaked password); ``detail`` goes into the audit event (the risk rules' verdict and subject id)."""
    key, now = throttle_key(source), core.now()
    outcome = SUCCEEDED if ok else SIGNIN_FACTOR_FAILED if password_was_right else FAILED
    with core.transaction(durable=ok) as session:  # a refusal's record need not wait for the disk (db.durable_commit)
        if _settings(core).enabled:
            _record_attempt(session, core, source, email, outcome, now, account_id)
        target = f"account:{account_id}" if account_id is not None else "account:unknown"
        audit.record(
            session,
            at=now,
            actor=target if ok else "anonymous",
            action=what,
            target=target,
            result=AuditOutcome.SUCCEEDED if ok else AuditOutcome.FAILED,
            **detail,
        )
        if not _settings(core).enabled:
            return  # the 7pay replay: no lock, no block, no watching
        account = session.get(Account, account_id, with_for_update=True) if account_id is not None else None
        if account is not None:
            _count_on_account(session, core, account, ok, now)
        if ok and account_id is not None:
            signin_attack.remember_place(session, account_id, source, now)
        if not ok:
            _block_if_list_attack(session, core, key, now)
            session.flush()
            signin_attack.watch(session, core.config.risk, core.config.operator_email, now)
            range_burst.watch(session, core.config.risk, core.config.operator_email, source, now)
        _maybe_prune(session, core, now)


def _count_on_account(session: Session, core: Core, account: Account, ok: bool, now: datetime) -> None:
    settings = _settings(core)
    if ok:
        account.signin_failures = 0
        return
    if account_locked(account, now):
        return
    account.signin_failures = (account.signin_failures or 0) + 1
    if account.signin_failures < settings.account_max_failures:
        return
    account.signin_failures, account.signin_locked_until = 0, now + timedelta(minutes=settings.account_lock_minutes)
    actor = f"account:{account.id}"
    audit.record(
        session,
        at=now,
        actor="core",
        action="account.signin_locked",
        target=actor,
        result=AuditOutcome.LOCKED,
        until=account.signin_locked_until.isoformat(),
    )
    body = (
        f"There were {settings.account_max_failures} failed sign-ins to your possim wallet in a row, so signing in "
        f"with your password is paused until {account.signin_locked_until:%Y-%m-%d %H:%M} UTC.\n"
        "Your phone keeps working. If these were not you, reset your password now: a reset ends the pause.\n"
    )
    outbox.send(session, outbox.EMAIL, account.email, "Sign-in paused after failed attempts", body, now)


def unlock(account: Account) -> None:
    """A password reset ends a lock (PCI DSS 8.3.4: locked until an administrator or a reset)."""
    account.signin_failures, account.signin_locked_until = 0, None


def attempts_needed_since(core: Core, now: datetime) -> datetime:
    """The oldest sign-in attempt any window still reads (the throttle's, a range's burst, the list attack's)."""
    list_attack = timedelta(seconds=core.config.risk.signin_list_attack.window_seconds)
    return min(_window_start(core, now), now - range_burst.window(core.config.risk), now - list_attack)


def _maybe_prune(session: Session, core: Core, now: datetime) -> None:
    """Forget attempts older than every window that reads them, now and then (``retention`` does it too)."""
    session.flush()
    last_id = session.execute(select(func.max(SigninAttempt.id))).scalar_one() or 0
    if last_id % _PRUNE_EVERY == 0:
        session.execute(delete(SigninAttempt).where(SigninAttempt.at < attempts_needed_since(core, now)))


def limit_requests(core: Core, source: str, email: str, what: str) -> None:
    """Bound unauthenticated requests that send mail (sign-up, password reset) per address and window."""
    if not _settings(core).enabled:
        return  # the 7pay replay: no throttling
    key, now = throttle_key(source), core.now()
    with core.transaction() as session:
        block = session.get(AddressBlock, key)
        since = _window_start(core, now)
        query = select(func.count()).where(
            SigninAttempt.source == key, SigninAttempt.outcome == what, SigninAttempt.at >= since
        )
        sent = int(session.execute(query).scalar_one())
        if incident.blocking(session, source) is not None:  # an operator's block of a range or a country
            raise Throttled(incident.BLOCKED_RETRY_AFTER, incident.BLOCKED_MESSAGE)
        blocked = block is not None and now < block.blocked_until
        if not blocked and sent < _settings(core).reset_requests_per_window:
            _record_attempt(session, core, source, email, what, now)
            return
    raise Throttled(_settings(core).window_seconds, "Too many requests from your network; try again later.")
