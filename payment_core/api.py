"""The core's HTTP API (FastAPI). See docs/API.md and docs/WALLET_API.md; errors are Stripe-shaped
``{"error": {...}}``.

Handlers read the raw body (it is what the signature covers), authenticate, then do their work in a
worker thread: the store is synchronous SQLAlchemy. Terminal routes are here; the wallet's (sign-up,
enrollment, device-signed routes) are in ``payment_core.api_wallet``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from payment_core import api_account, api_openapi, api_wallet, payments, topups
from payment_core.api_openapi import Auth, operation
from payment_core.api_support import (
    ORDER_ID_PATH,
    PAYMENT_ID_PATH,
    Headers,
    check_order_id,
    error_response,
    log,
    make_runner,
    parse_body,
    payment_response,
    payment_view_response,
    retry_after_for,
    topup_response,
)
from payment_core.auth import RequestAuthenticator
from payment_core.core import Core
from payment_core.schemas import CashTopupBody, PaymentBody, RefundBody
from protocol import ErrorCode, ProtocolError

__all__ = ["create_app", "error_response", "parse_body"]


def _add_error_handlers(app: FastAPI, core: Core) -> None:
    @app.exception_handler(ProtocolError)
    async def _protocol_error(_request: Request, exc: ProtocolError) -> JSONResponse:
        return error_response(exc, retry_after=retry_after_for(core, exc.code))

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
        if exc.status_code == 405:  # Starlette names the path's methods in Allow (RFC 9110 15.5.6): keep it
            answer = error_response(ProtocolError(ErrorCode.METHOD_NOT_ALLOWED))
            answer.headers["Allow"] = (exc.headers or {}).get("Allow", "")
            return answer
        return error_response(ProtocolError(ErrorCode.VALIDATION_FAILED, str(exc.detail)))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error: %s", type(exc).__name__)
        return error_response(ProtocolError(ErrorCode.INTERNAL))


def create_app(core: Core) -> FastAPI:
    app = FastAPI(title="possim payment core", version="1", docs_url=None, redoc_url=None)
    auth = RequestAuthenticator(core)
    run = make_runner(core)
    _add_error_handlers(app, core)
    api_openapi.install(app)

    @app.get("/healthz", openapi_extra={"security": [], "responses": {"405": api_openapi.ref(405)}})
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/payments", openapi_extra=operation(Auth.TERMINAL, (400, 402, 409, 429), PaymentBody, ok=(200, 202)))
    async def create_payment(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            terminal = auth.terminal(headers, "POST", path, body)
            data = parse_body(PaymentBody, body)
            wanted = payments.PaymentRequest(data.order_id, data.amount, data.code, data.description)
            return payment_response(core, payments.create_payment(core, terminal, wanted))

        return await run(request, handle)

    @app.get("/v1/orders/{order_id}", openapi_extra=operation(Auth.TERMINAL, (404,)))
    async def get_order(request: Request, order_id: ORDER_ID_PATH) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            terminal = auth.terminal(headers, "GET", path, body)
            return payment_view_response(core, payments.get_order(core, terminal, check_order_id(order_id)))

        return await run(request, handle)

    @app.post("/v1/orders/{order_id}/reverse", openapi_extra=operation(Auth.TERMINAL, (400,)))
    async def reverse_order(request: Request, order_id: ORDER_ID_PATH) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            terminal = auth.terminal(headers, "POST", path, body)
            return payment_view_response(core, payments.reverse_order(core, terminal, check_order_id(order_id)))

        return await run(request, handle)

    @app.post("/v1/payments/{payment_id}/refunds", openapi_extra=operation(Auth.TERMINAL, (400, 404, 409), RefundBody))
    async def refund(request: Request, payment_id: PAYMENT_ID_PATH) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            terminal = auth.terminal(headers, "POST", path, body)
            data = parse_body(RefundBody, body)
            made = payments.refund_payment(core, terminal, payment_id, data.refund_id, data.amount)
            return JSONResponse(payments.refund_view(made))

        return await run(request, handle)

    @app.post("/v1/topups/cash", openapi_extra=operation(Auth.TERMINAL, (400, 402, 409, 429), CashTopupBody))
    async def topup_cash(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            terminal = auth.terminal(headers, "POST", path, body)
            data = parse_body(CashTopupBody, body)
            wanted = topups.TopupRequest(data.topup_id, data.amount, "cash", data.code)
            return topup_response(core, topups.topup_cash(core, terminal, wanted))

        return await run(request, handle)

    api_wallet.add_routes(app, core, auth, run)
    api_account.add_routes(app, core, auth, run)
    return app
