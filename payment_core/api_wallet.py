"""The wallet's routes (docs/WALLET_API.md): sign-up, e-mail verification, enrollment, and the
device-signed routes (wallet, history, notifications, devices, confirmations, card and bank top-ups)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from payment_core import accounts, confirmations, notify, otp, payments, topups, wallet_views
from payment_core.api_support import (
    Headers,
    Runner,
    b64,
    digits_only,
    openapi_body,
    parse_body,
    payment_view_response,
    topup_response,
)
from payment_core.auth import RequestAuthenticator
from payment_core.core import Core
from payment_core.schemas import (
    AccountBody,
    BankTopupBody,
    CardTopupBody,
    ConfirmBody,
    DeviceBody,
    EmptyBody,
    ResendBody,
    VerifyBody,
)


def _listing(data: list[dict[str, object]]) -> JSONResponse:
    return JSONResponse({"object": "list", "data": data})


def add_routes(app: FastAPI, core: Core, auth: RequestAuthenticator, run: Runner) -> None:
    _add_public_routes(app, core, run)

    @app.post("/v1/topups/card", openapi_extra=openapi_body(CardTopupBody))
    async def topup_card(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "POST", path, body)
            data = parse_body(CardTopupBody, body)
            wanted = topups.TopupRequest(data.topup_id, data.amount, "card", digits_only(data.card_number))
            return topup_response(topups.topup_card(core, device, wanted, data.otp))

        return await run(request, handle)

    @app.post("/v1/topups/bank", openapi_extra=openapi_body(BankTopupBody))
    async def topup_bank(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "POST", path, body)
            data = parse_body(BankTopupBody, body)
            wanted = topups.TopupRequest(data.topup_id, data.amount, "bank", digits_only(data.bank_account))
            return topup_response(topups.topup_bank(core, device, wanted, data.otp))

        return await run(request, handle)

    @app.get("/v1/wallet")
    async def wallet(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            return JSONResponse(wallet_views.wallet_view(core, auth.device(headers, "GET", path, body)))

        return await run(request, handle)

    @app.get("/v1/wallet/history")
    async def history(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "GET", path, body)
            return _listing(wallet_views.history(core, device.account_id))

        return await run(request, handle)

    @app.get("/v1/wallet/notifications")
    async def notifications(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            return _listing(notify.for_device(core, auth.device(headers, "GET", path, body)))

        return await run(request, handle)

    @app.get("/v1/wallet/devices")
    async def devices(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            return _listing(wallet_views.devices(core, auth.device(headers, "GET", path, body)))

        return await run(request, handle)

    @app.post("/v1/wallet/devices/{device_id}/revoke", openapi_extra=openapi_body(EmptyBody))
    async def revoke(request: Request, device_id: int) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "POST", path, body)
            parse_body(EmptyBody, body)
            revoked = accounts.revoke_device(core, device_id, f"device:{device.id}", account_id=device.account_id)
            return JSONResponse(wallet_views.device_view(revoked, device.id))

        return await run(request, handle)

    @app.post("/v1/wallet/sign-out-everywhere", openapi_extra=openapi_body(EmptyBody))
    async def sign_out_everywhere(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "POST", path, body)
            parse_body(EmptyBody, body)
            return JSONResponse({"revoked": accounts.revoke_all(core, device.account_id, f"device:{device.id}")})

        return await run(request, handle)

    @app.get("/v1/wallet/awaiting")
    async def awaiting(request: Request) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "GET", path, body)
            waiting = confirmations.awaiting_for(core, device)
            return _listing(
                [payments.awaiting_view(row, store, confirmations.confirm_before(core, row)) for row, store in waiting]
            )

        return await run(request, handle)

    @app.post("/v1/wallet/payments/{payment_id}/confirm", openapi_extra=openapi_body(ConfirmBody))
    async def confirm(request: Request, payment_id: str) -> JSONResponse:
        def handle(headers: Headers, path: str, body: bytes) -> JSONResponse:
            device = auth.device(headers, "POST", path, body)
            data = parse_body(ConfirmBody, body)
            answered = confirmations.answer(core, device, payment_id, data.decision == "approve")
            return payment_view_response(core, answered)

        return await run(request, handle)


def _add_public_routes(app: FastAPI, core: Core, run: Runner) -> None:
    @app.post("/v1/accounts", status_code=201, openapi_extra=openapi_body(AccountBody))
    async def create_account(request: Request) -> JSONResponse:
        def handle(_headers: Headers, _path: str, body: bytes) -> JSONResponse:
            data = parse_body(AccountBody, body)
            made = accounts.sign_up(core, data.email, data.phone, data.password, data.display_name)
            view = {
                "id": made.account.id,
                "object": "account",
                "email": made.account.email,
                "phone": made.account.phone,
                "email_verified": False,
                "totp_secret": made.totp_secret,
                "totp_uri": made.totp_uri,
            }
            return JSONResponse(view, status_code=201)

        return await run(request, handle)

    @app.post("/v1/accounts/verify", openapi_extra=openapi_body(VerifyBody))
    async def verify(request: Request) -> JSONResponse:
        def handle(_headers: Headers, _path: str, body: bytes) -> JSONResponse:
            data = parse_body(VerifyBody, body)
            account = otp.verify_email(core, data.email, data.code)
            return JSONResponse({"email": account.email, "email_verified": True})

        return await run(request, handle)

    @app.post("/v1/accounts/verify/resend", status_code=202, openapi_extra=openapi_body(ResendBody))
    async def resend(request: Request) -> JSONResponse:
        def handle(_headers: Headers, _path: str, body: bytes) -> JSONResponse:
            otp.resend_email_code(core, parse_body(ResendBody, body).email)
            return JSONResponse({}, status_code=202)

        return await run(request, handle)

    @app.post("/v1/devices", status_code=201, openapi_extra=openapi_body(DeviceBody))
    async def enroll_device(request: Request) -> JSONResponse:
        def handle(_headers: Headers, _path: str, body: bytes) -> JSONResponse:
            data = parse_body(DeviceBody, body)
            enrolled = accounts.enroll_device(core, data.email, data.password, data.otp, data.device_name)
            view = {
                "device_id": enrolled.device.id,
                "key_id": f"dev_{enrolled.device.id}",
                "device_secret": b64(enrolled.secret),
                "account_id": enrolled.device.account_id,
            }
            return JSONResponse(view, status_code=201)

        return await run(request, handle)
