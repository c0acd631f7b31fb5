"""Incident controls (issue 13): the levers an operator pulls at once when accounts are being taken over.

7pay stopped its incident piecemeal: overseas addresses and card top-ups on day 3, every top-up and
sign-up on day 4, forced password resets on day 30. Here every lever is there from the start, through
``possim admin`` and the admin API (``payment_core.api_admin``), each use audited with its operator:

- **Kill switches** (table ``service_switches``): top-ups by source (``topup-cash``, ``topup-card``,
  ``topup-bank``), ``signups`` and ``enrollment`` (signing in on a new phone). A switch is a row, read on
  every request that it guards (one primary-key lookup, no cache), so it takes effect on the very next
  request in every process of ``possim core serve --workers N``. A paused act is refused before any work
  (no code used up, no password hashed) with 503 ``service_paused``, ``Retry-After`` and words a
  customer understands.
- **Blocks** (table ``source_blocks``): address ranges (CIDR) and countries (``payment_core.geo``).
  Sign-in, enrollment, sign-up and reset from a blocked source are refused (429 with ``Retry-After``)
  before any password work, by ``throttle.admit`` and ``throttle.limit_requests``.
- The throttle's own automatic blocks (``address_blocks``: list attacks) are listed and can be lifted.
- Forced password resets: ``payment_core.resets.force_reset``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from payment_core import audit, geo
from payment_core.audit import AuditOutcome
from payment_core.core import Core
from payment_core.models import AddressBlock, RiskAlert, ServiceSwitch, SourceBlock
from payment_core.sources import throttle_key
from protocol import ErrorCode, ProtocolError

TOPUP_SWITCHES = {"cash": "topup-cash", "card": "topup-card", "bank": "topup-bank"}
SIGNUPS, ENROLLMENT = "signups", "enrollment"
SWITCHES = (*TOPUP_SWITCHES.values(), SIGNUPS, ENROLLMENT)
# What an operator may name: every switch, and ``topups`` for the three top-up switches at once.
GROUPS: dict[str, tuple[str, ...]] = {name: (name,) for name in SWITCHES} | {"topups": tuple(TOPUP_SWITCHES.values())}
PAUSED_RETRY_AFTER = 300
BLOCKED_RETRY_AFTER = 3600
_BALANCE_SAFE = "Your balance is safe."
PAUSED_MESSAGES = {
    "topup-cash": f"Top-ups are paused for a while for your security. {_BALANCE_SAFE}",
    "topup-card": f"Top-ups are paused for a while for your security. {_BALANCE_SAFE}",
    "topup-bank": f"Top-ups are paused for a while for your security. {_BALANCE_SAFE}",
    SIGNUPS: "New sign-ups are paused for a while for your security. Please try again later.",
    ENROLLMENT: (
        "Signing in on a new phone is paused for a while for your security. "
        f"Phones already signed in keep working. {_BALANCE_SAFE}"
    ),
}
BLOCKED_MESSAGE = (
    "Signing in from your network is not possible at the moment, for your security. "
    f"{_BALANCE_SAFE} Please try again later from home, or contact support."
)
CIDR, COUNTRY = "cidr", "country"
BLOCK_KINDS = (CIDR, COUNTRY)
REASON_MAX = 200


class ServicePaused(ProtocolError):
    """503 ``service_paused`` with ``Retry-After`` and the switch's words for the customer."""

    def __init__(self, switch: str) -> None:
        super().__init__(ErrorCode.SERVICE_PAUSED, PAUSED_MESSAGES[switch])
        self.retry_after = PAUSED_RETRY_AFTER


_SWITCH_ON = select(ServiceSwitch.name).where(ServiceSwitch.name == bindparam("name"))


def switch_names(name: str) -> tuple[str, ...]:
    """The switches an operator's word names (``topups`` is all three top-up switches), or 422."""
    found = GROUPS.get(name.strip().lower())
    if found is None:
        message = f"name: one of {', '.join(GROUPS)}"
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, message, param="name")
    return found


def _clean_reason(reason: str | None) -> str | None:
    if reason is None or not reason.strip():
        return None
    reason = " ".join(reason.split())
    if len(reason) > REASON_MAX or not reason.isprintable():
        message = f"reason: at most {REASON_MAX} printable characters"
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, message, param="reason")
    return reason


