"""Forced password resets (issue 13, the lever 7pay pulled on day 30): for one account, a list, or everyone.

Each account named loses its password at once (it is replaced by the hash of a random secret that is
thrown away, so the old password fails like any wrong one, with the same argon2 work), every session of
it ends (and with ``revoke_devices`` every device), and a reset code goes to its registered address
through the reset flow (``resets.force_reset``; the code works like one the owner asked for). All of it
happens in one transaction, audited per account with the operator as actor.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from payment_core import accounts, audit, resets
from payment_core.audit import AuditOutcome
from payment_core.core import Core
from payment_core.models import Account
from protocol import ErrorCode, ProtocolError

MAX_LISTED = 1000


def force_resets(
    core: Core, account_ids: Sequence[int] | None, actor: str, *, revoke_devices: bool = False
) -> dict[str, Any]:
    """Force a reset of ``account_ids`` (``None``: every account). An unknown id is 404 and nothing changes."""
    if account_ids is not None and not 1 <= len(account_ids) <= MAX_LISTED:
        message = f"account_ids: 1 to {MAX_LISTED} accounts (or everyone)"
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, message, param="account_ids")
    unusable = accounts.hasher(core, shed=False).hash(secrets.token_urlsafe(32))  # nobody keeps this secret
    now = core.now()
    with core.transaction() as session:
        query = select(Account).order_by(Account.id).with_for_update()
        if account_ids is not None:
            query = query.where(Account.id.in_(set(account_ids)))
        found = session.scalars(query).all()
        missing = sorted(set(account_ids or ()) - {account.id for account in found})
        if missing:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"No account {missing[0]}.", param="account_ids")
        ended = sum(
            resets.force_reset(session, core, account, unusable, actor, now, revoke_devices) for account in found
        )
        audit.record(
            session,
            at=now,
            actor=actor,
            action="incident.force_reset",
            target="account:all" if account_ids is None else f"accounts:{len(found)}",
            result=AuditOutcome.SUCCEEDED,
            accounts=len(found),
            sessions_ended=ended,
            revoke_devices=revoke_devices,
        )
    return {"accounts": len(found), "sessions_ended": ended, "devices_revoked": revoke_devices}
