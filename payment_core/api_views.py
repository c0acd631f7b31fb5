"""What the API answers for its objects: a payment (succeeded, awaiting the phone, or declined as an error
naming the stored payment), a top-up, a list."""

from __future__ import annotations

import base64
from typing import Any

from fastapi.responses import JSONResponse

from payment_core import codes, confirmations, payments, topups
from payment_core.api_errors import error_response, retry_after_for
from payment_core.core import Core
from payment_core.models import Payment, Topup
from payment_core.risk.topup_check import topup_decline_message
from protocol import ErrorCode, PaymentStatus, ProtocolError, TopupStatus


def listing(data: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"object": "list", "data": data})


def payment_view_response(core: Core, payment: Payment) -> JSONResponse:
    """The payment object, whatever its status (lookups and reversals)."""
    with core.read() as session:
        return JSONResponse(payments.payment_view(payment, payments.store_name(session, payment.merchant_id)))


def payment_response(core: Core, payment: Payment, code_text: str | None = None) -> JSONResponse:
    """The answer to a charge: the payment object, or its decline as an error with the payment's id (a code
    refused for its time says how far the phone's clock is off: ``codes.declined_code_error``)."""
    if payment.status == PaymentStatus.DECLINED and payment.decline_code:
        code = ErrorCode(payment.decline_code)
        wait = retry_after_for(core, code)
        error = codes.declined_code_error(core.config, code, code_text, payment.created_at)
        return error_response(error, retry_after=wait, payment_id=payment.id, order_id=payment.order_id)
    if payment.status == PaymentStatus.AWAITING_CUSTOMER:
        with core.read() as session:
            store = payments.store_name(session, payment.merchant_id)
        view = payments.awaiting_view(payment, store, confirmations.confirm_before(core, payment))
        return JSONResponse(view, status_code=202)
    return payment_view_response(core, payment)


def topup_response(core: Core, topup: Topup, code_text: str | None = None) -> JSONResponse:
    """A credited top-up, or its decline as an error naming the stored top-up (a repeat replays it; a cash
    top-up's code refused for its time says how far the phone's clock is off)."""
    if topup.status != TopupStatus.SUCCEEDED and topup.decline_code:
        code = ErrorCode(topup.decline_code)
        error = codes.declined_code_error(core.config, code, code_text, topup.created_at)
        if topup.method == "bank" and code is ErrorCode.CARD_DECLINED:
            error = ProtocolError(code, topups.BANK_DECLINED_MESSAGE)
        if code is ErrorCode.RISK_DECLINED:  # a step-up asks for the app; a decline for another way
            error = ProtocolError(code, topup_decline_message(core, topup.id))
        wait = retry_after_for(core, code)
        return error_response(error, retry_after=wait, topup_id=topup.topup_key)
    return JSONResponse(topups.topup_view(topup))


def b64(raw: bytes) -> str:
    """Bytes as unpadded URL-safe base64 (how a device secret is handed to the phone)."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
