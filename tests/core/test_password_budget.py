"""Password work never takes the registers down. A sign-in's argon2 never holds the store: a payment is
answered while an enrollment is hashing. A sign-in flood meets a bounded budget: at most `workers` hashes at
once and `queue` waiting; the next sign-in is refused at once with 503 and Retry-After while registers keep
being paid; /healthz says the budget is full; work already answered waits instead of being refused."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import event

from payment_core import accounts
from payment_core.core import Core
from payment_core.password_work import PasswordWork, PasswordWorkFull
from payment_core.passwords import PasswordHasher
from payment_core.server import ServerThread
from tests.support import SignedCaller, error_code
from wallet_app.minter import CodeMinter

WAIT_SECONDS = 30


class HeldHasher(PasswordHasher):
    """The real argon2, held before each verification until the test lets it go."""

    def __init__(self, real: PasswordHasher) -> None:
        self.__dict__.update(real.__dict__)
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        self.armed = threading.Event()  # until armed it verifies at once (the fixtures enroll a phone too)

    def verify(self, stored: str, password: str) -> bool:
        if self.armed.is_set():
            self.entered.release()
            self.release.wait(WAIT_SECONDS)
        return super().verify(stored, password)


@pytest.fixture
def held(core: Core, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldHasher]:
    """The core's own budget, on a hasher the test holds."""
    hasher = HeldHasher(accounts.hasher_for(core.config.passwords))
    monkeypatch.setattr(accounts, "hasher_for", lambda _policy: hasher)
    yield hasher
    hasher.release.set()


@pytest.fixture
def small_budget(core: Core, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldHasher]:
    """One hash at a time, one waiting, on a hasher the test holds."""
    core.config = replace(core.config, password_workers=1, password_queue=1)
    core.password_work = PasswordWork(1, 1)
    held = HeldHasher(accounts.hasher_for(core.config.passwords))
    monkeypatch.setattr(accounts, "hasher_for", lambda _policy: held)
    yield held
    held.release.set()


def _enroll(url: str, number: int) -> httpx.Response:
    body = {"email": f"nobody{number}@example.jp", "password": "a wrong password", "otp": "123456", "device_name": "x"}
    headers = {"x-forwarded-for": f"198.51.100.{number}"}
    return httpx.post(f"{url}/v1/devices", json=body, headers=headers, timeout=WAIT_SECONDS)


def test_a_payment_is_answered_while_an_enrollment_is_hashing(
    server: ServerThread, terminal: SignedCaller, minter: CodeMinter, funded: int, held: HeldHasher
) -> None:
    """Password routes keep their own short transactions (payment_core.api_unit.PASSWORD_PATHS): on SQLite a
    request holding the store's one slot while it hashed held every payment behind it."""
    held.armed.set()
    answers: list[int] = []
    enrolling = threading.Thread(target=lambda: answers.append(_enroll(server.url, 1).status_code))
    enrolling.start()
    try:
        assert held.entered.acquire(timeout=WAIT_SECONDS), "the enrollment never reached its password check"
        paid = terminal.pay("while-hashing", 200, minter.mint().qr)
        assert not held.release.is_set()  # answered while the hash was still held
        assert paid.status_code == 200 and paid.json()["status"] == "succeeded"
    finally:
        held.release.set()
        enrolling.join(WAIT_SECONDS)
    assert answers == [401]


