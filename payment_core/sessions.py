"""Signed-in sessions: short-lived access tokens and rotating refresh tokens with reuse detection.

A sign-in (a new device with password and second factor, or an enrolled device with its password)
starts an ``AuthSession`` and answers two tokens:

- an **access token**: a JWT (PyJWT, HS256) with the account, the session and a ``exp`` of
  ``SessionPolicy.access_token_seconds`` (5 minutes), signed with a key derived from the server key.
  Each use also checks that its session is still live, so a sign-out takes effect at once.
- a **refresh token**: 256 random bits, kept only as a keyed hash. Using it gives a new pair and marks
  it used (rotation). A used refresh token presented again means two parties hold it, one of them a
  thief: the whole session is revoked (OAuth 2.0 Security BCP, RFC 9700 section 4.14.2), audited,
  and the owner is told.

"Sign out everywhere" and a password reset revoke every session of the account; a password change ends
every other session and, unless the owner says not to, revokes every other device (:func:`revoke_devices`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_core import audit, notify
from payment_core.audit import AuditOutcome
from payment_core.core import Core, new_id
from payment_core.keys import derive_secret, keyed_hash
from payment_core.models import AuthSession, Device, RefreshToken
from protocol import ErrorCode, ProtocolError

ISSUER = "possim-core"
AUDIENCE = "possim-wallet"
_ALGORITHM = "HS256"
REFRESH_PREFIX = "rt_"


@dataclass(frozen=True)
class Tokens:
    session_id: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int

    def view(self) -> dict[str, Any]:
        return {
            "token_type": "Bearer",
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_in": self.expires_in,
            "session_id": self.session_id,
        }


def _signing_key(core: Core) -> bytes:
    return derive_secret(core.config.server_key, "access-token", "v1", b"")


def _refresh_hash(core: Core, token: str) -> str:
    return keyed_hash(core.config.server_key, "refresh-token", "", token)


def _access_token(core: Core, auth: AuthSession, now: datetime) -> str:
    lifetime = core.config.sessions.access_token_seconds
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(auth.account_id),
        "sid": auth.id,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + lifetime,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, _signing_key(core), algorithm=_ALGORITHM)


def _issue(session: Session, core: Core, auth: AuthSession, now: datetime) -> Tokens:
    refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
    expires = min(now + timedelta(days=core.config.sessions.refresh_token_days), auth.expires_at)
    session.add(
        RefreshToken(token_hash=_refresh_hash(core, refresh), session_id=auth.id, issued_at=now, expires_at=expires)
    )
    return Tokens(auth.id, _access_token(core, auth, now), refresh, core.config.sessions.access_token_seconds)


def start(session: Session, core: Core, account_id: int, device_id: int | None, now: datetime) -> Tokens:
    """A new session for a sign-in the caller has just accepted, in the caller's transaction."""
    days = core.config.sessions.session_max_days
    auth = AuthSession(
        id=new_id("sess"),
        account_id=account_id,
        device_id=device_id,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(auth)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=f"account:{account_id}",
        action="session.start",
        target=f"session:{auth.id}",
        result=AuditOutcome.SUCCEEDED,
        device_id=device_id,
    )
    return _issue(session, core, auth, now)


def _revoke(session: Session, auth: AuthSession, now: datetime, reason: str) -> None:
    if auth.revoked_at is None:
        auth.revoked_at, auth.revoke_reason = now, reason


def refresh(core: Core, token: str) -> Tokens:
    """A new token pair for a live refresh token; a reused one ends its session (see the module docstring)."""
    now = core.now()
    reused = False
    tokens: Tokens | None = None
    with core.transaction() as session:
        found = session.get(RefreshToken, _refresh_hash(core, token), with_for_update=True)
        auth = session.get(AuthSession, found.session_id, with_for_update=True) if found else None
        if found is None or auth is None:
            pass
        elif found.used_at is not None:
            reused = auth.revoked_at is None
            _revoke(session, auth, now, "refresh_reuse")
            result = AuditOutcome.REUSE_DETECTED if reused else AuditOutcome.REFUSED_REVOKED
            audit.record(
                session,
                at=now,
                actor=f"account:{auth.account_id}",
                action="session.refresh",
                target=f"session:{auth.id}",
                result=result,
            )
            if reused:
                notify.notify(
                    session,
                    auth.account_id,
                    notify.SECURITY,
                    "A sign-in was ended: its refresh token was used twice, so it may have been copied.",
                    now,
                )
        elif auth.revoked_at is not None or now >= found.expires_at or now >= auth.expires_at:
            audit.record(
                session,
                at=now,
                actor=f"account:{auth.account_id}",
                action="session.refresh",
                target=f"session:{auth.id}",
                result=AuditOutcome.REFUSED_EXPIRED if auth.revoked_at is None else AuditOutcome.REFUSED_REVOKED,
            )
        else:
            found.used_at = now
            tokens = _issue(session, core, auth, now)
            audit.record(
                session,
                at=now,
                actor=f"account:{auth.account_id}",
                action="session.refresh",
                target=f"session:{auth.id}",
                result=AuditOutcome.SUCCEEDED,
            )
    if tokens is None:
        raise ProtocolError(ErrorCode.TOKEN_INVALID)
    return tokens


