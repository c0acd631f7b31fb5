"""Sign-ins from chosen addresses, in-process. The throttle and the risk rules read where a request came
from in ``payment_core.sources.current_source``, which the API sets for each request; these set it the
same way, so a test can play an attacker spread over many addresses without a socket per address."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from payment_core import devices
from payment_core.config import PasswordPolicy
from payment_core.core import Core
from payment_core.sources import current_source
from payment_core.throttle import Throttled
from protocol import ErrorCode, ProtocolError

# argon2id at its cheapest: tests that make hundreds of sign-ins measure the rules around it, not argon2
CHEAP_HASHING = PasswordPolicy(time_cost=1, memory_cost=8192, parallelism=1)


@contextmanager
def from_address(address: str) -> Iterator[None]:
    """Everything inside comes from ``address``, as a request from it would."""
    token = current_source.set(address)
    try:
        yield
    finally:
        current_source.reset(token)


def try_new_phone(
    core: Core, address: str, email: str, password: str, factor: str | None = "000000", name: str = "attacker"
) -> str:
    """One sign-in on a new phone from ``address``: "enrolled", "refused" (401) or "held" (429, before any
    password work)."""
    with from_address(address):
        try:
            devices.enroll_device(core, email, password, factor, name)
        except Throttled:
            return "held"
        except ProtocolError as error:
            assert error.code == ErrorCode.CREDENTIALS_INVALID, error
            return "refused"
    return "enrolled"