def test_a_full_budget_refuses_sign_ins_with_503_and_the_registers_keep_paying(
    small_budget: HeldHasher, core: Core, server: ServerThread, terminal: SignedCaller, minter: CodeMinter, funded: int
) -> None:
    """The budget is set before the server starts, so the API lets in only as many sign-ins as it holds:
    the third is refused at the door, before a worker thread or a database statement."""
    small_budget.armed.set()
    answers: list[int] = []
    flood = [threading.Thread(target=lambda n=n: answers.append(_enroll(server.url, n).status_code)) for n in (1, 2)]
    for thread in flood:
        thread.start()
    try:
        assert small_budget.entered.acquire(timeout=WAIT_SECONDS), "no sign-in reached its password check"
        health = httpx.get(f"{server.url}/healthz", timeout=WAIT_SECONDS).json()["password_work"]
        deadline = threading.Event()
        for _ in range(300):  # the second sign-in is admitted and waits: bounded, never a fixed sleep
            if health["waiting"] == 1:
                break
            deadline.wait(0.05)
            health = httpx.get(f"{server.url}/healthz", timeout=WAIT_SECONDS).json()["password_work"]
        assert (health["running"], health["waiting"], health["saturated"]) == (1, 1, True)
        statements: list[str] = []
        listener = lambda *args: statements.append(str(args[2]))  # noqa: E731 (before_cursor_execute)
        event.listen(core.engine, "before_cursor_execute", listener)
        try:
            refused = _enroll(server.url, 3)
        finally:
            event.remove(core.engine, "before_cursor_execute", listener)
        assert statements == []  # refused before any database work
        assert (refused.status_code, error_code(refused)) == (503, "service_unavailable")
        assert refused.headers["Retry-After"] == "1" and refused.json()["error"]["retry_after"] == 1
        paid = terminal.pay("during-the-flood", 200, minter.mint().qr)
        assert paid.status_code == 200 and paid.json()["status"] == "succeeded"
    finally:
        small_budget.release.set()
        for thread in flood:
            thread.join(WAIT_SECONDS)
    assert sorted(answers) == [401, 401]  # the admitted ones were checked, and failed as wrong passwords
    assert httpx.get(f"{server.url}/healthz", timeout=WAIT_SECONDS).json()["password_work"]["saturated"] is False


def test_work_already_answered_waits_for_room_instead_of_being_refused() -> None:
    work = PasswordWork(1, 0)
    inside, release = threading.Event(), threading.Event()
    results: list[str] = []

    def hold() -> str:
        inside.set()
        release.wait(WAIT_SECONDS)
        return "first"

    first = threading.Thread(target=lambda: results.append(work.run(hold)))
    first.start()
    assert inside.wait(WAIT_SECONDS)
    with pytest.raises(PasswordWorkFull):
        work.run(lambda: "refused")
    waiting = threading.Thread(target=lambda: results.append(work.run(lambda: "waited", shed=False)))
    waiting.start()
    release.set()
    first.join(WAIT_SECONDS)
    waiting.join(WAIT_SECONDS)
    assert sorted(results) == ["first", "waited"]
    assert work.status() == {"workers": 1, "queue": 0, "running": 0, "waiting": 0, "saturated": False}


def test_hashes_run_below_the_registers_priority() -> None:
    """argon2 runs on the budget's own threads, niced below the threads that serve the registers (on Linux,
    where priorities are per thread; elsewhere lowering one would lower the whole process, so it is left)."""
    work = PasswordWork(1, 0, niceness=7)
    try:
        here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        there = work.run(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    finally:
        work.close()
    assert there == (min(19, here + 7) if sys.platform == "linux" else here)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here  # the caller's own is untouched


def test_the_budget_is_full_when_its_places_are_taken_by_requests_not_yet_hashing() -> None:
    """A sign-in holds its place from the moment the API lets it in, through its transactions and its hash:
    with every place taken the next is refused, and /healthz says saturated, even before any hash runs (a
    flood whose requests wait for the CPU between their steps is refused all the same, and said so)."""
    work = PasswordWork(1, 1)
    try:
        assert work.admit_request() and work.admit_request()
        assert work.admit_request() is False  # the third is refused (503 in the API)
        status = work.status()
        assert (status["running"], status["waiting"], status["saturated"]) == (0, 0, True)
        work.leave_request()
        assert work.status()["saturated"] is False
        assert work.admit_request()  # the place is free again
    finally:
        work.close()