def authenticate(core: Core, authorization: str | None) -> AuthSession:
    """The live session an ``Authorization: Bearer`` access token names, or ``TOKEN_INVALID``."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ProtocolError(ErrorCode.TOKEN_INVALID)
    try:
        claims = jwt.decode(
            token.strip(),
            _signing_key(core),
            algorithms=[_ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "sid"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        raise ProtocolError(ErrorCode.TOKEN_INVALID) from None
    now = core.now()
    # Expiry is checked against the core's clock (injectable), not the library's.
    if not isinstance(claims.get("exp"), int) or now.timestamp() >= claims["exp"]:
        raise ProtocolError(ErrorCode.TOKEN_INVALID)
    with core.transaction() as session:
        auth = session.get(AuthSession, str(claims["sid"]))
    if auth is None or auth.revoked_at is not None or now >= auth.expires_at or str(auth.account_id) != claims["sub"]:
        raise ProtocolError(ErrorCode.TOKEN_INVALID)
    return auth


def end(core: Core, auth: AuthSession) -> None:
    """Sign out of this one session."""
    now = core.now()
    with core.transaction() as session:
        live = session.get(AuthSession, auth.id, with_for_update=True)
        if live is not None:
            _revoke(session, live, now, "signed_out")
            audit.record(
                session,
                at=now,
                actor=f"account:{live.account_id}",
                action="session.end",
                target=f"session:{live.id}",
                result=AuditOutcome.SUCCEEDED,
            )


def revoke_all(session: Session, account_id: int, now: datetime, reason: str, keep: str | None = None) -> int:
    """End every live session of the account (but ``keep``), in the caller's transaction; how many ended."""
    query = select(AuthSession).where(AuthSession.account_id == account_id, AuthSession.revoked_at.is_(None))
    if keep is not None:
        query = query.where(AuthSession.id != keep)
    live = session.scalars(query.with_for_update()).all()
    for auth in live:
        _revoke(session, auth, now, reason)
    ended = len(live)
    audit.record(
        session,
        at=now,
        actor=f"account:{account_id}",
        action="session.revoke_all",
        target=f"account:{account_id}",
        result=AuditOutcome.SUCCEEDED,
        sessions=ended,
        reason=reason,
    )
    return int(ended)


def revoke_devices(session: Session, account_id: int, actor: str, now: datetime, keep: int | None = None) -> int:
    """Revoke every active device of the account but ``keep``, in the caller's transaction; how many.

    A revoked device's payment codes and signed requests fail from then on: to use it again its owner
    signs in on it as on a new phone, with the password and the second factor. Its sessions are not ended
    here: the caller ends them (:func:`revoke_all`)."""
    query = select(Device).where(Device.account_id == account_id, Device.status == "active")
    if keep is not None:
        query = query.where(Device.id != keep)
    devices = session.scalars(query.with_for_update()).all()
    for device in devices:
        device.status, device.revoked_at = "revoked", now
        audit.record(
            session,
            at=now,
            actor=actor,
            action="device.revoke",
            target=f"device:{device.id}",
            result=AuditOutcome.SUCCEEDED,
            everywhere=keep is None,
        )
    return len(devices)


def live_sessions(core: Core, account_id: int) -> list[AuthSession]:
    now = core.now()
    with core.transaction() as session:
        rows = session.scalars(
            select(AuthSession).where(AuthSession.account_id == account_id, AuthSession.revoked_at.is_(None))
        ).all()
    return [row for row in rows if now < row.expires_at]
