"""The risk rules' thresholds and actions: ``rules.toml`` beside this module holds every default, and an
operator's file of the same shape may change any of them (``load_settings``).

A file that names an unknown rule or setting, an action that does not exist, or a value of the wrong
type is refused with one line saying which, so a typo never silently leaves a rule at its default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from enum import IntEnum
from pathlib import Path
from typing import Any, TypeVar

DEFAULTS_FILE = Path(__file__).with_name("rules.toml")
BURST_FILE = Path(__file__).with_name("burst.toml")  # velocity limits out of reach: the bench, races, demos


class Verdict(IntEnum):
    """What a rule asks for, weakest first: the strictest among the rules that fired is what happens."""

    ALLOW = 0
    STEP_UP = 1
    DECLINE = 2
    FREEZE = 3

    @property
    def word(self) -> str:
        return self.name.lower()

    @classmethod
    def from_word(cls, word: str) -> Verdict:
        try:
            return cls[word.upper()]
        except KeyError:
            raise RiskSettingsError(f"unknown action {word!r}: use allow, step_up, decline or freeze") from None


class RiskSettingsError(ValueError):
    """The risk settings file is not usable; the message says what and where."""


@dataclass(frozen=True)
class NewDevice:
    """A phone the rules treat as new (see ``rules.toml``)."""

    younger_than_hours: int
    added_after_account_hours: int


@dataclass(frozen=True)
class RuleSettings:
    enabled: bool
    action: Verdict


@dataclass(frozen=True)
class TopupThenSpend(RuleSettings):
    topup_at_least_yen: int
    within_minutes: int
    spent_share_percent: int


@dataclass(frozen=True)
class Velocity(RuleSettings):
    account_per_minute: int
    account_per_hour: int
    device_per_minute: int
    device_per_hour: int
    terminal_per_minute: int
    store_per_minute: int


@dataclass(frozen=True)
class HighRiskGoods(RuleSettings):
    categories: tuple[str, ...]
    above_yen: int


@dataclass(frozen=True)
class StoreCluster(RuleSettings):
    within_minutes: int
    new_device_accounts: int


@dataclass(frozen=True)
class CashTopupSpread(RuleSettings):
    within_minutes: int
    accounts: int


@dataclass(frozen=True)
class TopupVelocity(RuleSettings):
    account_per_minute: int
    account_per_hour: int
    account_per_day: int
    device_per_hour: int
    terminal_per_minute: int
    terminal_per_hour: int
    store_per_hour: int


@dataclass(frozen=True)
class SigninListAttack(RuleSettings):
    window_seconds: int
    min_failures: int
    unknown_share_percent: int
    ranges: int
    right_password_accounts: int
    alert_minutes: int
    unfamiliar_failures_per_minute: int


@dataclass(frozen=True)
class SigninRangeBurst(RuleSettings):
    window_minutes: int
    accounts: int
    addresses: int
    hold_minutes: int


@dataclass(frozen=True)
class NewPlace(RuleSettings):
    """``action``: a phone enrolled from a country new to the account; the others as named."""

    enrollment_range_action: Verdict
    signin_country_action: Verdict
    signin_range_action: Verdict


@dataclass(frozen=True)
class RiskSettings:
    new_device: NewDevice
    topup_then_spend: TopupThenSpend
    velocity: Velocity
    high_risk_goods: HighRiskGoods
    store_cluster: StoreCluster
    signin_list_attack: SigninListAttack
    signin_range_burst: SigninRangeBurst
    cash_topup_spread: CashTopupSpread
    topup_velocity: TopupVelocity
    new_place: NewPlace


R = TypeVar("R", bound=RuleSettings | NewDevice)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise RiskSettingsError(f"cannot read the risk settings {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise RiskSettingsError(f"the risk settings {path} are not valid TOML: {error}") from None


def _value(rule: str, name: str, wanted: Any, value: Any) -> Any:
    if name == "action" or name.endswith("_action"):
        if not isinstance(value, str):
            raise RiskSettingsError(f"[{rule}] {name} must be a word, not {value!r}")
        return Verdict.from_word(value)
    if wanted == "bool":
        ok = isinstance(value, bool)
    elif wanted == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    else:  # tuple[str, ...]
        ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
        value = tuple(value) if ok else value
    if not ok:
        raise RiskSettingsError(f"[{rule}] {name} = {value!r} is not a {wanted.replace('int', 'whole number >= 0')}")
    return value


def _rule(kind: type[R], rule: str, table: dict[str, Any]) -> R:
    known = {field.name: field.type for field in fields(kind)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise RiskSettingsError(f"[{rule}] has no setting {unknown[0]!r}")
    missing = sorted(set(known) - set(table))
    if missing:
        raise RiskSettingsError(f"[{rule}] is missing {missing[0]!r}")
    return kind(**{name: _value(rule, name, str(known[name]), table[name]) for name in known})


def load_settings(path: Path | None = None) -> RiskSettings:
    """The defaults from ``rules.toml``, with the values ``path`` (if given) names in their place."""
    tables = _read(DEFAULTS_FILE)
    if path is not None:
        for rule, table in _read(path).items():
            if rule not in tables:
                raise RiskSettingsError(f"{path}: there is no rule [{rule}]")
            if not isinstance(table, dict):
                raise RiskSettingsError(f"{path}: [{rule}] must be a table of settings")
            tables[rule] = tables[rule] | table
    return RiskSettings(
        new_device=_rule(NewDevice, "new_device", tables["new_device"]),
        topup_then_spend=_rule(TopupThenSpend, "topup_then_spend", tables["topup_then_spend"]),
        velocity=_rule(Velocity, "velocity", tables["velocity"]),
        high_risk_goods=_rule(HighRiskGoods, "high_risk_goods", tables["high_risk_goods"]),
        store_cluster=_rule(StoreCluster, "store_cluster", tables["store_cluster"]),
        signin_list_attack=_rule(SigninListAttack, "signin_list_attack", tables["signin_list_attack"]),
        signin_range_burst=_rule(SigninRangeBurst, "signin_range_burst", tables["signin_range_burst"]),
        cash_topup_spread=_rule(CashTopupSpread, "cash_topup_spread", tables["cash_topup_spread"]),
        topup_velocity=_rule(TopupVelocity, "topup_velocity", tables["topup_velocity"]),
        new_place=_rule(NewPlace, "new_place", tables["new_place"]),
    )
