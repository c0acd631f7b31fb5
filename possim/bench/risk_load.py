"""The risk settings a load run uses: the shipped rules, with the velocity limits raised (payments' and
top-ups', and the count of wallets one register may top up in cash).

A load test pays from a few phones hundreds of times a minute, which is exactly what the velocity rule
is there to stop; every other rule stays as shipped (and still runs on every payment, so its cost is
measured). The bench's ``possim core serve`` reads it with ``--risk-config``, and the tests that hammer
one account (races, idempotency) build their core with it.
"""

from __future__ import annotations

from pathlib import Path

from payment_core.risk import RiskSettings, load_settings

LOAD_RISK_TOML = """\
# A load run: velocity limits out of reach (the bench pays far faster than any customer); every other
# rule as shipped.
[velocity]
account_per_minute = 1000000
account_per_hour = 1000000
device_per_minute = 1000000
device_per_hour = 1000000
terminal_per_minute = 1000000
store_per_minute = 1000000
# The bench funds every phone with cash at one register, one after the other, and tops a phone up as often
# as its run needs: the top-up rules' limits out of reach too.
[cash_topup_spread]
accounts = 1000000
[topup_velocity]
account_per_hour = 1000000
account_per_day = 1000000
"""


def write_load_risk(folder: Path) -> Path:
    """The load settings as a file for ``possim core serve --risk-config``."""
    path = folder / "risk-load.toml"
    path.write_text(LOAD_RISK_TOML, encoding="utf-8")
    return path


def load_risk(folder: Path) -> RiskSettings:
    return load_settings(write_load_risk(folder))
