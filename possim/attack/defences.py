"""The two cores an attack replay runs against: possim as shipped (``hardened``) and a core set up the way
7pay was in July 2019 (``7pay``), so the same seeded attack can be replayed on both.

``hardened`` is every default: argon2id as shipped, the throttle, the risk rules, the second factor for a
new phone and for the owner's top-ups, the new-phone limits. Nothing is turned off for the replay.

``7pay`` opens the doors 7pay left open: no second factor for a new phone or a card top-up, no throttling,
no risk rules, a reset code mailed to whatever second address the form names, no confirmation of large
payments, 100,000 yen a top-up three times a day with no lower limit for a new phone, and passwords stored
as one salted SHA-256 (many 2019 systems did; the report says so). A core runs it only when ``possim core serve --defenses 7pay`` asks, and says so when it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from payment_core.config import Defences, Limits, PasswordPolicy, Throttling
from payment_core.passwords import SALTED_SHA256
from payment_core.risk import RiskSettings, load_settings
from payment_core.risk.settings import RuleSettings

HARDENED = "hardened"
SEVEN_PAY = "7pay"
NAMES = (SEVEN_PAY, HARDENED)


@dataclass(frozen=True)
class DefenceProfile:
    name: str
    passwords: PasswordPolicy
    throttling: Throttling
    defences: Defences
    limits: Limits
    risk: RiskSettings
    notes: tuple[str, ...]  # what the report says about this core


def risk_off(settings: RiskSettings) -> RiskSettings:
    """Every rule of ``settings`` disabled."""
    changes: dict[str, Any] = {}
    for field in fields(settings):
        rule = getattr(settings, field.name)
        if isinstance(rule, RuleSettings):
            changes[field.name] = replace(rule, enabled=False)
    return replace(settings, **changes)


def profile(name: str) -> DefenceProfile:
    if name == HARDENED:
        return DefenceProfile(
            HARDENED,
            PasswordPolicy(),
            Throttling(),
            Defences(),
            Limits(),
            load_settings(),
            (
                "possim as shipped: argon2id (t=3, m=64 MiB, p=4), per-address throttle, list-attack alert, "
                "range holds, second factor for a new phone and for card top-ups and links, card codes limited "
                "per card, phone and address with the issuer's check, risk rules on",
            ),
        )
    if name == SEVEN_PAY:
        return DefenceProfile(
            SEVEN_PAY,
            PasswordPolicy(scheme=SALTED_SHA256),
            Throttling(enabled=False),
            Defences(
                second_factor_for_new_phones=False,
                code_for_owner_topups=False,
                issuer_check_after_wrong_codes=False,
                reset_mail_to_own_address_only=False,
            ),
            Limits(
                topup_max_yen=100_000,
                topup_daily_count=3,
                topup_daily_sum_yen=300_000,
                new_device_topup_max_yen=100_000,
                new_device_daily_sum_yen=300_000,
                confirm_above_yen=10**9,
                card_code_failures_per_card=0,
                card_code_failures_per_device=0,
                card_code_failures_per_address=0,
            ),
            risk_off(load_settings()),
            (
                "as 7pay was in July 2019: no second factor, no throttling, no risk rules, a password reset "
                "mailed to any address the form names, 100,000 yen x 3 top-ups a day from a new phone, no "
                "confirmation of large payments, card security codes guessed without limit (as PayPay in "
                "December 2018)",
                "passwords stored as one salted SHA-256 (a fast hash, as many 2019 systems had)",
            ),
        )
    raise ValueError(f"unknown defences {name!r}: {' or '.join(NAMES)}")
