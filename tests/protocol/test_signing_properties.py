"""Request signing as properties: what is signed round-trips, any change to it is signature_invalid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    TOLERANCE_SECONDS,
    ErrorCode,
    ProtocolError,
    SignedHeaders,
    read_signed_headers,
    sign_request,
    verify_signature,
)

SECRET = b"t" * 32
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
HEADER_NAMES = ["X-Possim-Key-Id", "X-Possim-Timestamp", "X-Possim-Nonce", "X-Possim-Signature"]

methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])
paths = st.from_regex(r"/v1/[a-z0-9_/\-.:]{0,40}(\?[a-z0-9=&%]{1,20})?", fullmatch=True)
bodies = st.binary(max_size=512)
nonces = st.text(alphabet="0123456789abcdef", min_size=1, max_size=64)
key_ids = st.from_regex(r"(term_[a-z0-9]{1,20}|dev_[1-9][0-9]{0,6})", fullmatch=True)


def verdict(headers: dict[str, str], method: str, path: str, body: bytes, now: datetime = NOW) -> ErrorCode | None:
    """None when the request verifies with SECRET at ``now``, else the refusal's code."""
    try:
        verify_signature(SECRET, read_signed_headers(headers), method, path, body, now)
    except ProtocolError as error:
        return error.code
    return None


@given(key_ids, methods, paths, bodies, nonces)
def test_sign_then_verify_round_trips(key_id: str, method: str, path: str, body: bytes, nonce: str) -> None:
    signed = sign_request(SECRET, key_id, method, path, body, NOW, nonce=nonce)
    assert read_signed_headers(signed.as_dict()) == signed
    assert verdict(signed.as_dict(), method, path, body) is None
    assert verdict(signed.as_dict(), method.lower(), path, body) is None  # the method's case is not signed


@given(methods, paths, bodies, st.data())
def test_any_change_to_a_signed_part_is_signature_invalid(
    method: str, path: str, body: bytes, data: st.DataObject
) -> None:
    """Change the method, the path (or its query), the body, or the key id, timestamp or nonce header."""
    signed = sign_request(SECRET, "term_1", method, path, body, NOW, nonce="n0")
    headers = signed.as_dict()
    part = data.draw(st.sampled_from(["method", "path", "body", "key_id", "timestamp", "nonce"]))
    if part == "method":
        other = data.draw(methods.filter(lambda m: m != method))
        assert verdict(headers, other, path, body) is ErrorCode.SIGNATURE_INVALID
    elif part == "path":
        other = data.draw(paths.filter(lambda p: p != path))
        assert verdict(headers, method, other, body) is ErrorCode.SIGNATURE_INVALID
    elif part == "body":
        other_body = data.draw(bodies.filter(lambda b: b != body))
        assert verdict(headers, method, path, other_body) is ErrorCode.SIGNATURE_INVALID
    else:
        name = {"key_id": "X-Possim-Key-Id", "timestamp": "X-Possim-Timestamp", "nonce": "X-Possim-Nonce"}[part]
        if part == "timestamp":  # still inside the window, so only the signature can refuse it
            headers[name] = str(signed.timestamp + data.draw(st.sampled_from([-1, 1, 60])))
        else:
            headers[name] = data.draw(nonces.filter(lambda value: value != headers[name]))
        assert verdict(headers, method, path, body) is ErrorCode.SIGNATURE_INVALID


@given(st.binary(min_size=16, max_size=64).filter(lambda other: other != SECRET))
def test_another_secret_is_signature_invalid(other: bytes) -> None:
    headers = sign_request(other, "term_1", "POST", "/v1/payments", b"{}", NOW).as_dict()
    assert verdict(headers, "POST", "/v1/payments", b"{}") is ErrorCode.SIGNATURE_INVALID


@pytest.mark.parametrize("flip", [0, 10, 63])
def test_a_flipped_signature_character_is_signature_invalid(flip: int) -> None:
    headers = sign_request(SECRET, "term_1", "GET", "/v1/orders/o-1", b"", NOW).as_dict()
    value = headers["X-Possim-Signature"]
    index = len("v1=") + flip
    headers["X-Possim-Signature"] = value[:index] + ("0" if value[index] != "0" else "1") + value[index + 1 :]
    assert verdict(headers, "GET", "/v1/orders/o-1", b"") is ErrorCode.SIGNATURE_INVALID


