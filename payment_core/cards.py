"""Cards linked to a wallet, the simulated issuer behind them, and the limits that make card testing (PayPay,
December 2018: leaked card numbers registered to new wallets, security codes guessed until one fit)
hopeless.

The simulated issuer knows one security code for every card number (a keyed hash under the issuer's own
key, ``issuer_code``); the test card ``4242 4242 4242 4242`` keeps working for top-ups without a link.
Linking a card (``link_card``) needs, unless the 7pay replay turned them off:

- the owner's authenticator code (the card is about to move money into the wallet, as a card top-up does);
- at most ``card_code_failures_per_card`` wrong codes for that card from anywhere (a keyed hash of the
  number, so the attacker's list is not kept in the clear), ``..._per_device`` from the phone and
  ``..._per_address`` from the address in ``card_code_window_seconds``; past one, 429 before the code is
  even compared, and the first card to reach its limit is audited ``card.testing`` (detection);
- the holder's confirmation at the issuer (3-D Secure) when wrong codes were tried on that card in the last
  ``card_wrong_codes_remembered_days``:
  the holder gets a prompt they did not start and refuses it, so a lucky guess links nothing
  (402 ``risk_declined``, audited).

Every try is kept (``card_code_tries``) and audited ``card.link``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from payment_core import audit, otp
from payment_core.audit import AuditOutcome
from payment_core.core import Core
from payment_core.keys import keyed_hash
from payment_core.models import CardCodeTry, Device, LinkedCard
from payment_core.sources import current_source, throttle_key
from payment_core.throttle import Throttled
from protocol import ErrorCode, ProtocolError

ISSUER_KEY = b"possim simulated card issuer, not a secret of the core"
TESTING = "card.testing"
_ISSUER_REFUSED = "Your card issuer could not confirm this card with its holder, so it was not added."
_TOO_MANY = "Too many wrong security codes; try again tomorrow."


@dataclass(frozen=True)
class Linked:
    card_id: int
    last4: str

    def view(self) -> dict[str, object]:
        return {"object": "card", "id": self.card_id, "last4": self.last4}


def luhn_ok(number: str) -> bool:
    if not (number.isdigit() and 12 <= len(number) <= 19):
        return False
    total = 0
    for position, digit in enumerate(int(char) for char in reversed(number)):
        doubled = digit * 2 if position % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


def with_check_digit(body: str) -> str:
    """``body`` (digits) with the Luhn check digit that makes it a card number."""
    for digit in "0123456789":
        if luhn_ok(body + digit):
            return body + digit
    raise ValueError(f"no card number starts {body!r}")


def issuer_code(number: str) -> str:
    """The security code the simulated issuer printed on the card ``number``."""
    digest = hmac.new(ISSUER_KEY, number.encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:4], 'big') % 1000:03d}"


def card_key(core: Core, number: str) -> str:
    return keyed_hash(core.config.server_key, "card", "", number)


def _failures(session: Session, matches: ColumnElement[bool], since: datetime) -> int:
    query = select(func.count()).where(matches, CardCodeTry.right.is_(False), CardCodeTry.at >= since)
    return int(session.execute(query).scalar_one())


def link_card(core: Core, device: Device, number: str, code: str, authenticator: str | None) -> Linked:
    """Link the card ``number`` to the device's account (see the module's docstring)."""
    if not luhn_ok(number):  # the network declines it, as it would a card top-up to a wrong number
        raise ProtocolError(ErrorCode.CARD_DECLINED, "That is not a card number.", param="card_number")
    if core.config.defences.code_for_owner_topups:
        otp.require_totp(core, device.account_id, authenticator)
    limits, key, source, now = core.config.limits, card_key(core, number), current_source.get(), core.now()
    since = now - timedelta(seconds=limits.card_code_window_seconds)
    refusal: ProtocolError | None = None
    linked: Linked | None = None
    with core.transaction() as session:
        counts = {
            "card": (_failures(session, CardCodeTry.card_key == key, since), limits.card_code_failures_per_card),
            "device": (
                _failures(session, CardCodeTry.device_id == device.id, since),
                limits.card_code_failures_per_device,
            ),
            "address": (
                _failures(session, CardCodeTry.source == throttle_key(source), since),
                limits.card_code_failures_per_address,
            ),
        }
        over = [what for what, (failed, limit) in counts.items() if limit and failed >= limit]
        what = {"last4": number[-4:], "device_id": device.id}
        target = f"account:{device.account_id}"
        if over:
            audit.record(
                session,
                at=now,
                actor=target,
                action="card.link",
                target=target,
                result=AuditOutcome.THROTTLED,
                limits=over,
                **what,
            )
            refusal = Throttled(limits.card_code_window_seconds, _TOO_MANY)
        else:
            right = hmac.compare_digest(code.encode(), issuer_code(number).encode())
            session.add(
                CardCodeTry(
                    card_key=key,
                    account_id=device.account_id,
                    device_id=device.id,
                    source=throttle_key(source),
                    right=right,
                    at=now,
                )
            )
            failed_before = counts["card"][0]
            if not failed_before and right:
                remembered = now - timedelta(days=limits.card_wrong_codes_remembered_days)
                failed_before = _failures(session, CardCodeTry.card_key == key, remembered)
            if not right:
                result, refusal = AuditOutcome.REJECTED, ProtocolError(ErrorCode.CARD_DECLINED, param="security_code")
                limit = limits.card_code_failures_per_card
                if limit and failed_before + 1 == limit:  # this card just reached its limit: someone is testing it
                    audit.record(
                        session,
                        at=now,
                        actor="core",
                        action=TESTING,
                        target=f"card:{number[-4:]}",
                        result=AuditOutcome.BLOCKED,
                        failures=limit,
                        **what,
                    )
            elif failed_before and core.config.defences.issuer_check_after_wrong_codes:
                result, refusal = (
                    AuditOutcome.REFUSED_BY_ISSUER,
                    ProtocolError(ErrorCode.RISK_DECLINED, _ISSUER_REFUSED),
                )
            else:
                row = session.scalars(
                    select(LinkedCard).where(LinkedCard.account_id == device.account_id, LinkedCard.card_key == key)
                ).first()
                if row is None:
                    row = LinkedCard(account_id=device.account_id, card_key=key, last4=number[-4:], linked_at=now)
                    session.add(row)
                    session.flush()
                result, linked = AuditOutcome.SUCCEEDED, Linked(row.id, row.last4)
            audit.record(session, at=now, actor=target, action="card.link", target=target, result=result, **what)
    if refusal is not None:
        raise refusal
    assert linked is not None
    return linked


def is_linked(session: Session, core: Core, account_id: int, number: str) -> bool:
    """Whether ``number`` is a card linked to the account (a top-up from it goes to the issuer)."""
    query = select(LinkedCard.id).where(
        LinkedCard.account_id == account_id, LinkedCard.card_key == card_key(core, number)
    )
    return session.scalars(query).first() is not None
