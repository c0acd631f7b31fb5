"""Account enumeration by timing: do answers about an existing account take longer (or shorter) than
answers about an address nobody has? Compared statistically (two-sided Mann-Whitney U test on
interleaved samples), not against a fixed number of milliseconds.

The same harness is first shown to have the power to see a difference: a request the core refuses
before any password work (a 422) against one it refuses after argon2 (a 401) is told apart at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from scipy.stats import mannwhitneyu

from payment_core.core import Core
from payment_core.server import ServerThread
from protocol import ManualClock
from tests.security.conftest import Victim, enroll_body, from_address
from tests.support import PHONE

# The statistics are about the API's answers, not the store: one backend is enough (and halves the time).
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

SAMPLES = 24  # per group; the groups are interleaved so drift in the machine's load hits both alike
WARM_UP = 2
ALPHA = 0.001  # a true difference this test should see gives p far below this (see the power check)


def _timed_pairs(
    server: ServerThread, clock: ManualClock, path: str, bodies: Callable[[int], tuple[Any, Any]]
) -> tuple[list[float], list[float]]:
    known: list[float] = []
    unknown: list[float] = []
    for index in range(SAMPLES + WARM_UP):
        clock.advance(60)
        first, second = bodies(index)
        # A fresh source address for every try: the per-address throttles are not what is measured here.
        with from_address(server.url, f"127.0.{10 + index // 200}.{1 + index % 200}") as client:
            for body, sink in ((first, known), (second, unknown)) if index % 2 else ((second, unknown), (first, known)):
                started = time.perf_counter()
                answer = client.post(path, json=body)
                elapsed = time.perf_counter() - started
                assert answer.status_code in (202, 401, 422), answer.text
                if index >= WARM_UP:
                    sink.append(elapsed)
    return known, unknown


def _p_value(first: list[float], second: list[float]) -> float:
    p_value = float(mannwhitneyu(first, second, alternative="two-sided").pvalue)
    medians = sorted(first)[len(first) // 2] * 1000, sorted(second)[len(second) // 2] * 1000
    print(f"medians {medians[0]:.1f} ms vs {medians[1]:.1f} ms, Mann-Whitney U p = {p_value:.3g}")  # -s shows it
    return p_value


def test_the_harness_sees_a_real_timing_difference(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim
) -> None:
    def bodies(_index: int) -> tuple[Any, Any]:
        return enroll_body(victim.email, "wrong password!", "123456"), {
            "email": victim.email
        }  # 401 after argon2 vs 422

    with_work, without = _timed_pairs(server, clock, "/v1/devices", bodies)
    assert _p_value(with_work, without) < ALPHA


def test_sign_in_takes_as_long_for_an_unknown_address_as_for_a_real_one(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim
) -> None:
    def bodies(index: int) -> tuple[Any, Any]:
        return (enroll_body(victim.email, f"wrong password {index}", "123456"),
                enroll_body(f"nobody{index}@example.jp", f"wrong password {index}", "123456"))  # fmt: skip

    known, unknown = _timed_pairs(server, clock, "/v1/devices", bodies)
    assert _p_value(known, unknown) > ALPHA, (sorted(known), sorted(unknown))


def test_sign_up_and_reset_take_as_long_for_a_taken_address_as_for_a_free_one(
    core: Core, server: ServerThread, clock: ManualClock, victim: Victim
) -> None:
    def sign_ups(index: int) -> tuple[Any, Any]:
        body = {"phone": PHONE, "password": "a fresh passphrase 42"}
        return body | {"email": victim.email}, body | {"email": f"new{index}@example.jp"}

    def resets(index: int) -> tuple[Any, Any]:
        return {"email": victim.email}, {"email": f"nobody{index}@example.jp"}

    for path, bodies in (("/v1/accounts", sign_ups), ("/v1/password-reset", resets)):
        taken, free = _timed_pairs(server, clock, path, bodies)
        assert _p_value(taken, free) > ALPHA, (path, sorted(taken), sorted(free))
    core.drain()
