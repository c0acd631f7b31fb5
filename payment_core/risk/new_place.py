"""Signing in from a place new to the account (``[new_place]`` in ``rules.toml``).

7pay's attackers replayed leaked ID/password lists and added phones to the accounts they got into from
overseas addresses, unchecked. Here every enrollment of a new phone (``devices.enroll_device``, once the
password and the second factor were right, before the phone is added) and every sign-in on an enrolled
phone (``devices.sign_in``, once the password was right) is compared with the account's known places:
the address ranges it signed in from successfully (``account_places``, IPv4 /24 and IPv6 /48, recorded
by ``throttle.settle``) and their countries (``payment_core.geo``). A country none of them is in is the
strongest sign; a range new to the account in a country it knows is kept, as a finding, for the record.

An account with no known range (a newcomer: its first phone comes with the account) is never judged new,
nor is a request with no client address (the core's own commands and tests calling the domain directly).
Every decision a rule fired on is kept (``risk_decisions``, kind ``enrollment`` or ``signin``) under a
subject id made here (``enroll_...``, ``signin_...``) that the attempt's audit events name
(``risk_subject``), so ``possim admin explain SUBJECT`` reads it back.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_core import geo, notify, outbox
from payment_core.models import Account, AccountPlace
from payment_core.risk.actions import freeze_for_risk
from payment_core.risk.engine import Assessment, combine, keep
from payment_core.risk.facts import Finding, PlaceFacts
from payment_core.risk.settings import RiskSettings, Verdict
from payment_core.risk.signin_attack import place_of

RULE = "new_place"
ENROLLMENT, SIGNIN = "enrollment", "signin"
ENROLL_DECLINED = {
    "country": (
        "Adding a phone from a new country needs a check: add it from where you usually use possim, or contact support."
    ),
    "range": (
        "Adding a phone from a new place needs a check: add it from where you usually use possim, or contact support."
    ),
}
SIGNIN_DECLINED = {
    "country": (
        "Signing in from a new country needs a check: sign in from where you usually use possim, or contact support."
    ),
    "range": (
        "Signing in from a new place needs a check: sign in from where you usually use possim, or contact support."
    ),
}
OWNER_SUBJECTS = {
    (ENROLLMENT, True): "A phone was not added to your possim wallet",
    (ENROLLMENT, False): "A phone was added to your possim wallet from a new place",
    (SIGNIN, True): "A sign-in to your possim wallet was stopped",
    (SIGNIN, False): "Your possim wallet was signed in from a new place",
}


def new_subject(kind: str) -> str:
    """A subject id for one attempt's decision: ``enroll_`` or ``signin_`` and 16 hex digits."""
    return f"{'enroll' if kind == ENROLLMENT else 'signin'}_{secrets.token_hex(8)}"


def _is_address(place: str) -> bool:
    try:
        ipaddress.ip_network(place, strict=False)
    except ValueError:
        return False
    return True


def known_places(session: Session, account_id: int) -> list[str]:
    """The address ranges the account signed in from successfully (not the core's own "local")."""
    rows = session.scalars(select(AccountPlace.place).where(AccountPlace.account_id == account_id)).all()
    return sorted(place for place in rows if _is_address(place))


def check(session: Session, settings: RiskSettings, facts: PlaceFacts) -> Finding | None:
    """A finding when ``facts.source`` is a range (or a country) new to an account that has known places."""
    rule = settings.new_place
    place = place_of(facts.source)
    if not rule.enabled or not _is_address(place):
        return None
    known = known_places(session, facts.account_id)
    if not known or place in known:
        return None  # a newcomer, or a usual place
    country = geo.country_of(place)
    countries = sorted({geo.country_of(known_place) for known_place in known})
    enrollment = facts.kind == ENROLLMENT
    inputs: dict[str, Any] = {
        "kind": facts.kind,
        "place": place,
        "country": country,
        "known_countries": countries,
        "known_ranges": len(known),
    }
    what = "a new phone" if enrollment else "a sign-in on an enrolled phone"
    if country not in countries:
        action = rule.action if enrollment else rule.signin_country_action
        reason = f"{what} from {country}, a country new to the account (known: {', '.join(countries)})"
        return Finding(RULE, action, reason, inputs | {"new": "country"})
    action = rule.enrollment_range_action if enrollment else rule.signin_range_action
    reason = f"{what} from {place}, a range new to the account (in {country}, a known country)"
    return Finding(RULE, action, reason, inputs | {"new": "range"})


