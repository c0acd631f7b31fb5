"""Operators' credentials for the admin API, apart from terminals' and devices'.

A key is made on the server's own machine (``possim admin key-add``), which writes its token once to a
0600 file; the database keeps only ``keyed_hash(server key, "admin-key", key id, secret)``, so a copy of
the database gives no working token. A token is ``<key id>.<secret>`` (``adm_<hex>.<43 characters>``),
sent as ``Authorization: Bearer <token>`` on ``/v1/admin/...``; the hash is compared in constant time, and
an unknown key id costs the same hash. A terminal's or a device's signature, or a wallet session's token,
is never an admin credential. Scopes: ``read`` lists (switches, blocks, alerts); ``operator`` does
everything. Every key made, revoked or refused is audited; the token itself never is.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from payment_core import audit
from payment_core.audit import AuditOutcome
from payment_core.core import Core
from payment_core.keys import keyed_hash
from payment_core.models import AdminKey
from protocol import ErrorCode, ProtocolError

READ, OPERATOR = "read", "operator"
SCOPES = (READ, OPERATOR)
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")
_TOKEN = re.compile(r"^(adm_[0-9a-f]{24})\.([A-Za-z0-9_\-]{43})$")
_NO_SUCH_KEY = "adm_" + "0" * 24


@dataclass(frozen=True)
class NewKey:
    key: AdminKey
    token: str = field(repr=False)  # shown once, never stored


@dataclass(frozen=True)
class Admin:
    """Who is calling the admin API: the key's id, its operator's name and its scope."""

    key_id: str
    name: str
    scope: str

    @property
    def actor(self) -> str:
        return f"admin:{self.name}"

    def require(self, scope: str) -> None:
        """403 ``forbidden`` unless the key's scope allows ``scope``."""
        if scope == OPERATOR and self.scope != OPERATOR:
            raise ProtocolError(ErrorCode.FORBIDDEN, "This admin key is read-only.")


def _hash(core: Core, key_id: str, secret: str) -> str:
    return keyed_hash(core.config.server_key, "admin-key", key_id, secret)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "name: 1-40 of A-Z a-z 0-9 _ . -", param="name")
    return name


def create_key(core: Core, name: str, scope: str, actor: str) -> NewKey:
    """A new admin key (409 ``account_exists`` if the name is taken); its token is returned once."""
    name = check_name(name)
    if scope not in SCOPES:
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "scope: read or operator", param="scope")
    key_id, secret, now = f"adm_{secrets.token_hex(12)}", secrets.token_urlsafe(32), core.now()
    row = AdminKey(
        id=key_id, name=name, scope=scope, token_hash=_hash(core, key_id, secret), created_at=now, created_by=actor[:60]
    )
    try:
        with core.transaction() as session:
            session.add(row)
            session.flush()
            audit.record(
                session,
                at=now,
                actor=actor,
                action="admin.key_add",
                target=f"admin_key:{key_id}",
                result=AuditOutcome.SUCCEEDED,
                name=name,
                scope=scope,
            )
    except IntegrityError:
        raise ProtocolError(ErrorCode.ACCOUNT_EXISTS, "An admin key with this name exists.", param="name") from None
    return NewKey(row, f"{key_id}.{secret}")


def revoke_key(core: Core, name: str, actor: str) -> AdminKey:
    now = core.now()
    with core.transaction() as session:
        row = session.scalars(select(AdminKey).where(AdminKey.name == name).with_for_update()).one_or_none()
        if row is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, param="name")
        if row.revoked_at is None:
            row.revoked_at = now
        audit.record(
            session,
            at=now,
            actor=actor,
            action="admin.key_revoke",
            target=f"admin_key:{row.id}",
            result=AuditOutcome.SUCCEEDED,
        )
        return row


def key_view(row: AdminKey) -> dict[str, Any]:
    return {
        "key_id": row.id,
        "name": row.name,
        "scope": row.scope,
        "created": row.created_at.isoformat(),
        "created_by": row.created_by,
        "revoked": row.revoked_at.isoformat() if row.revoked_at else None,
    }


def list_keys(core: Core) -> list[dict[str, Any]]:
    with core.read() as session:
        return [key_view(row) for row in session.scalars(select(AdminKey).order_by(AdminKey.created_at))]


def authenticate(core: Core, authorization: str | None) -> Admin:
    """The admin a ``Bearer`` token names, or 401 ``token_invalid`` (the refusal is audited, the token never)."""
    scheme, _, token = (authorization or "").partition(" ")
    match = _TOKEN.fullmatch(token.strip()) if scheme.lower() == "bearer" else None
    key_id, secret = (match.group(1), match.group(2)) if match else (_NO_SUCH_KEY, "")
    with core.read() as session:
        row = session.get(AdminKey, key_id) if match else None
        stored = row.token_hash if row is not None else _hash(core, _NO_SUCH_KEY, "no such key")
        good = hmac.compare_digest(stored, _hash(core, key_id, secret)) and row is not None
        if good and row is not None and row.revoked_at is None:
            return Admin(row.id, row.name, row.scope)
    with core.transaction() as session:
        audit.record(
            session,
            at=core.now(),
            actor="anonymous",
            action="admin.auth",
            target=f"admin_key:{key_id if row is not None else 'unknown'}",
            result=AuditOutcome.REFUSED_TOKEN if row is None or not good else AuditOutcome.REFUSED_REVOKED,
        )
    raise ProtocolError(ErrorCode.TOKEN_INVALID)


def record_read(core: Core, admin: Admin, what: str) -> None:
    """Audit a look through the admin API (what was listed, by whom)."""
    with core.transaction() as session:
        audit.record(
            session, at=core.now(), actor=admin.actor, action="admin.read", target=what, result=AuditOutcome.SUCCEEDED
        )
