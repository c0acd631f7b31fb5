"""A sign-in's password check (argon2) never holds the store: a register's payment is answered while a
phone's enrollment is still hashing."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from payment_core import accounts
from payment_core.core import Core
from payment_core.passwords import PasswordHasher
from payment_core.server import ServerThread
from tests.support import SignedCaller
from wallet_app.minter import CodeMinter

WAIT_SECONDS = 30


class HeldHasher(PasswordHasher):
    """Verifies like the real one, but only once the test lets it (a slow argon2, held on purpose)."""

    def __init__(self, real: PasswordHasher) -> None:
        self.__dict__.update(real.__dict__)
        self.entered = threading.Event()
        self.release = threading.Event()

    def verify(self, stored: str, password: str) -> bool:
        self.entered.set()
        self.release.wait(WAIT_SECONDS)
        return super().verify(stored, password)


@pytest.fixture
def held(core: Core, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldHasher]:
    hasher = HeldHasher(accounts.hasher(core))
    monkeypatch.setattr(accounts, "hasher", lambda _core: hasher)
    yield hasher
    hasher.release.set()


def test_a_payment_is_answered_while_an_enrollment_is_hashing(
    core: Core, server: ServerThread, terminal: SignedCaller, minter: CodeMinter, funded: int, held: HeldHasher
) -> None:
    answers: list[int] = []

    def enroll() -> None:
        body = {"email": "nobody@example.jp", "password": "a wrong password", "otp": "123456", "device_name": "x"}
        answers.append(httpx.post(f"{server.url}/v1/devices", json=body, timeout=WAIT_SECONDS).status_code)

    enrolling = threading.Thread(target=enroll)
    enrolling.start()
    try:
        assert held.entered.wait(WAIT_SECONDS), "the enrollment never reached its password check"
        paid = terminal.pay("while-hashing", 200, minter.mint().qr)
        assert not held.release.is_set()  # answered while the hash was still held
        assert paid.status_code == 200 and paid.json()["status"] == "succeeded"
    finally:
        held.release.set()
        enrolling.join(WAIT_SECONDS)
    assert answers == [401]
