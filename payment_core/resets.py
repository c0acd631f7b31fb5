"""Password reset, done the way 7pay did not.

- The request names only the account's e-mail (the body takes no other field), the mail goes to the
  address on record, and the answer is the same 202 whether or not an account exists; the work is
  queued with the answer and done after it (``payment_core.queued_work``), so its time says nothing either. (7pay's form took a second address
  to mail the code to; only the 7pay replay's core, ``Defences.reset_mail_to_own_address_only`` off,
  opens that door again.)
- The token is 192 random bits, kept only as a keyed hash, valid for ``SessionPolicy.reset_token_minutes``
  (15). A newer request does not void the codes already mailed: anyone may ask, and if asking voided the
  owner's code, a stranger asking every few minutes would keep the owner from ever resetting (and, with
  ten wrong passwords every half hour, out of the account). Every code stays good until it expires or
  one of them is used; then all of them are void.
- An account gets at most ``Throttling.reset_mails_per_account_hour`` reset mails an hour, whoever asks
  from wherever (the per-address cap, ``throttle.limit_requests``, is passed by rotating addresses). A
  request over it is dropped silently, with the same 202, audited as ``throttled``; but a mail is always
  sent when none of the account's codes is still good, so the cap cannot leave the owner without one.
- Setting the new password (which must pass the policy) ends every session, revokes every device (their
  payment codes fail from then on: the phone signs in again with password and second factor), ends a
  sign-in lock, and tells the owner by e-mail and on the wallet.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from payment_core import accounts, audit, devices, outbox, sessions, throttle
from payment_core.audit import AuditOutcome
from payment_core.core import Core
from payment_core.keys import keyed_hash
from payment_core.models import Account, PasswordReset
from protocol import ErrorCode, ProtocolError

RESET_ANSWER = "If that address has a possim wallet, a message with a reset code is on its way to it."
TOKEN_BYTES = 24
_CAP_WINDOW = timedelta(hours=1)  # the window of Throttling.reset_mails_per_account_hour


def _token_hash(core: Core, token: str) -> str:
    return keyed_hash(core.config.server_key, "password-reset", "", token.strip())


def request_reset(core: Core, email: str, send_to: str | None = None) -> None:
    """Mail a reset token to the account's registered address, if there is such an account. ``send_to`` is
    the second address of 7pay's form: only a core with ``Defences.reset_mail_to_own_address_only`` off
    passes one (the API refuses the field otherwise), and the code goes there instead."""
    now = core.now()
    minutes = core.config.sessions.reset_token_minutes
    with core.transaction() as session:
        account = session.scalars(
            select(Account).where(Account.email == email.strip().lower()).with_for_update()
        ).one_or_none()
        if account is None:
            audit.record(
                session,
                at=now,
                actor="anonymous",
                action="password.reset_request",
                target="account:unknown",
                result=AuditOutcome.NO_ACCOUNT,
            )
            return
        recent, live = _recent_and_live(session, account.id, now)
        if recent >= core.config.throttling.reset_mails_per_account_hour and live:
            audit.record(
                session,
                at=now,
                actor="anonymous",
                action="password.reset_request",
                target=f"account:{account.id}",
                result=AuditOutcome.THROTTLED,
                mails_this_hour=recent,
                codes_still_good=live,
            )
            return
        token = _new_token(session, core, account, now)
        body = (
            f"Someone asked to reset the password of your possim wallet at {now:%Y-%m-%d %H:%M} UTC.\n\n"
            f"Reset code: {token}\n\n"
            f"Enter it in the wallet within {minutes} minutes; it works once. If you asked more than once, any\n"
            "code that has not expired works, and using one voids the others. If it was not you, ignore this\n"
            "message: your password stays as it is.\n"
        )
        to = send_to if send_to is not None and not core.config.defences.reset_mail_to_own_address_only else None
        outbox.send(session, outbox.EMAIL, to or account.email, "Reset your possim password", body, now)
        audit.record(
            session,
            at=now,
            actor="anonymous",
            action="password.reset_request",
            target=f"account:{account.id}",
            result=AuditOutcome.SENT,
            **({"sent_to_another_address": True} if to is not None and to != account.email else {}),
        )


def _new_token(session: Session, core: Core, account: Account, now: datetime) -> str:
    """A new reset code for the account, kept as its keyed hash; the code itself is for the mail only."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires = now + timedelta(minutes=core.config.sessions.reset_token_minutes)
    session.add(
        PasswordReset(account_id=account.id, token_hash=_token_hash(core, token), created_at=now, expires_at=expires)
    )
    return token


