"""What the API answers for its objects: a payment (succeeded, awaiting the phone, or declined as an error
naming the stored payment), a top-up, a list."""

from __future__ import annotations

import base64
from typing import Any

from fastapi.responses import JSONResponse

from payment_core import confirmations, payments, topups
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


def payment_response(core: Core, payment: Payment) -> JSONResponse:
    """The answer to a charge: the payment object, or its decline as an error with the payment's id."""
    if payment.status == PaymentStatus.DECLINED and payment.decline_code:
        code = ErrorCode(payment.decline_code)
        wait = retry_after_for(core, code)
        return error_response(ProtocolError(code), retry_after=wait, payment_id=payment.id, order_id=payment.order_id)
    if payment.status == PaymentStatus.AWAITING_CUSTOMER:
        with core.read() as session:
            store = payments.store_name(session, payment.merchant_id)
        view = payments.awaiting_view(payment, store, confirmations.confirm_before(core, payment))
        return JSONResponse(view, status_code=202)
    return payment_view_response(core, payment)


def topup_response(core: Core, topup: Topup) -> JSONResponse:
    """A credited top-up, or its decline as an error naming the stored top-up (a repeat replays it)."""
    if topup.status != TopupStatus.SUCCEEDED and topup.decline_code:
        code = ErrorCode(topup.decline_code)
        message = topups.BANK_DECLINED_MESSAGE if topup.method == "bank" and code is ErrorCode.CARD_DECLINED else None
        if code is ErrorCode.RISK_DECLINED:  # a step-up asks for the app; a decline for another way
            message = topup_decline_message(core, topup.id)
        wait = retry_after_for(core, code)
        return error_response(ProtocolError(code, message), retry_after=wait, topup_id=topup.topup_key)
    return JSONResponse(topups.topup_view(topup))


def b64(raw: bytes) -> str:
    """Bytes as unpadded URL-safe base64 (how a device secret is handed to the phone)."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