def require_running(core: Core, switch: str) -> None:
    """Refuse (503 ``service_paused``) when ``switch`` is on; read from the database every time."""
    with core.read() as session:
        check_running(session, switch)


def check_running(session: Session, switch: str) -> None:
    """:func:`require_running` in the caller's transaction (``throttle.admit`` reads it with its own rows)."""
    if session.execute(_SWITCH_ON, {"name": switch}).first() is not None:
        raise ServicePaused(switch)


def switch_view(row: ServiceSwitch) -> dict[str, Any]:
    return {
        "name": row.name,
        "paused": True,
        "since": row.paused_at.isoformat(),
        "by": row.paused_by,
        "reason": row.reason,
    }


def list_switches(core: Core) -> list[dict[str, Any]]:
    """Every switch, on or off."""
    with core.read() as session:
        on = {row.name: row for row in session.scalars(select(ServiceSwitch))}
    return [switch_view(on[name]) if name in on else {"name": name, "paused": False} for name in SWITCHES]


def pause(core: Core, name: str, actor: str, reason: str | None = None) -> list[str]:
    """Turn on the switches ``name`` names; those already on stay as they were. Returns the switches named."""
    names, reason, now = switch_names(name), _clean_reason(reason), core.now()
    with core.transaction() as session:
        for switch in names:
            if session.get(ServiceSwitch, switch, with_for_update=True) is None:
                session.add(ServiceSwitch(name=switch, paused_at=now, paused_by=actor[:60], reason=reason))
            audit.record(
                session,
                at=now,
                actor=actor,
                action="incident.pause",
                target=f"switch:{switch}",
                result=AuditOutcome.SUCCEEDED,
                reason=reason,
            )
        session.flush()
    return list(names)


def resume(core: Core, name: str, actor: str) -> list[str]:
    """Turn off the switches ``name`` names (service is restored on the next request)."""
    names, now = switch_names(name), core.now()
    with core.transaction() as session:
        for switch in names:
            session.execute(delete(ServiceSwitch).where(ServiceSwitch.name == switch))
            audit.record(
                session,
                at=now,
                actor=actor,
                action="incident.resume",
                target=f"switch:{switch}",
                result=AuditOutcome.SUCCEEDED,
            )
    return list(names)


# -- blocks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockSpec:
    kind: str
    value: str

    @property
    def target(self) -> str:
        return f"{self.kind}:{self.value}"


def block_spec(kind: str, value: str) -> BlockSpec:
    """A checked block: a network in its canonical form, or a two-letter country code; else 422."""
    kind, value = kind.strip().lower(), value.strip()
    if kind == CIDR:
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ProtocolError(ErrorCode.VALIDATION_FAILED, "value: not an address range", param="value") from None
        return BlockSpec(CIDR, str(network))
    if kind == COUNTRY:
        code = value.upper()
        if len(code) != 2 or not code.isascii() or not code.isalpha():
            message = "value: a two-letter country code (ISO 3166-1)"
            raise ProtocolError(ErrorCode.VALIDATION_FAILED, message, param="value")
        return BlockSpec(COUNTRY, code)
    raise ProtocolError(ErrorCode.VALIDATION_FAILED, "kind: cidr or country", param="kind")


def _matches(row: SourceBlock, source: str) -> bool:
    if row.kind == COUNTRY:
        return geo.country_of(source) == row.value
    try:
        address = ipaddress.ip_address(source.strip().strip("[]"))
        return address in ipaddress.ip_network(row.value)
    except ValueError:
        return False


def blocking(session: Session, source: str) -> SourceBlock | None:
    """The operator's block that covers ``source`` (a client address), if any."""
    for row in session.scalars(select(SourceBlock)):
        if _matches(row, source):
            return row
    return None


def block(core: Core, spec: BlockSpec, actor: str, reason: str | None = None) -> bool:
    """Block a range or a country; False when it was blocked already."""
    reason, now = _clean_reason(reason), core.now()
    try:
        with core.transaction() as session:
            session.add(
                SourceBlock(kind=spec.kind, value=spec.value, blocked_at=now, blocked_by=actor[:60], reason=reason)
            )
            session.flush()
            audit.record(
                session,
                at=now,
                actor=actor,
                action="incident.block",
                target=spec.target,
                result=AuditOutcome.SUCCEEDED,
                reason=reason,
            )
    except IntegrityError:
        return False
    return True


