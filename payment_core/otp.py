"""Second factors: the account's TOTP (RFC 6238) and the e-mail verification code.

TOTP: the secret is derived from the server key and a per-account salt (``keys.totp_secret``), never
stored. A code is accepted for the current 30 s step or one step either side, compared in constant
time, and only for a step later than the last one accepted: a code that worked once (enrollment, a
top-up) is refused if replayed, even within its window (RFC 6238, section 5.2). After
``TOTP_MAX_FAILURES`` wrong codes in a row the account takes no code for ``TOTP_LOCK_MINUTES``: six
digits must not be guessable by a phone already signed in.

E-mail codes: six random digits, kept only as an HMAC under the server key, valid for 15 minutes and
burnt after ``EMAIL_CODE_MAX_TRIES`` wrong tries. A new one (a sign-up, a sign-up again with the same
unverified address, a resend) is mailed at most once a minute and ``EMAIL_CODES_PER_DAY`` times a day to
one address, and one address takes at most ``EMAIL_TRIES_PER_DAY`` wrong codes a day, whatever codes were
mailed: signing up again does not buy more guesses. The day's counts are read from the audit trail (the
mails sent and the wrong tries are audited anyway, and it is never pruned). Every refusal is the answer
any other failure gets (the sign-up's 202 was sent before this work; a wrong code is 401), so a cap says
nothing about whether an address has an account. The code reaches the user only through the outbox (the
simulated mailbox) and is never logged or returned. The mail holds nothing the signer-up typed but the
address: whoever signs up may name anyone's address, and that mailbox must not receive their text.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payment_core import audit, outbox, recovery
from payment_core.audit import AuditOutcome
from payment_core.core import Core
from payment_core.keys import keyed_hash, totp_secret
from payment_core.models import Account, AuditEvent, EmailVerification
from protocol import ErrorCode, ProtocolError

ISSUER = "possim"
TOTP_MAX_FAILURES = 10
TOTP_LOCK_MINUTES = 15
EMAIL_CODE_MINUTES = 15
EMAIL_CODE_MAX_TRIES = 5
EMAIL_RESEND_SECONDS = 60
EMAIL_CODES_PER_DAY = 5  # codes mailed to one address in 24 hours (sign-up, sign-up again, resend)
EMAIL_TRIES_PER_DAY = 10  # wrong codes one address takes in 24 hours, across all the codes it was sent
_DAY = timedelta(days=1)
CODE_SENT, CODE_CHECK = "account.verify_code_sent", "account.verify"  # their audit actions, counted per day


# -- TOTP ---------------------------------------------------------------------------------------


def account_totp_secret(core: Core, account: Account) -> str:
    if account.totp_salt is None:
        raise ProtocolError(ErrorCode.CREDENTIALS_INVALID)
    return totp_secret(core.config.server_key, account.id, account.totp_salt)


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (±1 around ``now``) whose code is ``code``; every candidate is compared."""
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    found = None
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def accept_totp(session: Session, core: Core, account: Account, code: str | None, now: datetime) -> bool:
    """Check ``code`` for ``account`` (a row the caller holds locked) and record the outcome in the session.

    The caller commits either way (a failure must count) and refuses after the commit when this is False.
    """
    if _locked(session, account, now):
        return False
    step = None
    if code is not None and account.totp_salt is not None:
        step = _matching_step(account_totp_secret(core, account), code, now)
    replayed = step is not None and account.totp_last_step is not None and step <= account.totp_last_step
    if step is None or replayed:
        _count_failure(account, now)
        result = AuditOutcome.REPLAYED if replayed else AuditOutcome.REJECTED
        audit.record(
            session,
            at=now,
            actor=f"account:{account.id}",
            action="otp.check",
            target=f"account:{account.id}",
            result=result,
        )
        return False
    account.totp_last_step, account.totp_failures, account.totp_locked_until = step, 0, None
    return True


def _count_failure(account: Account, now: datetime) -> None:
    """One more wrong second factor (TOTP or recovery code); the tenth locks the checks for a while."""
    account.totp_failures = (account.totp_failures or 0) + 1
    if account.totp_failures >= TOTP_MAX_FAILURES:
        account.totp_locked_until, account.totp_failures = now + timedelta(minutes=TOTP_LOCK_MINUTES), 0


def _locked(session: Session, account: Account, now: datetime) -> bool:
    """Whether second-factor checks are locked for ``account``; a locked try is audited."""
    if account.totp_locked_until is None or now >= account.totp_locked_until:
        return False
    audit.record(
        session,
        at=now,
        actor=f"account:{account.id}",
        action="otp.check",
        target=f"account:{account.id}",
        result=AuditOutcome.LOCKED,
    )
    return True


def accept_second_factor(session: Session, core: Core, account: Account, code: str | None, now: datetime) -> bool:
    """A TOTP code, or one of the account's recovery codes (signing in on a new device only).

    A wrong recovery code counts towards the same lock as a wrong TOTP code."""
    if code is None or not recovery.looks_like_recovery_code(code):
        return accept_totp(session, core, account, code, now)
    if _locked(session, account, now):
        return False
    if recovery.use(session, core, account, code, now):
        account.totp_failures = 0
        return True
    _count_failure(account, now)
    audit.record(
        session,
        at=now,
        actor=f"account:{account.id}",
        action="recovery_code.use",
        target=f"account:{account.id}",
        result=AuditOutcome.REJECTED,
    )
    return False


