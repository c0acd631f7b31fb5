"""The core's HTTP API (FastAPI). See docs/API.md and docs/WALLET_API.md; errors are Stripe-shaped
``{"error": {...}}`` (``payment_core.api_errors``).

Each route declares what it needs as dependencies (``payment_core.api_request``): the raw body (what the
signature covers, read under the size limit), the terminal, phone or session that sent it. Route
functions are plain ``def``s, so FastAPI runs them in its worker threads: the store is synchronous
SQLAlchemy. The registers' routes, here, are the exception: each checks the signature, does its work and
commits in one worker thread (``api_request.TerminalCall``), the fewest waits for the event loop, which a
sign-in flood keeps busy. Terminal routes are here; the wallet's are in ``payment_core.api_wallet`` and
``payment_core.api_account``.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig

from payment_core import api_account, api_admin, api_openapi, api_wallet, payments, topups
from payment_core.api_errors import error_response, install_error_handlers
from payment_core.api_openapi import Auth, operation
from payment_core.api_request import (
    ORDER_ID_PATH,
    PAYMENT_ID_PATH,
    Call,
    TerminalCall,
    check_order_id,
    parse_body,
)
from payment_core.api_unit import RequestTransactions
from payment_core.api_views import payment_response, payment_view_response, topup_response
from payment_core.auth import RequestAuthenticator, TerminalRef
from payment_core.core import Core
from payment_core.schemas import CashTopupBody, PaymentBody, RefundBody

__all__ = ["create_app", "error_response", "parse_body"]


def create_app(core: Core, *, registers_only: bool = False) -> FastAPI:
    """The core's API; ``registers_only``: the registers' routes and ``/healthz`` alone (``possim core serve
    --register-port``: the registers' own port and process, which no sign-in can reach)."""
    # The core exports no OpenTelemetry: FastAPI's own spans, metrics and logs stay off (on, with no provider
    # configured, they cost a held sign-in a tenth of its CPU for nothing).
    telemetry: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    app = FastAPI(title="possim payment core", version="1", docs_url=None, redoc_url=None, telemetry=telemetry)
    app.state.core = core
    app.state.authenticator = RequestAuthenticator(core)
    install_error_handlers(app, core)
    app.add_middleware(RequestTransactions, core=core)
    api_openapi.install(app)
    core.work.wake()  # work queued before a crash or a restart is done now, not at the next request's

    @app.get("/healthz", openapi_extra={"security": [], "responses": {"405": api_openapi.ref(405)}})
    async def healthz() -> dict[str, object]:
        """Up, the serving process's pid (one of several under ``possim core serve --workers N``), and how full
        its password hashing budget is (``saturated``: sign-ins are being refused with 503)."""
        return {"status": "ok", "pid": os.getpid(), "password_work": core.password_work.status()}

    @app.post("/v1/payments", openapi_extra=operation(Auth.TERMINAL, (400, 402, 409, 429), PaymentBody, ok=(200, 202)))
    async def create_payment(register: TerminalCall) -> JSONResponse:
        def work(terminal: TerminalRef, call: Call) -> JSONResponse:
            data = parse_body(PaymentBody, call.body)
            categories = tuple(data.categories or ())
            wanted = payments.PaymentRequest(data.order_id, data.amount, data.code, data.description, categories)
            return payment_response(core, payments.create_payment(core, terminal, wanted), data.code)

        return await register.run(work)

    @app.get("/v1/orders/{order_id}", openapi_extra=operation(Auth.TERMINAL, (404,)))
    async def get_order(register: TerminalCall, order_id: ORDER_ID_PATH) -> JSONResponse:
        def work(terminal: TerminalRef, _call: Call) -> JSONResponse:
            return payment_view_response(core, payments.get_order(core, terminal, check_order_id(order_id)))

        return await register.run(work)

    @app.post("/v1/orders/{order_id}/reverse", openapi_extra=operation(Auth.TERMINAL, (400,)))
    async def reverse_order(register: TerminalCall, order_id: ORDER_ID_PATH) -> JSONResponse:
        def work(terminal: TerminalRef, _call: Call) -> JSONResponse:
            return payment_view_response(core, payments.reverse_order(core, terminal, check_order_id(order_id)))

        return await register.run(work)

    @app.post("/v1/payments/{payment_id}/refunds", openapi_extra=operation(Auth.TERMINAL, (400, 404, 409), RefundBody))
    async def refund(register: TerminalCall, payment_id: PAYMENT_ID_PATH) -> JSONResponse:
        def work(terminal: TerminalRef, call: Call) -> JSONResponse:
            data = parse_body(RefundBody, call.body)
            made = payments.refund_payment(core, terminal, payment_id, data.refund_id, data.amount)
            return JSONResponse(payments.refund_view(made))

        return await register.run(work)

    @app.post("/v1/topups/cash", openapi_extra=operation(Auth.TERMINAL, (400, 402, 409, 429), CashTopupBody))
    async def topup_cash(register: TerminalCall) -> JSONResponse:
        def work(terminal: TerminalRef, call: Call) -> JSONResponse:
            data = parse_body(CashTopupBody, call.body)
            wanted = topups.TopupRequest(data.topup_id, data.amount, "cash", data.code)
            return topup_response(core, topups.topup_cash(core, terminal, wanted), data.code)

        return await register.run(work)

    if not registers_only:
        api_wallet.add_routes(app, core)
        api_account.add_routes(app, core)
        api_admin.add_routes(app)
    return app
