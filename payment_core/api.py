"""The core's HTTP API (FastAPI). See docs/API.md; errors are Stripe-shaped ``{"error": {...}}``.

Handlers read the raw body (it is what the signature covers), authenticate, then do their work in a
worker thread: the store is synchronous SQLAlchemy.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from payment_core import accounts, confirmations, payments, topups
from payment_core.auth import RequestAuthenticator
from payment_core.core import Core
from payment_core.ledger import balance_of, book_by_name, wallet_book_name
from payment_core.models import Payment, Topup
from payment_core.schemas import (
    ORDER_ID,
    AccountBody,
    CardTopupBody,
    CashTopupBody,
    ConfirmBody,
    DeviceBody,
    PaymentBody,
    RefundBody,
)
from protocol import ErrorCode, ProtocolError

log = logging.getLogger("possim.core")
MAX_BODY_BYTES = 64 * 1024
M = TypeVar("M", bound=BaseModel)
Headers = Mapping[str, str]


def error_response(error: ProtocolError, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error.to_dict() | extra}, status_code=error.status)


def parse_body(model: type[M], body: bytes) -> M:
    if len(body) > MAX_BODY_BYTES:
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "The request body is too large.")
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, f"{param}: {first['msg']}", param=param) from None


def _openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _signed_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _payment_view(core: Core, payment: Payment) -> JSONResponse:
    """The payment object, whatever its status (lookups and reversals)."""
    with core.transaction() as session:
        return JSONResponse(payments.payment_view(payment, payments.store_name(session, payment.merchant_id)))


def _payment_response(core: Core, payment: Payment) -> JSONResponse:
    """The answer to a charge: the payment object, or its decline as an error with the payment's id."""
    if payment.status == payments.DECLINED and payment.decline_code:
        error = ProtocolError(ErrorCode(payment.decline_code))
        return error_response(error, payment_id=payment.id, order_id=payment.order_id)
    if payment.status == payments.AWAITING_CUSTOMER:
        with core.transaction() as session:
            store = payments.store_name(session, payment.merchant_id)
        view = payments.awaiting_view(payment, store, confirmations.confirm_before(core, payment))
        return JSONResponse(view, status_code=202)
    return _payment_view(core, payment)


def _topup_response(topup: Topup) -> JSONResponse:
    """A credited top-up, or its decline as an error naming the stored top-up (a repeat replays it)."""
    if topup.status != "succeeded" and topup.decline_code:
        return error_response(ProtocolError(ErrorCode(topup.decline_code)), topup_id=topup.topup_key)
    return JSONResponse(topups.topup_view(topup))


def _check_order_id(order_id: str) -> str:
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


