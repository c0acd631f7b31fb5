"""TOTP as the core computes it: pyotp against RFC 6238's Appendix B, and the core's ±1 step window."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from payment_core.otp import _matching_step

SEEDS: dict[str, bytes] = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"1234567890" * 3 + b"12",
    "SHA512": b"1234567890" * 6 + b"1234",
}
DIGESTS: dict[str, Callable[..., object]] = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}

# RFC 6238 Appendix B: (Unix time, mode, 8-digit TOTP), step 30 s from T0 = 0.
APPENDIX_B = [
    (59, "SHA1", "94287082"),
    (59, "SHA256", "46119246"),
    (59, "SHA512", "90693936"),
    (1111111109, "SHA1", "07081804"),
    (1111111109, "SHA256", "68084774"),
    (1111111109, "SHA512", "25091201"),
    (1111111111, "SHA1", "14050471"),
    (1111111111, "SHA256", "67062674"),
    (1111111111, "SHA512", "99943326"),
    (1234567890, "SHA1", "89005924"),
    (1234567890, "SHA256", "91819424"),
    (1234567890, "SHA512", "93441116"),
    (2000000000, "SHA1", "69279037"),
    (2000000000, "SHA256", "90698825"),
    (2000000000, "SHA512", "38618901"),
    (20000000000, "SHA1", "65353130"),
    (20000000000, "SHA256", "77737706"),
    (20000000000, "SHA512", "47863826"),
]


def test_appendix_b_has_all_eighteen_vectors() -> None:
    assert len(APPENDIX_B) == 18
    assert {(time, mode) for time, mode, _ in APPENDIX_B} == {
        (time, mode) for time in (59, 1111111109, 1111111111, 1234567890, 2000000000, 20000000000) for mode in SEEDS
    }


@pytest.mark.parametrize(("unix_time", "mode", "expected"), APPENDIX_B)
def test_pyotp_matches_rfc6238_appendix_b(unix_time: int, mode: str, expected: str) -> None:
    secret = base64.b32encode(SEEDS[mode]).decode("ascii")
    totp = pyotp.TOTP(secret, digits=8, digest=DIGESTS[mode])
    assert totp.at(unix_time) == expected


def _secret_with_distinct_codes(now: datetime) -> str:
    """A random secret whose codes for the five steps around ``now`` differ (a clash is ~1 in 100,000)."""
    while True:
        secret = pyotp.random_base32()
        totp = pyotp.TOTP(secret)
        if len({totp.at(now + timedelta(seconds=30 * offset)) for offset in range(-2, 3)}) == 5:
            return secret


def test_core_window_is_one_step_either_side() -> None:
    now = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
    secret = _secret_with_distinct_codes(now)
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for offset in (-1, 0, 1):
        code = totp.at(now + timedelta(seconds=30 * offset))
        assert _matching_step(secret, code, now) == current + offset
    for offset in (-2, 2):
        code = totp.at(now + timedelta(seconds=30 * offset))
        assert _matching_step(secret, code, now) is None
