"""The possim protocol: payment codes, request signing, money, error codes, the contract's states and the
wire's encoding. Pure functions, stdlib only (``protocol.http_auth``, signing as an ``httpx.Auth``, is
imported on its own)."""

from protocol.checkdigit import damm_digit, damm_valid
from protocol.clock import Clock, ManualClock, OffsetClock, epoch_seconds, from_epoch, system_clock
from protocol.errors import SPECS, ErrorCode, ErrorSpec, ErrorType, ProtocolError
from protocol.money import MAX_AMOUNT_YEN, format_yen, require_amount
from protocol.payment_code import (
    DEFAULT_SKEW_SECONDS,
    DEFAULT_TTL_SECONDS,
    ISSUER_PREFIX,
    CodeForm,
    ParsedCode,
    PaymentCode,
    VerifiedCode,
    looks_like_payment_code,
    mint_code,
    parse_code,
    verify_code,
)
from protocol.signing import (
    NONCE_RETENTION_SECONDS,
    TOLERANCE_SECONDS,
    SignedHeaders,
    read_signed_headers,
    sign_request,
    verify_signature,
)
from protocol.states import PaymentStatus, RefundStatus, ScanKind, Symbology, TopupStatus
from protocol.wire import MAX_BODY_BYTES, encode_body, read_limited_body, request_target

__all__ = [
    "DEFAULT_SKEW_SECONDS",
    "DEFAULT_TTL_SECONDS",
    "ISSUER_PREFIX",
    "MAX_AMOUNT_YEN",
    "MAX_BODY_BYTES",
    "NONCE_RETENTION_SECONDS",
    "SPECS",
    "TOLERANCE_SECONDS",
    "Clock",
    "CodeForm",
    "ErrorCode",
    "ErrorSpec",
    "ErrorType",
    "ManualClock",
    "OffsetClock",
    "ParsedCode",
    "PaymentCode",
    "PaymentStatus",
    "ProtocolError",
    "RefundStatus",
    "ScanKind",
    "SignedHeaders",
    "Symbology",
    "TopupStatus",
    "VerifiedCode",
    "damm_digit",
    "damm_valid",
    "encode_body",
    "epoch_seconds",
    "format_yen",
    "from_epoch",
    "looks_like_payment_code",
    "mint_code",
    "parse_code",
    "read_limited_body",
    "read_signed_headers",
    "request_target",
    "require_amount",
    "sign_request",
    "system_clock",
    "verify_code",
    "verify_signature",
]