def force_reset(
    session: Session, core: Core, account: Account, unusable_hash: str, actor: str, now: datetime, revoke_devices: bool
) -> int:
    """An operator's forced reset (``possim admin force-reset``), in the caller's transaction: the old password
    stops working (``unusable_hash`` is a hash of a secret nobody keeps), every session ends (and, with
    ``revoke_devices``, every device), and a reset code is mailed as by :func:`request_reset`, whatever the
    hourly cap. Returns how many sessions ended."""
    account.password_hash, account.password_changed_at = unusable_hash, now
    ended = sessions.revoke_all(session, account.id, now, "password_reset_forced")
    revoked = devices.revoke_all_devices(session, account.id, actor, now) if revoke_devices else 0
    token = _new_token(session, core, account, now)
    minutes = core.config.sessions.reset_token_minutes
    body = (
        f"For your security, the password of your possim wallet was reset at {now:%Y-%m-%d %H:%M} UTC: your old\n"
        "password no longer works and you have been signed out. Your balance is safe.\n\n"
        f"Reset code: {token}\n\n"
        f"Enter it in the wallet within {minutes} minutes with a new password; it works once. If it expires, ask\n"
        "for a new code from the wallet's password reset.\n"
    )
    outbox.send(session, outbox.EMAIL, account.email, "Reset your possim password (required)", body, now)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="password.reset_forced",
        target=f"account:{account.id}",
        result=AuditOutcome.SENT,
        sessions_ended=ended,
        devices_revoked=revoked,
    )
    return ended


def _recent_and_live(session: Session, account_id: int, now: datetime) -> tuple[int, int]:
    """How many reset codes the account was sent in the last hour, and how many of its codes are still good."""
    mine = PasswordReset.account_id == account_id
    recent = select(func.count()).where(mine, PasswordReset.created_at > now - _CAP_WINDOW)
    live = select(func.count()).where(mine, PasswordReset.used_at.is_(None), PasswordReset.expires_at > now)
    return int(session.execute(recent).scalar_one()), int(session.execute(live).scalar_one())


def _live_reset(core: Core, token: str) -> tuple[PasswordReset, Account] | None:
    now = core.now()
    with core.transaction() as session:
        reset = session.scalars(
            select(PasswordReset).where(PasswordReset.token_hash == _token_hash(core, token))
        ).one_or_none()
        if reset is None or reset.used_at is not None or now >= reset.expires_at:
            return None
        account = session.get(Account, reset.account_id)
        return (reset, account) if account is not None else None


def complete_reset(core: Core, token: str, new_password: str) -> Account:
    """Set the new password with a live token (see the module docstring); any bad token is the same 401."""
    live = _live_reset(core, token)
    if live is None:
        with core.transaction() as session:
            audit.record(
                session,
                at=core.now(),
                actor="anonymous",
                action="password.reset",
                target="account:unknown",
                result=AuditOutcome.REFUSED_TOKEN,
            )
        raise ProtocolError(ErrorCode.CREDENTIALS_INVALID, param="token")
    reset, account = live
    accounts.check_new(core, new_password, account.email, account.phone)
    new_hash = accounts.hasher(core).hash(new_password)
    now = core.now()
    with core.transaction() as session:
        fresh = session.get(PasswordReset, reset.id, with_for_update=True)
        account_row = session.get(Account, account.id, with_for_update=True)
        if fresh is None or account_row is None or fresh.used_at is not None or now >= fresh.expires_at:
            raise ProtocolError(ErrorCode.CREDENTIALS_INVALID, param="token")
        if not hmac.compare_digest(fresh.token_hash, _token_hash(core, token)):
            raise ProtocolError(ErrorCode.CREDENTIALS_INVALID, param="token")
        fresh.used_at = now
        others = (PasswordReset.account_id == account_row.id, PasswordReset.id != fresh.id)
        voided = session.scalars(
            update(PasswordReset)
            .where(*others, PasswordReset.used_at.is_(None), PasswordReset.expires_at > now)
            .values(used_at=now)
            .returning(PasswordReset.id)
        ).all()
        account_row.password_hash, account_row.password_changed_at = new_hash, now
        throttle.unlock(account_row)
        actor = f"account:{account_row.id}"
        revoked = devices.revoke_all_devices(session, account_row.id, actor, now)
        ended = sessions.revoke_all(session, account_row.id, now, "password_reset")
        audit.record(
            session,
            at=now,
            actor=actor,
            action="password.reset",
            target=actor,
            result=AuditOutcome.SUCCEEDED,
            devices_revoked=revoked,
            sessions_ended=ended,
            other_codes_voided=len(voided),
        )
        accounts.password_changed_notice(session, account_row, now)
        return account_row
