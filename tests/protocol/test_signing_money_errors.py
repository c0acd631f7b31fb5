"""Request signing, money helpers and the error catalogue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from protocol import (
    MAX_AMOUNT_YEN,
    SPECS,
    ErrorCode,
    ProtocolError,
    format_yen,
    read_signed_headers,
    require_amount,
    sign_request,
    verify_signature,
)

SECRET = b"t" * 32
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
BODY = b'{"order_id":"o-1","amount":100}'


def signed_headers() -> dict[str, str]:
    return sign_request(SECRET, "term_1", "POST", "/v1/payments", BODY, NOW, nonce="abc").as_dict()


def check(headers: dict[str, str], method: str = "POST", path: str = "/v1/payments", body: bytes = BODY) -> None:
    verify_signature(SECRET, read_signed_headers(headers), method, path, body, NOW)


def code_of(headers: dict[str, str], **kwargs: object) -> ErrorCode:
    with pytest.raises(ProtocolError) as caught:
        check(headers, **kwargs)  # type: ignore[arg-type]
    return caught.value.code


def test_round_trip_and_case_insensitive_headers() -> None:
    check(signed_headers())
    check({name.lower(): value for name, value in signed_headers().items()})


@pytest.mark.parametrize(
    "change",
    [
        {"method": "PUT"},
        {"path": "/v1/payments?x=1"},
        {"body": BODY + b" "},
    ],
)
def test_any_change_to_what_was_signed_fails(change: dict[str, object]) -> None:
    assert code_of(signed_headers(), **change) is ErrorCode.SIGNATURE_INVALID


@pytest.mark.parametrize("header", ["X-Possim-Key-Id", "X-Possim-Nonce", "X-Possim-Timestamp"])
def test_changed_header_fails(header: str) -> None:
    headers = signed_headers()
    headers[header] = headers[header] + "1"
    assert code_of(headers) is ErrorCode.SIGNATURE_INVALID


def test_timestamp_tolerance_is_120_seconds() -> None:
    for offset, ok in ((120, True), (-120, True), (121, False), (-121, False)):
        headers = sign_request(SECRET, "term_1", "POST", "/p", b"", NOW + timedelta(seconds=offset)).as_dict()
        if ok:
            verify_signature(SECRET, read_signed_headers(headers), "POST", "/p", b"", NOW)
        else:
            with pytest.raises(ProtocolError) as caught:
                verify_signature(SECRET, read_signed_headers(headers), "POST", "/p", b"", NOW)
            assert caught.value.code is ErrorCode.TIMESTAMP_STALE


def test_missing_and_malformed_headers() -> None:
    headers = signed_headers()
    del headers["X-Possim-Nonce"]
    with pytest.raises(ProtocolError) as missing:
        read_signed_headers(headers)
    assert missing.value.code is ErrorCode.SIGNATURE_MISSING
    for name, value in [("X-Possim-Signature", "v0=abc"), ("X-Possim-Timestamp", "soon"), ("X-Possim-Nonce", "")]:
        bad = signed_headers() | {name: value}
        with pytest.raises(ProtocolError) as malformed:
            read_signed_headers(bad)
        assert malformed.value.code is ErrorCode.SIGNATURE_INVALID


def test_amounts_are_positive_whole_yen() -> None:
    assert require_amount(1) == 1
    assert require_amount(MAX_AMOUNT_YEN) == MAX_AMOUNT_YEN
    for bad in (0, -5, MAX_AMOUNT_YEN + 1, True, 1.0, "100", None):
        with pytest.raises(ProtocolError) as caught:
            require_amount(bad)
        assert caught.value.code is ErrorCode.AMOUNT_INVALID


def test_format_yen() -> None:
    assert format_yen(1234567) == "¥1,234,567"
    assert format_yen(-500) == "-¥500"


def test_every_error_code_has_a_spec_and_a_stripe_shape() -> None:
    assert set(SPECS) == set(ErrorCode)
    error = ProtocolError(ErrorCode.CODE_EXPIRED, param="code")
    assert error.to_dict() == {
        "type": "payment_error",
        "code": "code_expired",
        "message": "The payment code has expired; refresh it.",
        "param": "code",
    }
    assert error.status == 402
    assert all(400 <= spec.status < 600 for spec in SPECS.values())