def unblock(core: Core, spec: BlockSpec, actor: str) -> bool:
    """Lift an operator's block; False when there was none."""
    now = core.now()
    with core.transaction() as session:
        gone = session.scalars(
            delete(SourceBlock)
            .where(SourceBlock.kind == spec.kind, SourceBlock.value == spec.value)
            .returning(SourceBlock.id)
        ).all()
        audit.record(
            session,
            at=now,
            actor=actor,
            action="incident.unblock",
            target=spec.target,
            result=AuditOutcome.SUCCEEDED,
            found=bool(gone),
        )
    return bool(gone)


def list_blocks(core: Core) -> list[dict[str, Any]]:
    with core.read() as session:
        rows = session.scalars(select(SourceBlock).order_by(SourceBlock.id)).all()
        return [
            {
                "kind": row.kind,
                "value": row.value,
                "since": row.blocked_at.isoformat(),
                "by": row.blocked_by,
                "reason": row.reason,
            }
            for row in rows
        ]


def list_address_blocks(core: Core) -> list[dict[str, Any]]:
    """The throttle's automatic blocks still in force (an address that failed across many accounts)."""
    now = core.now()
    with core.read() as session:
        rows = session.scalars(
            select(AddressBlock).where(AddressBlock.blocked_until > now).order_by(AddressBlock.blocked_at)
        ).all()
        return [
            {
                "address": row.source,
                "reason": row.reason,
                "since": row.blocked_at.isoformat(),
                "until": row.blocked_until.isoformat(),
                "accounts_tried": row.accounts_tried,
                "refused": row.refused,
            }
            for row in rows
        ]


def _block_key(address: str) -> str:
    """How ``address_blocks`` names what ``address`` means: an address's throttle key, or a range (an IPv6
    /64 as the throttle keys it, a range's hold from ``risk.range_burst``) in its canonical form."""
    if "/" in address:
        try:
            network = ipaddress.ip_network(address, strict=False)
        except ValueError:
            return address[:64]
        return str(network)
    return throttle_key(address)


def lift_address_block(core: Core, address: str, actor: str) -> bool:
    """Lift the throttle's block of ``address`` (as listed, or any address it covers); False when none."""
    key, now = _block_key(address.strip()), core.now()
    with core.transaction() as session:
        row = session.get(AddressBlock, key, with_for_update=True)
        lifted = row is not None and row.blocked_until > now
        if row is not None:
            row.blocked_until = now
        audit.record(
            session,
            at=now,
            actor=actor,
            action="incident.address_unblock",
            target=f"address:{key}"[:60],
            result=AuditOutcome.SUCCEEDED,
            found=lifted,
        )
    return lifted


def list_alerts(core: Core) -> list[dict[str, Any]]:
    """The risk engine's service-wide alerts still up."""
    now: datetime = core.now()
    with core.read() as session:
        rows = session.scalars(
            select(RiskAlert).where(RiskAlert.until > now, RiskAlert.lifted_by.is_(None)).order_by(RiskAlert.id)
        ).all()
        return [
            {
                "id": row.id,
                "kind": row.kind,
                "opened": row.opened_at.isoformat(),
                "last_seen": row.last_seen.isoformat(),
                "until": row.until.isoformat(),
            }
            for row in rows
        ]


def lift_alert(core: Core, alert_id: int, actor: str) -> dict[str, Any]:
    """Lift a risk alert (``lifted_by``): sign-ins from new places are no longer slowed for it; 404 for none.

    ``lifted`` is False when it was down already (lifted before, or past its ``until``). The attack's signs
    are measured again on the next failed sign-in (``signin_attack.watch``): if they are still there, a new
    alert goes up."""
    now = core.now()
    with core.transaction() as session:
        row = session.get(RiskAlert, alert_id, with_for_update=True)
        if row is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "No such alert.", param="alert_id")
        lifted = row.lifted_by is None and row.until > now
        if lifted:
            row.lifted_by = actor[:60]
        audit.record(
            session,
            at=now,
            actor=actor,
            action="incident.alert_lift",
            target=f"alert:{alert_id}",
            result=AuditOutcome.SUCCEEDED,
            found=lifted,
        )
        return {"id": row.id, "kind": row.kind, "lifted": lifted, "lifted_by": row.lifted_by}
