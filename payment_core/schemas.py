"""Request bodies. Amounts are strict integers: ``"100"`` or ``100.5`` is refused, not coerced (``100.0`` is
the JSON number 100, read exactly: ``api_request.parse_body``).

What the published schema (``/openapi.json``) says is what the core enforces: a field that breaks a
``pattern``, ``maxLength`` or ``minLength`` here is a 422 from :func:`payment_core.api_request.parse_body`.
Three constraints are published but checked further in: an amount out of ``minimum``/``maximum`` is 400
``amount_invalid`` (``protocol.require_amount``); a person's name that breaks ``NAME_PATTERN``
(``display_name``, ``device_name``) is a 422 from ``accounts.clean_name``, which says why in words; and
the e-mail of a sign-in (``format: email``) is not checked apart from the password: any wrong one is the
same 401.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from payment_core.config import PasswordPolicy
from protocol import MAX_AMOUNT_YEN

_KEY = r"^[A-Za-z0-9_\-:.]{1,64}$"
# A name a person typed (a display name, a phone's name), as accounts.clean_name checks it: no control
# character, line or paragraph separator, or bidirectional control (they reach mails and screens). Published
# here, checked by accounts.clean_name, which says so in words (422 naming the field)
NAME_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]*$"
_NAME: dict[str, Any] = {"pattern": NAME_PATTERN}
ID_PATTERN = _KEY
ORDER_ID = re.compile(_KEY)
# An address a new account (or a reset, or a resend) may use: dot-separated RFC 5322 atoms, a domain of
# letter-digit labels joined by single hyphens, at least two labels. Every address this accepts (with the
# RFC 5321 part lengths checked below) is a valid `format: email`; it is stricter than
# ``accounts.normalise_email`` (no surrounding spaces, no non-ASCII), which still reads it afterwards.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+"
_LABEL = r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*"
EMAIL_PATTERN = rf"^{_ATOM}(\.{_ATOM})*@({_LABEL}\.)+[A-Za-z0-9]([A-Za-z0-9]|-[A-Za-z0-9])+$"
# The reset form takes the address as typed, spaces around it and any case (the answer never differs): this
# is exactly the ASCII part of what ``accounts.normalise_email`` reads, so no `format: email` here.
TYPED_EMAIL_PATTERN = (
    r"^[ \t\r\n]*[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]{1,64}@[A-Za-z0-9.\-]{1,190}\.[A-Za-z0-9\-]{2,63}[ \t\r\n]*$"
)
# 10-15 digits with an optional leading +, written with spaces, dots, hyphens or brackets between them if
# you like (``accounts.normalise_phone`` drops those): "+81 90-1234-5678", "(03) 1234-5678".
PHONE_PATTERN = r"^\+?\(?[0-9]([ .()\-]{0,2}[0-9]){9,14}$"
_AMOUNT: dict[str, Any] = {"minimum": 1, "maximum": MAX_AMOUNT_YEN, "description": "Whole yen (400 outside)."}
_EMAIL_FORMAT: dict[str, Any] = {"format": "email"}
_NEW_MIN, _NEW_MAX = PasswordPolicy.min_length, PasswordPolicy.max_length  # counted again after NFKC
_EMAIL_LOCAL_MAX, _EMAIL_LABEL_MAX = 64, 63
# 194, not RFC 5321's 254: ``accounts.normalise_email`` takes at most 190 characters between the @ and the
# last dot, and no address of 194 characters or fewer has more.
NEW_EMAIL_MAX = 194


def _email_parts_fit(email: str) -> str:
    local, _, domain = email.partition("@")
    if len(local) > _EMAIL_LOCAL_MAX or any(len(label) > _EMAIL_LABEL_MAX for label in domain.split(".")):
        raise ValueError("That is not an e-mail address.")
    return email


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PaymentBody(_Body):
    order_id: StrictStr = Field(pattern=_KEY)
    amount: StrictInt = Field(json_schema_extra=_AMOUNT)
    code: StrictStr = Field(max_length=80)
    description: StrictStr | None = Field(default=None, max_length=200)
    # the catalog categories of what is sold (e.g. "tobacco", "gift_card"): the risk rules read them
    categories: list[Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]] | None = Field(
        default=None, max_length=20
    )


class RefundBody(_Body):
    refund_id: StrictStr = Field(pattern=_KEY)
    amount: StrictInt | None = Field(default=None, json_schema_extra=_AMOUNT)


class CashTopupBody(_Body):
    topup_id: StrictStr = Field(pattern=_KEY)
    amount: StrictInt = Field(json_schema_extra=_AMOUNT)
    code: StrictStr = Field(max_length=80)


class CardTopupBody(_Body):
    topup_id: StrictStr = Field(pattern=_KEY)
    amount: StrictInt = Field(json_schema_extra=_AMOUNT)
    card_number: StrictStr = Field(max_length=30)
    otp: StrictStr | None = Field(default=None, max_length=1024)  # missing or wrong: 401, not 422


class CardLinkBody(_Body):
    card_number: StrictStr = Field(max_length=30)
    security_code: StrictStr = Field(pattern=r"^[0-9]{3,4}$")
    otp: StrictStr | None = Field(default=None, max_length=1024)  # missing or wrong: 401, not 422


class BankTopupBody(_Body):
    topup_id: StrictStr = Field(pattern=_KEY)
    amount: StrictInt = Field(json_schema_extra=_AMOUNT)
    bank_account: StrictStr = Field(max_length=30)
    otp: StrictStr | None = Field(default=None, max_length=1024)


class _NewAddress(_Body):
    @field_validator("email", check_fields=False)
    @classmethod
    def _parts_fit(cls, email: str) -> str:
        return _email_parts_fit(email)


class AccountBody(_NewAddress):
    email: StrictStr = Field(max_length=NEW_EMAIL_MAX, pattern=EMAIL_PATTERN, json_schema_extra=_EMAIL_FORMAT)
    phone: StrictStr = Field(max_length=30, pattern=PHONE_PATTERN)
    password: StrictStr = Field(min_length=_NEW_MIN, max_length=_NEW_MAX)
    display_name: StrictStr | None = Field(default=None, max_length=100, json_schema_extra=_NAME)


class VerifyBody(_Body):
    email: StrictStr = Field(max_length=254, json_schema_extra=_EMAIL_FORMAT)
    code: StrictStr = Field(max_length=20)


class ResendBody(_NewAddress):
    email: StrictStr = Field(max_length=NEW_EMAIL_MAX, pattern=EMAIL_PATTERN, json_schema_extra=_EMAIL_FORMAT)


class DeviceBody(_Body):
    email: StrictStr = Field(max_length=254, json_schema_extra=_EMAIL_FORMAT)
    password: StrictStr = Field(max_length=1024)
    otp: StrictStr | None = Field(default=None, max_length=1024)  # missing or wrong: the same 401
    device_name: StrictStr = Field(max_length=100, json_schema_extra=_NAME)


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
    new_password: StrictStr = Field(min_length=_NEW_MIN, max_length=_NEW_MAX)
    sign_out_other_devices: StrictBool = Field(
        default=True,
        description="Revoke every other device of the account (its payment codes fail from now) and end its "
        "sessions; the device that asks stays signed in. Default true.",
    )


class RecoveryCodesBody(_Body):
    otp: StrictStr | None = Field(default=None, max_length=1024)


class ResetRequestBody(_Body):
    """Only the account's address: a second address (7pay's form took one) is refused as an unknown field."""

    email: StrictStr = Field(
        max_length=NEW_EMAIL_MAX,
        pattern=TYPED_EMAIL_PATTERN,
        description="An e-mail address, spaces around it ignored.",
    )


class ResetRequestAnyAddressBody(ResetRequestBody):
    """7pay's form, taken only by a core whose ``Defences.reset_mail_to_own_address_only`` is off (``possim
    attack --defenses 7pay``): the reset code goes to ``send_to`` when it is given. Not in the OpenAPI."""

    send_to: StrictStr | None = Field(default=None, max_length=NEW_EMAIL_MAX, pattern=TYPED_EMAIL_PATTERN)


class ResetConfirmBody(_Body):
    token: StrictStr = Field(max_length=200)
    new_password: StrictStr = Field(min_length=_NEW_MIN, max_length=_NEW_MAX)
