"""Recovery codes: single-use stand-ins for the authenticator when the phone is lost.

Ten codes are issued when the e-mail address is verified (with the TOTP key) and again on request
(which voids the old ones). Each is 10 characters from a 31-letter alphabet without look-alikes, shown
as ``xxxxx-xxxxx`` (49 bits: a guess is refused long before it could succeed, as every wrong second
factor counts towards the TOTP lock). Only a keyed hash is kept; a used code is marked, never reused.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from payment_core import audit, notify
from payment_core.audit import AuditOutcome
from payment_core.core import Core
from payment_core.keys import keyed_hash
from payment_core.models import Account, RecoveryCode

ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
CODE_LENGTH = 10


def _normalise(code: str) -> str:
    return "".join(char for char in code.lower() if char.isalnum())


def looks_like_recovery_code(code: str) -> bool:
    """A recovery code has letters (a TOTP code is six digits)."""
    compact = _normalise(code)
    return len(compact) == CODE_LENGTH and not compact.isdigit()


def _hash(core: Core, account_id: int, code: str) -> str:
    return keyed_hash(core.config.server_key, "recovery-code", str(account_id), _normalise(code))


def issue(session: Session, core: Core, account_id: int, now: datetime) -> list[str]:
    """A new set of codes for the account (in the caller's transaction); any earlier unused ones are void."""
    session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None))
        .values(used_at=now)
    )
    codes = []
    for _ in range(core.config.sessions.recovery_codes):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(account_id=account_id, code_hash=_hash(core, account_id, raw), created_at=now))
    audit.record(
        session,
        at=now,
        actor=f"account:{account_id}",
        action="recovery_codes.issue",
        target=f"account:{account_id}",
        result=AuditOutcome.SUCCEEDED,
        count=len(codes),
    )
    return codes


def use(session: Session, core: Core, account: Account, code: str, now: datetime) -> bool:
    """Spend one unused code of ``account`` (a row the caller holds locked); False if it is not one."""
    if not looks_like_recovery_code(code):
        return False
    wanted = _hash(core, account.id, code)
    unused = session.scalars(
        select(RecoveryCode).where(RecoveryCode.account_id == account.id, RecoveryCode.used_at.is_(None))
    ).all()
    match = None
    for row in unused:  # every stored hash is compared, in constant time each
        if hmac.compare_digest(row.code_hash, wanted):
            match = row
    if match is None:
        return False
    match.used_at = now
    left = len(unused) - 1
    audit.record(
        session,
        at=now,
        actor=f"account:{account.id}",
        action="recovery_code.use",
        target=f"account:{account.id}",
        result=AuditOutcome.SUCCEEDED,
        remaining=left,
    )
    notify.notify(
        session,
        account.id,
        notify.SECURITY,
        f"A recovery code was used to sign in; {left} left. Make new ones if that was not you.",
        now,
    )
    return True


def remaining(core: Core, account_id: int) -> int:
    with core.transaction() as session:
        query = select(func.count()).where(RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None))
        return int(session.execute(query).scalar_one())