@dataclass(frozen=True)
class PlaceDecision:
    subject_id: str
    assessment: Assessment

    @property
    def refused(self) -> bool:
        return self.assessment.verdict >= Verdict.DECLINE

    def message(self) -> str:
        """What a refused customer is told: how to go on."""
        finding = self.assessment.findings[0]
        words = ENROLL_DECLINED if finding.inputs["kind"] == ENROLLMENT else SIGNIN_DECLINED
        return words[finding.inputs["new"]]

    def audit_fields(self) -> dict[str, Any]:
        """``risk``, ``rules`` and ``risk_subject`` for the attempt's audit events when the rule fired, else {}."""
        if not self.assessment.findings:
            return {}
        finding = self.assessment.findings[0]
        return {
            "risk": self.assessment.verdict.word,
            "rules": self.assessment.rules,
            "risk_subject": self.subject_id,
            "new_place": finding.inputs["place"],
            "new_country": finding.inputs["country"],
        }


def judge(
    session: Session, settings: RiskSettings, kind: str, account: Account, source: str, now: datetime
) -> PlaceDecision:
    """Ask the rule about this attempt in the caller's transaction, keep the finding, tell the owner on a
    step-up or a refusal, and freeze the account on ``freeze``. The caller refuses when ``refused``."""
    subject_id = new_subject(kind)
    facts = PlaceFacts(kind, subject_id, account.id, source, now)
    finding = check(session, settings, facts)
    assessment = combine([finding] if finding is not None else [])
    keep(session, kind, subject_id, account.id, assessment, now)
    decision = PlaceDecision(subject_id, assessment)
    if finding is None or assessment.verdict == Verdict.ALLOW:
        return decision
    if assessment.verdict == Verdict.FREEZE:
        freeze_for_risk(session, account.id, assessment.rules, now)
    _tell_owner(session, account, finding, decision, now)
    return decision


def _tell_owner(session: Session, account: Account, finding: Finding, decision: PlaceDecision, now: datetime) -> None:
    kind, new = finding.inputs["kind"], finding.inputs["new"]
    if new == "country":
        where = f"{finding.inputs['country']}, a country you have not used possim from before"
    else:
        where = f"the network {finding.inputs['place']}, which you have not used possim from before"
    if kind == ENROLLMENT:
        what = "with your password and authenticator code tried to add a phone to"
        outcome = "The phone was not added." if decision.refused else "The phone was added."
    else:
        what = "signed in with your password on your phone to"
        outcome = "The sign-in was stopped." if decision.refused else "The sign-in went through."
    if decision.refused:
        if_you = "If it was you, do it again from where you usually use possim, or contact support."
    else:
        if_you = "If it was you, nothing more is needed."
    body = (
        f"At {now:%Y-%m-%d %H:%M} UTC someone {what} your possim wallet from {where}. {outcome}\n"
        f"{if_you}\n"
        "If it was not you, change your password now and sign out everywhere from the wallet: "
        "your sign-in details are known to someone else.\n"
    )
    outbox.send(session, outbox.EMAIL, account.email, OWNER_SUBJECTS[(kind, decision.refused)], body, now)
    notice = f"{'A new phone' if kind == ENROLLMENT else 'A sign-in'} from {where}: {outcome}"
    notify.notify(session, account.id, notify.SECURITY, f"{notice} If it was not you, change your password.", now)
