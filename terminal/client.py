"""The register's payment client: signed requests, retries on the same order id, query then reverse.

Every request is signed (``protocol.signing``) with a fresh nonce per attempt. A payment whose answer
is lost is retried with the same order id, which is the core's idempotency key, so a retry can never
charge twice. If the outcome stays unknown the client asks for the order, and if even that fails it
reverses the order, so every sale ends in a final state. Nothing here raises to the caller: every path
returns a :class:`PaymentOutcome`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from protocol import Clock, ErrorCode, ProtocolError, parse_code, sign_request, system_clock

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class PaymentOutcome:
    """What the register tells the clerk. ``status`` is a payment status, or ``error`` / ``unknown``."""

    status: str
    order_id: str
    payment_id: str | None = None
    amount: int | None = None
    balance_after: int | None = None
    decline_code: str | None = None
    error_code: str | None = None
    message: str = ""
    http_status: int | None = None
    attempts: int = 0
    data: dict[str, Any] | None = None

    @property
    def final(self) -> bool:
        return self.status in {"succeeded", "declined", "reversed", "refunded"}


@dataclass(frozen=True)
class _Answer:
    status: int | None  # None: no answer at all (network error, timeout)
    data: dict[str, Any]
    attempts: int


class PaymentClient:
    def __init__(
        self,
        base_url: str,
        terminal_id: str,
        terminal_secret: bytes,
        *,
        clock: Clock = system_clock,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.terminal_id = terminal_id
        self._secret = terminal_secret
        self._clock = clock
        self._retries = max(0, retries)
        self._backoff = backoff
        self._sleep = sleep
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PaymentClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------------

    def _send_once(self, method: str, path: str, content: bytes) -> httpx.Response:
        signed = sign_request(self._secret, self.terminal_id, method, path, content, self._clock())
        headers = signed.as_dict() | {"content-type": "application/json"}
        return self._http.request(method, path, content=content, headers=headers)

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> _Answer:
        """Send with retries on no answer or a 5xx; each attempt is signed afresh with a new nonce."""
        content = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        attempts = 0
        last = _Answer(None, {}, 0)
        for attempt in range(self._retries + 1):
            if attempt:
                self._sleep(self._backoff * 2 ** (attempt - 1))
            attempts += 1
            try:
                response = self._send_once(method, path, content)
            except httpx.HTTPError:
                last = _Answer(None, {}, attempts)
                continue
            try:
                data = response.json()
            except ValueError:
                data = {}
            last = _Answer(response.status_code, data if isinstance(data, dict) else {}, attempts)
            if response.status_code not in RETRYABLE_STATUSES:
                return last
        return last

    # -- payments ----------------------------------------------------------------------------------

    def pay(self, order_id: str, amount: int, code: str, description: str | None = None) -> PaymentOutcome:
        """Charge ``amount`` for ``order_id`` with a scanned or typed wallet code."""
        try:
            parse_code(code)  # a misread is caught here and never counts as a guess at the core
        except ProtocolError as error:
            return PaymentOutcome("error", order_id, error_code=error.code.value, message=error.message)
        body: dict[str, Any] = {"order_id": order_id, "amount": amount, "code": code}
        if description is not None:
            body["description"] = description
        answer = self._send("POST", "/v1/payments", body)
        if answer.status is not None and answer.status not in RETRYABLE_STATUSES:
            return _outcome(order_id, answer)
        # The core may or may not have charged: ask, and if it cannot say, close the order.
        looked_up = self.query(order_id)
        if looked_up.final:
            return _with_attempts(looked_up, answer.attempts + looked_up.attempts)
        if looked_up.error_code == ErrorCode.NOT_FOUND.value or looked_up.status == "unknown":
            reversed_ = self.reverse(order_id)
            return _with_attempts(reversed_, answer.attempts + looked_up.attempts + reversed_.attempts)
        return looked_up

    def query(self, order_id: str) -> PaymentOutcome:
        return _outcome(order_id, self._send("GET", f"/v1/orders/{order_id}"))

    def reverse(self, order_id: str) -> PaymentOutcome:
        return _outcome(order_id, self._send("POST", f"/v1/orders/{order_id}/reverse", {}))

    def refund(self, payment_id: str, refund_id: str, amount: int | None = None) -> PaymentOutcome:
        body: dict[str, Any] = {"refund_id": refund_id}
        if amount is not None:
            body["amount"] = amount
        answer = self._send("POST", f"/v1/payments/{payment_id}/refunds", body)
        outcome = _outcome(refund_id, answer)
        if answer.status == 200:
            return PaymentOutcome(
                "refunded", refund_id, payment_id=payment_id, amount=answer.data.get("amount"),
                http_status=200, attempts=answer.attempts, data=answer.data,
            )  # fmt: skip
        return outcome

    def topup_cash(self, topup_id: str, amount: int, code: str) -> PaymentOutcome:
        """Cash handed over at the register, credited to the wallet whose code was shown."""
        answer = self._send("POST", "/v1/topups/cash", {"topup_id": topup_id, "amount": amount, "code": code})
        return _outcome(topup_id, answer)

    def new_order_id(self, prefix: str = "ord") -> str:
        return f"{prefix}-{secrets.token_hex(8)}"


def _with_attempts(outcome: PaymentOutcome, attempts: int) -> PaymentOutcome:
    return PaymentOutcome(**{**outcome.__dict__, "attempts": attempts})


def _outcome(order_id: str, answer: _Answer) -> PaymentOutcome:
    data = answer.data
    if answer.status is None:
        return PaymentOutcome(
            "unknown", order_id, error_code=ErrorCode.SERVICE_UNAVAILABLE.value,
            message="The payment service cannot be reached.", attempts=answer.attempts,
        )  # fmt: skip
    if answer.status == 200:
        return PaymentOutcome(
            str(data.get("status", "unknown")), order_id, payment_id=data.get("id"), amount=data.get("amount"),
            balance_after=data.get("balance_after"), decline_code=data.get("decline_code"),
            http_status=200, attempts=answer.attempts, data=data,
        )  # fmt: skip
    raw_error = data.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    code = str(error.get("code") or ErrorCode.INTERNAL.value)
    message = str(error.get("message") or f"HTTP {answer.status}")
    if answer.status == 402 or error.get("payment_id"):  # the core stored a decided, declined payment
        return PaymentOutcome(
            "declined", order_id, payment_id=error.get("payment_id"), decline_code=code, error_code=code,
            message=message, http_status=answer.status, attempts=answer.attempts, data=data,
        )  # fmt: skip
    status = "unknown" if answer.status in RETRYABLE_STATUSES else "error"
    return PaymentOutcome(
        status,
        order_id,
        error_code=code,
        message=message,
        http_status=answer.status,
        attempts=answer.attempts,
        data=data,
    )