@given(st.integers(min_value=-3 * TOLERANCE_SECONDS, max_value=3 * TOLERANCE_SECONDS))
def test_the_timestamp_window_is_120_seconds_either_way(offset: int) -> None:
    """A correctly signed request whose clock is ``offset`` seconds off passes within 120 s, else timestamp_stale."""
    headers = sign_request(SECRET, "term_1", "POST", "/p", b"x", NOW + timedelta(seconds=offset)).as_dict()
    expected = None if abs(offset) <= TOLERANCE_SECONDS else ErrorCode.TIMESTAMP_STALE
    assert verdict(headers, "POST", "/p", b"x") is expected


def test_a_stale_forgery_is_signature_invalid_not_stale() -> None:
    """The signature is checked before the clock, so a bad signature never learns about the window."""
    headers = sign_request(b"x" * 32, "term_1", "POST", "/p", b"", NOW - timedelta(hours=1)).as_dict()
    assert verdict(headers, "POST", "/p", b"") is ErrorCode.SIGNATURE_INVALID


@pytest.mark.parametrize("missing", HEADER_NAMES)
def test_a_missing_header_is_signature_missing(missing: str) -> None:
    headers = sign_request(SECRET, "term_1", "POST", "/p", b"", NOW).as_dict()
    del headers[missing]
    with pytest.raises(ProtocolError) as caught:
        read_signed_headers(headers)
    assert caught.value.code is ErrorCode.SIGNATURE_MISSING
    with pytest.raises(ProtocolError) as nothing:
        read_signed_headers({})
    assert nothing.value.code is ErrorCode.SIGNATURE_MISSING


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Possim-Signature", "abc"),
        ("X-Possim-Signature", "v1="),
        ("X-Possim-Signature", "v2=00ff"),
        ("X-Possim-Timestamp", "-5"),
        ("X-Possim-Timestamp", "1.5"),
        ("X-Possim-Timestamp", "١٧٠٠"),  # Arabic-Indic digits: isdigit() but not ASCII
        ("X-Possim-Nonce", "n" * 65),
        ("X-Possim-Key-Id", ""),
    ],
)
def test_a_malformed_header_is_signature_invalid(name: str, value: str) -> None:
    headers = sign_request(SECRET, "term_1", "POST", "/p", b"", NOW).as_dict() | {name: value}
    with pytest.raises(ProtocolError) as caught:
        read_signed_headers(headers)
    assert caught.value.code is ErrorCode.SIGNATURE_INVALID


def test_an_absurdly_long_timestamp_is_signature_invalid() -> None:
    headers = sign_request(SECRET, "term_1", "POST", "/p", b"", NOW).as_dict() | {"X-Possim-Timestamp": "1" * 5_000}
    with pytest.raises(ProtocolError) as caught:
        read_signed_headers(headers)
    assert caught.value.code is ErrorCode.SIGNATURE_INVALID


@given(st.lists(st.booleans(), min_size=4, max_size=4))
def test_header_names_are_case_insensitive(upper: list[bool]) -> None:
    headers = sign_request(SECRET, "dev_42", "GET", "/v1/wallet", b"", NOW).as_dict()
    mixed = {(name.upper() if up else name.lower()): value for (name, value), up in zip(headers.items(), upper)}
    assert verdict(mixed, "GET", "/v1/wallet", b"") is None


def test_each_signing_draws_a_fresh_nonce_and_the_headers_carry_the_scheme() -> None:
    signed = [sign_request(SECRET, "term_1", "GET", "/p", b"", NOW) for _ in range(50)]
    assert len({s.nonce for s in signed}) == 50
    assert len({s.signature for s in signed}) == 50
    headers = signed[0].as_dict()
    assert set(headers) == set(HEADER_NAMES)
    assert headers["X-Possim-Signature"] == f"v1={signed[0].signature}"
    assert headers["X-Possim-Timestamp"] == str(int(NOW.timestamp()))
    assert isinstance(read_signed_headers(headers), SignedHeaders)
