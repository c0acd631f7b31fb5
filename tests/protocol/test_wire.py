"""The wire contract every client shares: body bytes, the signed target, the body limit, the error envelope,
and signing as an ``httpx.Auth`` (the URL sent is the URL signed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from protocol import (
    MAX_BODY_BYTES,
    SPECS,
    ErrorCode,
    ManualClock,
    ProtocolError,
    encode_body,
    read_limited_body,
    read_signed_headers,
    request_target,
    verify_signature,
)
from protocol.http_auth import BearerAuth, SigningAuth

SECRET = b"s" * 32


def test_body_is_compact_json_or_nothing() -> None:
    assert encode_body({"order_id": "o-1", "amount": 100}) == b'{"order_id":"o-1","amount":100}'
    assert encode_body(None) == b""
    assert encode_body({}) == b"{}"


def test_request_target_keeps_escapes_and_the_raw_query() -> None:
    assert request_target(b"/v1/orders/a%2Fb", b"expand=store&x=%20") == "/v1/orders/a%2Fb?expand=store&x=%20"
    assert request_target("/v1/payments") == "/v1/payments"


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _read(declared: str | None, *parts: bytes) -> bytes:
    return asyncio.run(read_limited_body(declared, _chunks(*parts)))


def test_body_limit_by_declared_length_and_by_count() -> None:
    assert _read("3", b"abc") == b"abc"
    assert _read(None, b"a" * MAX_BODY_BYTES) == b"a" * MAX_BODY_BYTES
    with pytest.raises(ProtocolError) as declared:
        _read(str(MAX_BODY_BYTES + 1))
    assert declared.value.code is ErrorCode.BODY_TOO_LARGE and declared.value.status == 413
    with pytest.raises(ProtocolError) as counted:  # chunked: no length declared
        _read(None, b"a" * MAX_BODY_BYTES, b"b")
    assert counted.value.code is ErrorCode.BODY_TOO_LARGE
    with pytest.raises(ProtocolError) as unclear:
        _read("12x")
    assert unclear.value.code is ErrorCode.VALIDATION_FAILED and unclear.value.status == 422


def test_envelope_round_trip_keeps_code_param_status_and_details() -> None:
    sent = ProtocolError(ErrorCode.INSUFFICIENT_FUNDS, param="amount", details={"payment_id": "pay_1"})
    body = sent.envelope(order_id="o-1")
    assert body["error"]["payment_id"] == "pay_1" and body["error"]["order_id"] == "o-1"
    read = ProtocolError.from_envelope(402, body)
    assert read.code is ErrorCode.INSUFFICIENT_FUNDS
    assert (read.message, read.param, read.status) == (SPECS[ErrorCode.INSUFFICIENT_FUNDS].message, "amount", 402)
    assert read.details == {"payment_id": "pay_1", "order_id": "o-1"}


@pytest.mark.parametrize(
    ("status", "data", "code", "message"),
    [
        (503, "<html>bad gateway</html>", ErrorCode.SERVICE_UNAVAILABLE, "The server answered HTTP 503."),
        (502, None, ErrorCode.SERVICE_UNAVAILABLE, "The server answered HTTP 502."),
        (500, {"error": "not an object"}, ErrorCode.SERVICE_UNAVAILABLE, "The server answered HTTP 500."),
        (418, {"error": "not an object"}, ErrorCode.INTERNAL, "The server answered HTTP 418."),
        (400, {"error": {"code": "from_a_newer_core", "message": "New rule."}}, ErrorCode.INTERNAL, "New rule."),
    ],
)
def test_an_answer_that_is_no_known_envelope_is_still_an_error(
    status: int, data: object, code: ErrorCode, message: str
) -> None:
    read = ProtocolError.from_envelope(status, data)
    assert (read.code, read.status, read.message) == (code, status, message)


def test_signing_auth_signs_the_url_httpx_sends() -> None:
    clock = ManualClock()
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    auth = SigningAuth("term_1", SECRET, clock)
    with httpx.Client(base_url="http://core.test/api/", auth=auth, transport=httpx.MockTransport(answer)) as client:
        client.post("v1/orders/o%2F1/reverse", params={"lang": "ja"}, content=b'{"a":1}')
        client.post("v1/orders/o%2F1/reverse", params={"lang": "ja"}, content=b'{"a":1}')
    first, second = seen
    assert first.url.raw_path == b"/api/v1/orders/o%2F1/reverse?lang=ja"
    for request in seen:
        signed = read_signed_headers(request.headers)
        verify_signature(SECRET, signed, "POST", "/api/v1/orders/o%2F1/reverse?lang=ja", b'{"a":1}', clock())
    assert first.headers["X-Possim-Nonce"] != second.headers["X-Possim-Nonce"]  # a fresh nonce per request
    target = "/api/v1/orders/o%2F1/reverse?lang=ja"
    with pytest.raises(ProtocolError):  # the signature covers the body
        verify_signature(SECRET, read_signed_headers(first.headers), "POST", target, b'{"a":2}', clock())


def test_bearer_auth_sets_the_header() -> None:
    request = next(BearerAuth("tok").auth_flow(httpx.Request("GET", "http://core.test/v1/account")))
    assert request.headers["Authorization"] == "Bearer tok"
