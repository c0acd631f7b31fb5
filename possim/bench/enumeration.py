"""Does an answer about an existing account take longer (or shorter) than one about an address nobody has?

Timed against a real core on loopback, in interleaved pairs (so drift in the machine's load hits both
alike), compared with a two-sided Mann-Whitney U test. First the harness shows it can see a difference
(a request refused before password work against one refused after argon2); then sign-in, sign-up and
reset are each compared for a taken and a free address. The suite proves the same property exactly, by
counting the work each answer costs (``tests/security/test_enumeration_work.py``); this is the stopwatch.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from scipy.stats import mannwhitneyu

from payment_core import accounts
from payment_core.api import create_app
from payment_core.config import CoreConfig
from payment_core.core import Core
from payment_core.server import ServerThread
from protocol import ManualClock, system_clock

ALPHA = 0.001  # below it the two groups differ; the power check must land far below it
SAMPLES = 40  # requests per group and case
QUICK_SAMPLES = 8
_VICTIM = "victim@example.jp"
_PASSWORD = secrets.token_urlsafe(18)  # any password the policy accepts: only wrong ones are sent

Bodies = Callable[[int], tuple[dict[str, Any], dict[str, Any]]]


def _pairs(url: str, clock: ManualClock, path: str, bodies: Bodies, samples: int) -> tuple[list[float], list[float]]:
    first_group: list[float] = []
    second_group: list[float] = []
    warm_up = 2
    for index in range(samples + warm_up):
        clock.advance(60)
        first, second = bodies(index)
        # A fresh loopback source address for every pair: the per-address throttle is not what is timed.
        address = f"127.0.{10 + index // 200}.{1 + index % 200}"
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(base_url=url, timeout=30, transport=transport) as client:
            order = ((first, first_group), (second, second_group))
            for body, sink in order if index % 2 else order[::-1]:
                started = time.perf_counter()
                client.post(path, json=body)
                if index >= warm_up:
                    sink.append((time.perf_counter() - started) * 1000)
    return first_group, second_group


def _compare(first: list[float], second: list[float], expect_difference: bool) -> dict[str, Any]:
    p_value = float(mannwhitneyu(first, second, alternative="two-sided").pvalue)
    differs = p_value < ALPHA
    return {
        "median_ms": [round(sorted(first)[len(first) // 2], 2), round(sorted(second)[len(second) // 2], 2)],
        "p_value": p_value,
        "differs": differs,
        "as_expected": differs == expect_difference,
    }


def run(quick: bool = False) -> dict[str, Any]:
    samples = QUICK_SAMPLES if quick else SAMPLES
    clock = ManualClock(system_clock().replace(microsecond=0))
    with tempfile.TemporaryDirectory(prefix="possim-bench-") as folder:
        config = CoreConfig(db_url=str(Path(folder) / "core.db"), server_key=secrets.token_bytes(32), clock=clock)
        core = Core(config)
        core.migrate()
        try:
            accounts.create_account(core, _VICTIM, _PASSWORD)
            with ServerThread(create_app(core)) as server:
                result = _measure(server.url, clock, samples)
            core.drain()
        finally:
            core.close()
    result["samples"] = samples
    result["alpha"] = ALPHA
    return result


def _enroll(email: str, password: str) -> dict[str, Any]:
    return {"email": email, "password": password, "otp": "123456", "device_name": "bench"}


def _measure(url: str, clock: ManualClock, samples: int) -> dict[str, Any]:
    sign_up = {"phone": "+819012345678", "password": "a fresh passphrase 42"}
    cases: list[tuple[str, str, Bodies, bool]] = [
        ("power_check", "/v1/devices", lambda i: (_enroll(_VICTIM, f"wrong {i}"), {"email": _VICTIM}), True),
        ("sign_in", "/v1/devices",
         lambda i: (_enroll(_VICTIM, f"wrong {i}"), _enroll(f"nobody{i}@example.jp", f"wrong {i}")), False),
        ("sign_up", "/v1/accounts",
         lambda i: (sign_up | {"email": _VICTIM}, sign_up | {"email": f"new{i}@example.jp"}), False),
        ("reset", "/v1/password-reset", lambda i: ({"email": _VICTIM}, {"email": f"nobody{i}@example.jp"}), False),
    ]  # fmt: skip
    return {name: _compare(*_pairs(url, clock, path, bodies, samples), expect) for name, path, bodies, expect in cases}
