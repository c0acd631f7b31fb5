"""Request bodies. Amounts are strict integers: ``"100"`` or ``100.0`` is refused, not coerced."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

_KEY = r"^[A-Za-z0-9_\-:.]{1,64}$"
ORDER_ID = re.compile(_KEY)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PaymentBody(_Body):
    order_id: StrictStr = Field(pattern=_KEY)
    amount: StrictInt
    code: StrictStr = Field(max_length=80)
    description: StrictStr | None = Field(default=None, max_length=200)


class RefundBody(_Body):
    refund_id: StrictStr = Field(pattern=_KEY)
    amount: StrictInt | None = None


class CashTopupBody(_Body):
    topup_id: StrictStr = Field(pattern=_KEY)
    amount: StrictInt
    code: StrictStr = Field(max_length=80)


class CardTopupBody(_Body):
    topup_id: StrictStr = Field(pattern=_KEY)
    amount: StrictInt
    card_number: StrictStr = Field(max_length=30)
    otp: StrictStr | None = Field(default=None, max_length=1024)  # missing or wrong: 401, not 422


class BankTopupBody(_Body):
    topup_id: StrictStr = Field(pattern=_KEY)
    amount: StrictInt
    bank_account: StrictStr = Field(max_length=30)
    otp: StrictStr | None = Field(default=None, max_length=1024)


class AccountBody(_Body):
    email: StrictStr = Field(max_length=254)
    phone: StrictStr = Field(max_length=30)
    password: StrictStr = Field(max_length=1024)
    display_name: StrictStr | None = Field(default=None, max_length=100)


class VerifyBody(_Body):
    email: StrictStr = Field(max_length=254)
    code: StrictStr = Field(max_length=20)


class ResendBody(_Body):
    email: StrictStr = Field(max_length=254)


class DeviceBody(_Body):
    email: StrictStr = Field(max_length=254)
    password: StrictStr = Field(max_length=1024)
    otp: StrictStr | None = Field(default=None, max_length=1024)  # missing or wrong: the same 401
    device_name: StrictStr = Field(max_length=100)


class EmptyBody(_Body):
    pass


class ConfirmBody(_Body):
    decision: Literal["approve", "deny"]


class SignInBody(_Body):
    password: StrictStr = Field(max_length=1024)


class RefreshBody(_Body):
    refresh_token: StrictStr = Field(max_length=200)


class PasswordChangeBody(_Body):
    current_password: StrictStr = Field(max_length=1024)
    new_password: StrictStr = Field(max_length=1024)


class RecoveryCodesBody(_Body):
    otp: StrictStr | None = Field(default=None, max_length=1024)


class ResetRequestBody(_Body):
    """Only the account's address: a second address (7pay's form took one) is refused as an unknown field."""

    email: StrictStr = Field(max_length=254)


class ResetConfirmBody(_Body):
    token: StrictStr = Field(max_length=200)
    new_password: StrictStr = Field(max_length=1024)
