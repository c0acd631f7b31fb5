"""The wallet's device-signed routes (docs/WALLET_API.md): wallet, history, notifications, devices,
confirmations, card and bank top-ups, sign-out everywhere. Sign-up, sign-in, sessions and password
reset are in ``payment_core.api_account``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from payment_core import confirmations, devices, notify, payments, topups, wallet_views
from payment_core.api_openapi import Auth, operation
from payment_core.api_support import (
    DEVICE_ID_PATH,
    PAYMENT_ID_PATH,
    Headers,
    Runner,
    digits_only,
    parse_body,
    payment_view_response,
    topup_response,
)
from payment_core.auth import RequestAuthenticator
from payment_core.core import Core
from payment_core.schemas import (
    BankTopupBody,
    CardTopupBody,
    ConfirmBody,
    EmptyBody,
)


def _listing(data: list[dict[str, object]]) -> JSONResponse:
    return JSONResponse({"object": "list", "data": data})


def add_routes(app: FastAPI, core: Core, auth: RequestAuthenticator, run: Runner) -> None:
    @app.post("/v1/topups/card", openapi_extra=operation(Auth.DEVICE, (400, 402, 409), CardTopupBody))
    async def topup_card(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "POST", path, body)
            data = parse_body(CardTopupBody, body)
            wanted = topups.TopupRequest(data.topup_id, data.amount, "card", digits_only(data.card_number))
            return topup_response(core, topups.topup_card(core, device, wanted, data.otp))

        return await run(request, handle)

    @app.post("/v1/topups/bank", openapi_extra=operation(Auth.DEVICE, (400, 402, 409), BankTopupBody))
    async def topup_bank(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "POST", path, body)
            data = parse_body(BankTopupBody, body)
            wanted = topups.TopupRequest(data.topup_id, data.amount, "bank", digits_only(data.bank_account))
            return topup_response(core, topups.topup_bank(core, device, wanted, data.otp))

        return await run(request, handle)

    @app.get("/v1/wallet", openapi_extra=operation(Auth.DEVICE, ()))
    async def wallet(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            return JSONResponse(wallet_views.wallet_view(core, auth.device(headers, "GET", path, body)))

        return await run(request, handle)

    @app.get("/v1/wallet/history", openapi_extra=operation(Auth.DEVICE, ()))
    async def history(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "GET", path, body)
            return _listing(wallet_views.history(core, device.account_id))

        return await run(request, handle)

    @app.get("/v1/wallet/notifications", openapi_extra=operation(Auth.DEVICE, ()))
    async def notifications(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            return _listing(notify.for_device(core, auth.device(headers, "GET", path, body)))

        return await run(request, handle)

    @app.get("/v1/wallet/devices", openapi_extra=operation(Auth.DEVICE, ()))
    async def list_devices(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            return _listing(wallet_views.devices(core, auth.device(headers, "GET", path, body)))

        return await run(request, handle)

    @app.post("/v1/wallet/devices/{device_id}/revoke", openapi_extra=operation(Auth.DEVICE, (404,), EmptyBody))
    async def revoke(request: Request, device_id: DEVICE_ID_PATH) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "POST", path, body)
            parse_body(EmptyBody, body)
            revoked = devices.revoke_device(core, device_id, f"device:{device.id}", account_id=device.account_id)
            return JSONResponse(wallet_views.device_view(revoked, device.id))

        return await run(request, handle)

    @app.post("/v1/wallet/sign-out-everywhere", openapi_extra=operation(Auth.DEVICE, (), EmptyBody))
    async def sign_out_everywhere(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "POST", path, body)
            parse_body(EmptyBody, body)
            revoked = devices.sign_out_everywhere(core, device.account_id, f"device:{device.id}")
            return JSONResponse({"revoked": revoked})

        return await run(request, handle)

    @app.get("/v1/wallet/awaiting", openapi_extra=operation(Auth.DEVICE, ()))
    async def awaiting(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "GET", path, body)
            waiting = confirmations.awaiting_for(core, device)
            return _listing(
                [payments.awaiting_view(row, store, confirmations.confirm_before(core, row)) for row, store in waiting]
            )

        return await run(request, handle)

    @app.post("/v1/wallet/payments/{payment_id}/confirm", openapi_extra=operation(Auth.DEVICE, (404, 409), ConfirmBody))
    async def confirm(request: Request, payment_id: PAYMENT_ID_PATH) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "POST", path, body)
            data = parse_body(ConfirmBody, body)
            answered = confirmations.answer(core, device, payment_id, data.decision == "approve")
            return payment_view_response(core, answered)

        return await run(request, handle)
