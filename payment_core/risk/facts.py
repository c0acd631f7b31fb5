"""What the risk rules read about a transaction, and what a rule that fires says."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from payment_core.risk.settings import NewDevice, Verdict


@dataclass(frozen=True)
class PaymentFacts:
    """A payment about to be decided: the code was good and the account active."""

    payment_id: str
    account_id: int
    device_id: int
    device_enrolled_at: datetime
    account_created_at: datetime
    terminal_id: str
    merchant_id: int
    amount: int
    categories: tuple[str, ...]
    now: datetime

    def device_age_hours(self) -> float:
        return (self.now - self.device_enrolled_at).total_seconds() / 3600

    def is_new_device(self, rule: NewDevice) -> bool:
        """A phone added lately to an account that was already there: what a takeover looks like."""
        added_after = (self.device_enrolled_at - self.account_created_at).total_seconds() / 3600
        return self.device_age_hours() < rule.younger_than_hours and added_after >= rule.added_after_account_hours


@dataclass(frozen=True)
class TopupFacts:
    """A top-up about to be decided: the code (or the TOTP code) was good, the limits and the account too.

    ``terminal_id`` is the register that took the cash (None for a card or bank top-up from the app);
    ``device_id`` the phone whose code was shown, or that asks."""

    topup_id: str
    account_id: int
    device_id: int
    device_enrolled_at: datetime
    method: str  # cash | card | bank
    terminal_id: str | None
    amount: int
    now: datetime

    @property
    def from_app(self) -> bool:
        """A card or bank top-up: the owner gave the authenticator's code for it."""
        return self.method != "cash"


@dataclass(frozen=True)
class PlaceFacts:
    """A sign-in about to be let in, the password (and, for a new phone, the second factor) right.

    ``kind`` is ``enrollment`` (a new phone) or ``signin`` (a phone already enrolled); ``subject_id`` names
    the decision (``possim admin explain``); ``source`` is the client address."""

    kind: str
    subject_id: str
    account_id: int
    source: str
    now: datetime


@dataclass(frozen=True)
class Finding:
    """One rule that fired: what it asks for, why (in words an operator reads), and what it read."""

    rule: str
    action: Verdict
    reason: str
    inputs: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "action": self.action.word, "reason": self.reason, "inputs": self.inputs}