def require_totp(core: Core, account_id: int, code: str | None) -> None:
    """A fresh TOTP code for this account, or ``CREDENTIALS_INVALID`` (the failure is counted and audited)."""
    with core.transaction() as session:
        account = session.get(Account, account_id, with_for_update=True)
        accepted = account is not None and accept_totp(session, core, account, code, core.now())
    if not accepted:
        raise ProtocolError(ErrorCode.CREDENTIALS_INVALID)


# -- e-mail verification ------------------------------------------------------------------------


def _code_hash(core: Core, account_id: int, code: str) -> str:
    return keyed_hash(core.config.server_key, "email-code", str(account_id), code)


def events_today(session: Session, account_id: int, action: str, result: AuditOutcome, now: datetime) -> int:
    """How many ``action`` events ended in ``result`` for the account in the last 24 hours."""
    query = select(func.count()).where(
        AuditEvent.action == action,
        AuditEvent.at > now - _DAY,
        AuditEvent.target == f"account:{account_id}",
        AuditEvent.result == result,
    )
    return int(session.execute(query).scalar_one())


def may_send_email_code(session: Session, account: Account, now: datetime) -> bool:
    """Whether a new code may be mailed to the account's address now: a minute after the last one, fewer than
    ``EMAIL_CODES_PER_DAY`` in 24 hours, and while its wrong tries of the day are not used up (a code that
    could not be checked is not worth a mail). A refusal is audited (``account.verify_code_sent``, throttled)."""
    pending = session.get(EmailVerification, account.id)
    too_soon = pending is not None and now < pending.sent_at + timedelta(seconds=EMAIL_RESEND_SECONDS)
    sent_today = events_today(session, account.id, CODE_SENT, AuditOutcome.SUCCEEDED, now)
    wrong_today = events_today(session, account.id, CODE_CHECK, AuditOutcome.REJECTED, now)
    if not too_soon and sent_today < EMAIL_CODES_PER_DAY and wrong_today < EMAIL_TRIES_PER_DAY:
        return True
    audit.record(
        session,
        at=now,
        actor="core",
        action=CODE_SENT,
        target=f"account:{account.id}",
        result=AuditOutcome.THROTTLED,
        sent_today=sent_today,
        wrong_today=wrong_today,
        too_soon=too_soon,
    )
    return False


def send_email_code(session: Session, core: Core, account: Account, now: datetime) -> None:
    """A new six-digit code replaces any earlier one; it goes to the outbox only (callers other than a new
    account's first ask :func:`may_send_email_code` first)."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    pending = session.get(EmailVerification, account.id)
    if pending is None:
        pending = EmailVerification(account_id=account.id)
        session.add(pending)
    pending.code_hash = _code_hash(core, account.id, code)
    pending.expires_at = now + timedelta(minutes=EMAIL_CODE_MINUTES)
    pending.attempts, pending.sent_at = 0, now
    body = (  # no display name: the address is not proven yet, and its mailbox must not get the signer's text
        f"Hello,\n\nyour possim verification code is {code}.\n"
        f"It expires in {EMAIL_CODE_MINUTES} minutes. If you did not sign up, ignore this mail.\n"
    )
    outbox.send(session, outbox.EMAIL, account.email, "Your possim verification code", body, now)
    audit.record(
        session,
        at=now,
        actor="core",
        action=CODE_SENT,
        target=f"account:{account.id}",
        result=AuditOutcome.SUCCEEDED,
    )


def _find(session: Session, email: str) -> Account | None:
    query = select(Account).where(Account.email == email.strip().lower()).with_for_update()
    return session.scalars(query).one_or_none()


def verify_email(core: Core, email: str, code: str) -> Account:
    """Mark the address verified with the mailed code; any failure is ``CREDENTIALS_INVALID``."""
    now = core.now()
    with core.transaction() as session:
        account = _find(session, email)
        pending = session.get(EmailVerification, account.id) if account is not None else None
        given = _code_hash(core, account.id if account else 0, code)
        ok, capped = False, False
        if account is not None and pending is not None and pending.code_hash is not None:
            capped = events_today(session, account.id, CODE_CHECK, AuditOutcome.REJECTED, now) >= EMAIL_TRIES_PER_DAY
            if now >= pending.expires_at or capped:
                pending.code_hash = None  # expired, or the address has had its guesses for the day
            else:
                ok = hmac.compare_digest(pending.code_hash, given)
                if ok:
                    pending.code_hash, account.email_verified_at = None, now
                else:
                    pending.attempts += 1
                    if pending.attempts >= EMAIL_CODE_MAX_TRIES:
                        pending.code_hash = None  # burnt: ask for a new one
        if account is not None:
            result = AuditOutcome.SUCCEEDED if ok else AuditOutcome.LOCKED if capped else AuditOutcome.REJECTED
            audit.record(
                session,
                at=now,
                actor=f"account:{account.id}",
                action=CODE_CHECK,
                target=f"account:{account.id}",
                result=result,
            )
    if not ok or account is None:
        raise ProtocolError(ErrorCode.CREDENTIALS_INVALID)
    return account


def resend_email_code(core: Core, email: str) -> None:
    """Send a new code to an unverified account when :func:`may_send_email_code`; silent about everything else."""
    now = core.now()
    with core.transaction() as session:
        account = _find(session, email)
        if account is None or account.email_verified_at is not None:
            return
        if may_send_email_code(session, account, now):
            send_email_code(session, core, account, now)
