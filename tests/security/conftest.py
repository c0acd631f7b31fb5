"""Attack tests send traffic only to the core on 127.0.0.1; each "attacker" or "user" is a client bound
to its own loopback source address (all of 127.0.0.0/8 is this machine), so per-address throttles and
the audit's "from where" can be told apart without leaving the host."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from payment_core.core import Core
from payment_core.server import ServerThread
from possim.world import sign_up_verified
from protocol import ManualClock
from tests.support import PASSWORD, customer, totp_now
from wallet_app.client import WalletClient
from wallet_app.state import WalletState

VICTIM = "victim@example.jp"
ATTACKER_MAIL = "attacker@evil.example"


def from_address(base_url: str, address: str) -> httpx.Client:
    """An HTTP client whose connections leave from ``address`` (a loopback address)."""
    return httpx.Client(base_url=base_url, timeout=30, transport=httpx.HTTPTransport(local_address=address))


def enroll_body(email: str, password: str, otp: str | None, device: str = "attacker's phone") -> dict[str, Any]:
    return {"email": email, "password": password, "otp": otp, "device_name": device}


class Victim:
    """A 7pay customer: an account with a verified address, an authenticator and one phone."""

    def __init__(self, core: Core, server: ServerThread, clock: ManualClock, email: str = VICTIM) -> None:
        self.core, self.clock, self.email = core, clock, email
        with WalletClient(server.url, clock=clock) as client:
            kit = sign_up_verified(client, core, customer(email))
            self.totp_secret = kit.totp_secret
            self.recovery_codes = list(kit.recovery_codes)
            self.phone: WalletState = client.enroll(email, PASSWORD, self.totp(), "victim's phone")

    def totp(self) -> str:
        """The authenticator's code in the next 30 s step (a step's code is accepted once)."""
        self.clock.advance(30)
        return totp_now(self.totp_secret, self.clock)


@pytest.fixture
def victim(core: Core, server: ServerThread, clock: ManualClock) -> Victim:
    return Victim(core, server, clock)


@pytest.fixture
def attacker(server: ServerThread) -> Iterator[httpx.Client]:
    with from_address(server.url, "127.0.0.66") as client:
        yield client
