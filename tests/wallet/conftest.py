"""The wallet tests reuse the register tests' world: a core on a loopback port, a terminal, a funded wallet.

The account screens (sign-up, second factor, reset) run against ``phone_core``: a core with no accounts on
a :class:`ManualClock` the test moves, since the core takes a TOTP code once per 30 s step per account and
backs an address off after failures. The phone apps share that clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from payment_core.core import Core
from payment_core.server import ServerThread
from possim.world import new_core, serve
from protocol import ManualClock, system_clock
from tests.register.conftest import world  # noqa: F401
from wallet_app.phone.app import WalletApp, make_wallet_app


@dataclass
class PhoneCore:
    core: Core
    server: ServerThread
    clock: ManualClock
    tmp: Path

    def phone(self, state_file: str = "wallet.json") -> WalletApp:
        """A phone wallet on the shared clock; each ``state_file`` is another phone."""
        return make_wallet_app(self.server.url, self.tmp / state_file, clock=self.clock, poll_seconds=0.2)


@pytest.fixture
def phone_core(tmp_path: Path) -> Iterator[PhoneCore]:
    clock = ManualClock(system_clock().replace(microsecond=0))
    core = new_core(tmp_path / "core.db", clock=clock)
    try:
        with serve(core) as server:
            yield PhoneCore(core, server, clock, tmp_path)
    finally:
        core.close()
