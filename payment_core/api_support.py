"""Helpers shared by the API's route modules: error answers, body parsing, the worker-thread runner."""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from payment_core import confirmations, payments, topups
from payment_core.core import Core
from payment_core.models import Payment, Topup
from payment_core.schemas import ORDER_ID
from payment_core.sources import client_address, current_source
from protocol import ErrorCode, ProtocolError

log = logging.getLogger("possim.core")
MAX_BODY_BYTES = 64 * 1024
M = TypeVar("M", bound=BaseModel)
Headers = Mapping[str, str]
Handler = Callable[[Headers, str, bytes], JSONResponse]
Runner = Callable[[Request, Handler], Awaitable[JSONResponse]]


def error_response(error: ProtocolError, **extra: Any) -> JSONResponse:
    retry_after = getattr(error, "retry_after", None)
    if retry_after is None:
        return JSONResponse({"error": error.to_dict() | extra}, status_code=error.status)
    body = {"error": error.to_dict() | extra | {"retry_after": retry_after}}
    return JSONResponse(body, status_code=error.status, headers={"Retry-After": str(retry_after)})


def parse_body(model: type[M], body: bytes) -> M:
    if len(body) > MAX_BODY_BYTES:
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "The request body is too large.")
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, f"{param}: {first['msg']}", param=param) from None


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _signed_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def payment_view_response(core: Core, payment: Payment) -> JSONResponse:
    """The payment object, whatever its status (lookups and reversals)."""
    with core.transaction() as session:
        return JSONResponse(payments.payment_view(payment, payments.store_name(session, payment.merchant_id)))


def payment_response(core: Core, payment: Payment) -> JSONResponse:
    """The answer to a charge: the payment object, or its decline as an error with the payment's id."""
    if payment.status == payments.DECLINED and payment.decline_code:
        error = ProtocolError(ErrorCode(payment.decline_code))
        return error_response(error, payment_id=payment.id, order_id=payment.order_id)
    if payment.status == payments.AWAITING_CUSTOMER:
        with core.transaction() as session:
            store = payments.store_name(session, payment.merchant_id)
        view = payments.awaiting_view(payment, store, confirmations.confirm_before(core, payment))
        return JSONResponse(view, status_code=202)
    return payment_view_response(core, payment)


def topup_response(topup: Topup) -> JSONResponse:
    """A credited top-up, or its decline as an error naming the stored top-up (a repeat replays it)."""
    if topup.status != "succeeded" and topup.decline_code:
        code = ErrorCode(topup.decline_code)
        message = topups.BANK_DECLINED_MESSAGE if topup.method == "bank" and code is ErrorCode.CARD_DECLINED else None
        return error_response(ProtocolError(code, message), topup_id=topup.topup_key)
    return JSONResponse(topups.topup_view(topup))


def check_order_id(order_id: str) -> str:
    if not ORDER_ID.fullmatch(order_id):
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "order_id: not a valid order id", param="order_id")
    return order_id


async def _read_body(request: Request) -> bytes:
    """The body, refused before it is all in memory when it is larger than ``MAX_BODY_BYTES``."""
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "The request body is too large or its length is unclear.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ProtocolError(ErrorCode.VALIDATION_FAILED, "The request body is too large.")
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
