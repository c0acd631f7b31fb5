"""The wallet's device-signed routes (docs/WALLET_API.md): wallet, history, notifications, devices,
confirmations, linked cards, card and bank top-ups, sign-out everywhere. Sign-up, sign-in, sessions and password
reset are in ``payment_core.api_account``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from payment_core import cards, confirmations, devices, notify, payments, topups, wallet_views
from payment_core.api_openapi import Auth, operation
from payment_core.api_request import (
    DEVICE_ID_PATH,
    PAYMENT_ID_PATH,
    CallData,
    SignedDevice,
    digits_only,
    parse_body,
)
from payment_core.api_views import listing, payment_view_response, topup_response
from payment_core.core import Core
from payment_core.schemas import (
    BankTopupBody,
    CardLinkBody,
    CardTopupBody,
    ConfirmBody,
    EmptyBody,
)


def add_routes(app: FastAPI, core: Core) -> None:
    @app.post("/v1/topups/card", openapi_extra=operation(Auth.DEVICE, (400, 402, 409), CardTopupBody))
    def topup_card(device: SignedDevice, call: CallData) -> JSONResponse:
        data = parse_body(CardTopupBody, call.body)
        wanted = topups.TopupRequest(data.topup_id, data.amount, "card", digits_only(data.card_number))
        return topup_response(core, topups.topup_card(core, device, wanted, data.otp))

    # 402 card_declined: a wrong security code; 402 risk_declined: the holder refused the issuer's prompt;
    # 429: too many wrong codes for the card, the phone or the address (payment_core/cards.py)
    @app.post(
        "/v1/wallet/cards",
        status_code=201,
        openapi_extra=operation(Auth.DEVICE, (401, 402, 429), CardLinkBody, ok=(201,)),
    )
    def link_card(device: SignedDevice, call: CallData) -> JSONResponse:
        data = parse_body(CardLinkBody, call.body)
        linked = cards.link_card(core, device, digits_only(data.card_number), data.security_code, data.otp)
        return JSONResponse(linked.view(), status_code=201)

    @app.post("/v1/topups/bank", openapi_extra=operation(Auth.DEVICE, (400, 402, 409), BankTopupBody))
    def topup_bank(device: SignedDevice, call: CallData) -> JSONResponse:
        data = parse_body(BankTopupBody, call.body)
        wanted = topups.TopupRequest(data.topup_id, data.amount, "bank", digits_only(data.bank_account))
        return topup_response(core, topups.topup_bank(core, device, wanted, data.otp))

    @app.get("/v1/wallet", openapi_extra=operation(Auth.DEVICE, ()))
    def wallet(device: SignedDevice) -> JSONResponse:
        return JSONResponse(wallet_views.wallet_view(core, device))

    @app.get("/v1/wallet/history", openapi_extra=operation(Auth.DEVICE, ()))
    def history(device: SignedDevice) -> JSONResponse:
        return listing(wallet_views.history(core, device.account_id))

    @app.get("/v1/wallet/notifications", openapi_extra=operation(Auth.DEVICE, ()))
    def notifications(device: SignedDevice) -> JSONResponse:
        return listing(notify.for_device(core, device))

    @app.get("/v1/wallet/devices", openapi_extra=operation(Auth.DEVICE, ()))
    def list_devices(device: SignedDevice) -> JSONResponse:
        return listing(wallet_views.devices(core, device))

    @app.post("/v1/wallet/devices/{device_id}/revoke", openapi_extra=operation(Auth.DEVICE, (404,), EmptyBody))
    def revoke(device: SignedDevice, call: CallData, device_id: DEVICE_ID_PATH) -> JSONResponse:
        parse_body(EmptyBody, call.body)
        revoked = devices.revoke_device(core, device_id, f"device:{device.id}", account_id=device.account_id)
        return JSONResponse(wallet_views.device_view(revoked, device.id))

    @app.post("/v1/wallet/sign-out-everywhere", openapi_extra=operation(Auth.DEVICE, (), EmptyBody))
    def sign_out_everywhere(device: SignedDevice, call: CallData) -> JSONResponse:
        parse_body(EmptyBody, call.body)
        revoked = devices.sign_out_everywhere(core, device.account_id, f"device:{device.id}")
        return JSONResponse({"revoked": revoked})

    @app.get("/v1/wallet/awaiting", openapi_extra=operation(Auth.DEVICE, ()))
    def awaiting(device: SignedDevice) -> JSONResponse:
        waiting = confirmations.awaiting_for(core, device)
        return listing(
            [payments.awaiting_view(row, store, confirmations.confirm_before(core, row)) for row, store in waiting]
        )

    @app.post("/v1/wallet/payments/{payment_id}/confirm", openapi_extra=operation(Auth.DEVICE, (404, 409), ConfirmBody))
    def confirm(device: SignedDevice, call: CallData, payment_id: PAYMENT_ID_PATH) -> JSONResponse:
        data = parse_body(ConfirmBody, call.body)
        answered = confirmations.answer(core, device, payment_id, data.decision == "approve")
        return payment_view_response(core, answered)