def create_app(core: Core) -> FastAPI:
    app = FastAPI(title="possim payment core", version="1", docs_url=None, redoc_url=None)
    auth = RequestAuthenticator(core)

    @app.exception_handler(ProtocolError)
    async def _protocol_error(_request: Request, exc: ProtocolError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(ProtocolError(ErrorCode.VALIDATION_FAILED, str(exc.errors()[0].get("msg", ""))))

    @app.exception_handler(DBAPIError)
    async def _database_error(_request: Request, exc: DBAPIError) -> JSONResponse:
        log.error("database error: %s", type(exc.orig).__name__)
        return error_response(ProtocolError(ErrorCode.SERVICE_UNAVAILABLE))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(ProtocolError(ErrorCode.NOT_FOUND))
        if exc.status_code == 405:
            return error_response(ProtocolError(ErrorCode.METHOD_NOT_ALLOWED))
        return error_response(ProtocolError(ErrorCode.VALIDATION_FAILED, str(exc.detail)))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error: %s", type(exc).__name__)
        return error_response(ProtocolError(ErrorCode.INTERNAL))

    async def run(request: Request, handler: Callable[[Headers, str, bytes], JSONResponse]) -> JSONResponse:
        body = await _read_body(request)
        return await run_in_threadpool(handler, request.headers, _signed_path(request), body)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/payments", openapi_extra=_openapi_body(PaymentBody))
    async def create_payment(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            terminal = auth.terminal(headers, "POST", path, body)
            data = parse_body(PaymentBody, body)
            wanted = payments.PaymentRequest(data.order_id, data.amount, data.code, data.description)
            return _payment_response(core, payments.create_payment(core, terminal, wanted))

        return await run(request, handle)

    @app.get("/v1/orders/{order_id}")
    async def get_order(request: Request, order_id: str) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            terminal = auth.terminal(headers, "GET", path, body)
            return _payment_view(core, payments.get_order(core, terminal, _check_order_id(order_id)))

        return await run(request, handle)

    @app.post("/v1/orders/{order_id}/reverse")
    async def reverse_order(request: Request, order_id: str) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            terminal = auth.terminal(headers, "POST", path, body)
            return _payment_view(core, payments.reverse_order(core, terminal, _check_order_id(order_id)))

        return await run(request, handle)

    @app.post("/v1/payments/{payment_id}/refunds", openapi_extra=_openapi_body(RefundBody))
    async def refund(request: Request, payment_id: str) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            terminal = auth.terminal(headers, "POST", path, body)
            data = parse_body(RefundBody, body)
            made = payments.refund_payment(core, terminal, payment_id, data.refund_id, data.amount)
            return JSONResponse(payments.refund_view(made))

        return await run(request, handle)

    @app.post("/v1/topups/cash", openapi_extra=_openapi_body(CashTopupBody))
    async def topup_cash(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            terminal = auth.terminal(headers, "POST", path, body)
            data = parse_body(CashTopupBody, body)
            wanted = topups.TopupRequest(data.topup_id, data.amount, "cash", data.code)
            return _topup_response(topups.topup_cash(core, terminal, wanted))

        return await run(request, handle)

    @app.post("/v1/topups/card", openapi_extra=_openapi_body(CardTopupBody))
    async def topup_card(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "POST", path, body)
            data = parse_body(CardTopupBody, body)
            made = topups.topup_card(
                core, device, topups.TopupRequest(data.topup_id, data.amount, "card", _digits_only(data.card_number))
            )
            return _topup_response(made)

        return await run(request, handle)

    @app.get("/v1/wallet")
    async def wallet(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "GET", path, body)
            with core.transaction() as session:
                book = book_by_name(session, wallet_book_name(device.account_id))
                balance = balance_of(session, book.id)
            view = {"account_id": device.account_id, "device_id": device.id, "balance": balance, "currency": "JPY"}
            return JSONResponse(view)

        return await run(request, handle)

    @app.get("/v1/wallet/awaiting")
    async def awaiting(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "GET", path, body)
            waiting = confirmations.awaiting_for(core, device)
            views = [
                payments.awaiting_view(row, store, confirmations.confirm_before(core, row)) for row, store in waiting
            ]
            return JSONResponse({"object": "list", "data": views})

        return await run(request, handle)

    @app.post("/v1/wallet/payments/{payment_id}/confirm", openapi_extra=_openapi_body(ConfirmBody))
    async def confirm(request: Request, payment_id: str) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "POST", path, body)
            data = parse_body(ConfirmBody, body)
            answered = confirmations.answer(core, device, payment_id, data.decision == "approve")
            return _payment_view(core, answered)

        return await run(request, handle)

    @app.post("/v1/accounts", status_code=201, openapi_extra=_openapi_body(AccountBody))
    async def create_account(request: Request) -> JSONResponse:
        def handle(_headers: Headers, _path: str, body: bytes) -> JSONResponse:
            data = parse_body(AccountBody, body)
            account = accounts.create_account(core, data.email, data.password, data.display_name)
            return JSONResponse({"id": account.id, "object": "account", "email": account.email}, status_code=201)

        return await run(request, handle)

    @app.post("/v1/devices", status_code=201, openapi_extra=_openapi_body(DeviceBody))
    async def enroll_device(request: Request) -> JSONResponse:
        def handle(_headers: Headers, _path: str, body: bytes) -> JSONResponse:
            data = parse_body(DeviceBody, body)
            enrolled = accounts.enroll_device(core, data.email, data.password, data.device_name)
            return JSONResponse(
                {
                    "device_id": enrolled.device.id,
                    "key_id": f"dev_{enrolled.device.id}",
                    "device_secret": _b64(enrolled.secret),
                    "account_id": enrolled.device.account_id,
                },
                status_code=201,
            )

        return await run(request, handle)

    return app


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _digits_only(card_number: str) -> str:
    return "".join(char for char in card_number if char.isdigit())
