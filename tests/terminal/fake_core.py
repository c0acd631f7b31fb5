"""An in-memory core for the register's payment client (httpx.MockTransport) that checks every signature.

The fake core verifies each request with ``protocol.signing`` and the terminal's secret, refuses a replayed
nonce, keeps orders by order id (the idempotency key) and fails on cue: ``down`` (nothing reaches it),
``drop`` (it does the work and the answer is lost), or any scripted response. Sleeps are recorded and move
the clock; nothing really waits. Used by ``test_client_mock.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from protocol import (
    ErrorCode,
    ManualClock,
    ProtocolError,
    mint_code,
    read_signed_headers,
    verify_signature,
)
from terminal import FINAL_STATUSES, PaymentClient

TERMINAL = "term_test1"
SECRET = b"terminal-secret-" * 2
DEVICE_SECRET = b"device-secret-00" * 2
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
BASE_URL = "http://core.test"
STATUSES = FINAL_STATUSES | {"error", "unknown"}

Behaviour = str | Callable[[httpx.Request], httpx.Response]


def error_response(code: ErrorCode, **extra: Any) -> httpx.Response:
    error = ProtocolError(code)
    return httpx.Response(error.status, json={"error": error.to_dict() | extra})


def decline(code: ErrorCode = ErrorCode.INSUFFICIENT_FUNDS) -> Behaviour:
    """The core's answer for a payment it stored as declined: 402 with the payment's id."""
    return lambda _request: error_response(code, payment_id="pay_declined")


def status(code: int, content: bytes = b"") -> Behaviour:
    return lambda _request: httpx.Response(code, content=content)


@dataclass
class Seen:
    """One request as the core received it."""

    method: str
    path: str  # decoded path plus raw query, what the real core verifies
    body: bytes
    headers: dict[str, str]
    outcome: str = "ok"
    refused: ErrorCode | None = None

    @property
    def nonce(self) -> str:
        return self.headers["x-possim-nonce"]

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class FakeCore:
    clock: ManualClock
    secret: bytes = SECRET
    script: dict[str, list[Behaviour]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    orders: dict[str, tuple[bytes, dict[str, Any]]] = field(default_factory=dict)
    nonces: set[str] = field(default_factory=set)

    def route(self, request: httpx.Request) -> str:
        path = request.url.path
        if path == "/v1/payments":
            return "pay"
        if path.startswith("/v1/orders/"):
            return "reverse" if path.endswith("/reverse") else "query"
        if path.endswith("/refunds"):
            return "refund"
        return "topup" if path == "/v1/topups/cash" else "other"

    def handle(self, request: httpx.Request) -> httpx.Response:
        query = request.url.query.decode()
        seen = Seen(
            request.method, request.url.path + (f"?{query}" if query else ""), request.content, dict(request.headers)
        )
        self.seen.append(seen)
        queue = self.script.get(self.route(request), [])
        behaviour = queue.pop(0) if queue else "ok"
        if behaviour == "down":
            seen.outcome = "down"
            raise httpx.ConnectError("core unreachable", request=request)
        try:
            signed = read_signed_headers(request.headers)
            verify_signature(self.secret, signed, request.method, seen.path, request.content, self.clock())
            if signed.key_id != TERMINAL:
                raise ProtocolError(ErrorCode.TERMINAL_UNKNOWN)
            if signed.nonce in self.nonces:
                raise ProtocolError(ErrorCode.NONCE_REPLAYED)
            self.nonces.add(signed.nonce)
        except ProtocolError as error:
            seen.refused = error.code
            return error_response(error.code)
        response = behaviour(request) if callable(behaviour) else self.answer(request)
        if behaviour == "drop":
            seen.outcome = "drop"
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    def answer(self, request: httpx.Request) -> httpx.Response:
        """What a healthy core answers, keeping orders by their id."""
        route = self.route(request)
        order_id = request.url.path.split("/")[3] if route in {"query", "reverse"} else None
        if route == "pay":
            body = json.loads(request.content)
            order_id = body["order_id"]
            if order_id in self.orders:
                stored_body, payment = self.orders[order_id]
                if stored_body != request.content and payment["status"] != "reversed":
                    return error_response(ErrorCode.IDEMPOTENCY_CONFLICT, param="order_id")
                return httpx.Response(200, json=payment)
            payment = {
                "id": f"pay_{len(self.orders) + 1}",
                "object": "payment",
                "order_id": order_id,
                "amount": body["amount"],
                "currency": "JPY",
                "status": "succeeded",
                "decline_code": None,
                "amount_refunded": 0,
                "balance_after": 10_000 - body["amount"],
                "store": "Shibuya",
            }
            self.orders[order_id] = (request.content, payment)
            return httpx.Response(200, json=payment)
        if route == "query":
            if order_id not in self.orders:
                return error_response(ErrorCode.NOT_FOUND)
            return httpx.Response(200, json=self.orders[order_id][1])
        if route == "reverse":
            assert order_id is not None
            _, payment = self.orders.get(order_id, (b"", {"id": "pay_closed", "order_id": order_id, "amount": 0}))
            payment = payment | {"status": "reversed"}
            self.orders[order_id] = (b"", payment)
            return httpx.Response(200, json=payment)
        if route == "refund":
            body = json.loads(request.content)
            payment_id = request.url.path.split("/")[3]
            made = {
                "id": "re_1",
                "object": "refund",
                "payment_id": payment_id,
                "amount": body.get("amount", 1_000),
                "currency": "JPY",
                "status": "succeeded",
            }
            return httpx.Response(200, json=made)
        if route == "topup":
            body = json.loads(request.content)
            made = {
                "id": "top_1",
                "object": "topup",
                "topup_id": body["topup_id"],
                "amount": body["amount"],
                "method": "cash",
                "status": "succeeded",
                "decline_code": None,
                "balance_after": 10_000 + body["amount"],
            }
            return httpx.Response(200, json=made)
        return error_response(ErrorCode.NOT_FOUND)

    def paths(self) -> list[str]:
        return [f"{s.method} {s.path}" for s in self.seen]


@dataclass
class Register:
    client: PaymentClient
    core: FakeCore
    clock: ManualClock
    sleeps: list[float]


def make_register(retries: int = 3, secret: bytes = SECRET) -> Register:
    clock = ManualClock(NOW)
    core = FakeCore(clock, secret=secret)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    client = PaymentClient(
        BASE_URL,
        TERMINAL,
        SECRET,
        clock=clock,
        retries=retries,
        backoff=0.2,
        transport=httpx.MockTransport(core.handle),
        sleep=sleep,
    )
    return Register(client, core, clock, sleeps)


def a_code(clock: ManualClock, counter: int = 0, numeric: bool = False) -> str:
    code = mint_code(DEVICE_SECRET, 4242, clock(), counter)
    return code.numeric if numeric else code.qr
