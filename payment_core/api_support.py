"""Helpers shared by the API's route modules: error answers, body parsing, the worker-thread runner."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from fastapi import Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from payment_core import confirmations, payments, topups
from payment_core.core import Core
from payment_core.models import Payment, Topup
from payment_core.schemas import ID_PATTERN, ORDER_ID
from payment_core.sources import client_address, current_source
from protocol import ErrorCode, ProtocolError

log = logging.getLogger("possim.core")
MAX_BODY_BYTES = 64 * 1024
_WHOLE_DIGITS = 19  # a whole float with more digits than this is no amount: left a float (refused)
M = TypeVar("M", bound=BaseModel)
Headers = Mapping[str, str]
Handler = Callable[[Headers, str, bytes], JSONResponse]
Runner = Callable[[Request, Handler], Awaitable[JSONResponse]]
# Path parameters, checked before the handler runs (422): ids the core makes are `pay_<hex>`, device numbers
# fit the 32-bit column (a larger one was a database error).
ORDER_ID_PATH = Annotated[str, Path(pattern=ID_PATTERN, description="The register's order id.")]
PAYMENT_ID_PATH = Annotated[str, Path(pattern=r"^[A-Za-z0-9_]{1,64}$", description="A payment id, `pay_...`.")]
DEVICE_ID_PATH = Annotated[int, Path(ge=1, le=2**31 - 1, description="A device number (the `device_id`).")]


def error_response(error: ProtocolError, *, retry_after: int | None = None, **extra: Any) -> JSONResponse:
    """The error shape; a 429 always carries ``Retry-After`` (and ``retry_after`` in the body)."""
    retry_after = getattr(error, "retry_after", None) or retry_after
    if retry_after is None:
        return JSONResponse({"error": error.to_dict() | extra}, status_code=error.status)
    body = {"error": error.to_dict() | extra | {"retry_after": retry_after}}
    return JSONResponse(body, status_code=error.status, headers={"Retry-After": str(retry_after)})


def retry_after_for(core: Core, code: ErrorCode) -> int | None:
    """Seconds to wait after a 429 that does not say so itself: code guessing is counted over a window."""
    if code is ErrorCode.CODE_GUESSING_THROTTLED:
        return core.config.limits.code_failure_window_seconds
    return None


def _whole_number(text: str) -> int | float:
    """A JSON number as an exact integer when it is one (``100.0``, ``1e2``), read in decimal, never binary.

    JSON has one number type and JSON Schema counts ``100.0`` as the integer 100; ``100.5`` (or a number
    too large to be an amount) stays a float, which the strict integer fields refuse."""
    number = Decimal(text)
    if number.is_finite() and number.adjusted() < _WHOLE_DIGITS and number == number.to_integral_value():
        return int(number)
    return float(text)


def _integral_floats_as_ints(body: bytes) -> bytes:
    """The body with whole-valued JSON numbers written as integers; anything that does not parse is left as
    it is, for pydantic to refuse with its own message."""
    try:
        data = json.loads(body.decode("utf-8"), parse_float=_whole_number)
    except (ValueError, RecursionError):
        return body
    return json.dumps(data).encode()


def parse_body(model: type[M], body: bytes) -> M:
    if len(body) > MAX_BODY_BYTES:
        raise ProtocolError(ErrorCode.BODY_TOO_LARGE, f"The request body is over {MAX_BODY_BYTES} bytes.")
    try:
        return model.model_validate_json(_integral_floats_as_ints(body) if body else b"{}")
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, f"{param}: {first['msg']}", param=param) from None


def _signed_path(request: Request) -> str:
    """The path and query exactly as the client sent them (percent-escapes kept): what it signed."""
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) and raw_path else request.url.path
    query = request.scope.get("query_string", b"").decode("latin-1")
    return path + (f"?{query}" if query else "")


def payment_view_response(core: Core, payment: Payment) -> JSONResponse:
    """The payment object, whatever its status (lookups and reversals)."""
    with core.transaction() as session:
        return JSONResponse(payments.payment_view(payment, payments.store_name(session, payment.merchant_id)))


def payment_response(core: Core, payment: Payment) -> JSONResponse:
    """The answer to a charge: the payment object, or its decline as an error with the payment's id."""
    if payment.status == payments.DECLINED and payment.decline_code:
        code = ErrorCode(payment.decline_code)
        wait = retry_after_for(core, code)
        return error_response(ProtocolError(code), retry_after=wait, payment_id=payment.id, order_id=payment.order_id)
    if payment.status == payments.AWAITING_CUSTOMER:
        with core.transaction() as session:
            store = payments.store_name(session, payment.merchant_id)
        view = payments.awaiting_view(payment, store, confirmations.confirm_before(core, payment))
        return JSONResponse(view, status_code=202)
    return payment_view_response(core, payment)


def topup_response(core: Core, topup: Topup) -> JSONResponse:
    """A credited top-up, or its decline as an error naming the stored top-up (a repeat replays it)."""
    if topup.status != "succeeded" and topup.decline_code:
        code = ErrorCode(topup.decline_code)
        message = topups.BANK_DECLINED_MESSAGE if topup.method == "bank" and code is ErrorCode.CARD_DECLINED else None
        wait = retry_after_for(core, code)
        return error_response(ProtocolError(code, message), retry_after=wait, topup_id=topup.topup_key)
    return JSONResponse(topups.topup_view(topup))


def check_order_id(order_id: str) -> str:
    if not ORDER_ID.fullmatch(order_id):
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "order_id: not a valid order id", param="order_id")
    return order_id


async def _read_body(request: Request) -> bytes:
    """The body, refused before it is all in memory when it is larger than ``MAX_BODY_BYTES``."""
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit():
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "The request body's length is unclear.")
    if int(declared) > MAX_BODY_BYTES:
        raise ProtocolError(ErrorCode.BODY_TOO_LARGE, f"The request body is over {MAX_BODY_BYTES} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ProtocolError(ErrorCode.BODY_TOO_LARGE, f"The request body is over {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def make_runner(core: Core) -> Runner:
    """Run a handler in a worker thread with the request's client address as ``sources.current_source``."""
    trusted = core.config.trusted_proxies

    async def run(request: Request, handler: Handler) -> JSONResponse:
        peer = request.client.host if request.client else None
        current_source.set(client_address(peer, request.headers.get("x-forwarded-for"), trusted))
        body = await _read_body(request)
        return await run_in_threadpool(handler, request.headers, _signed_path(request), body)

    return run


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def digits_only(card_number: str) -> str:
    return "".join(char for char in card_number if char.isdigit())
