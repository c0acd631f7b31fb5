"""The possim protocol: payment codes, request signing, money, error codes and the contract's states. Pure functions, stdlib only."""

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

__all__ = [
    "DEFAULT_SKEW_SECONDS",
    "DEFAULT_TTL_SECONDS",
    "ISSUER_PREFIX",
    "MAX_AMOUNT_YEN",
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
    "epoch_seconds",
    "format_yen",
    "from_epoch",
    "looks_like_payment_code",
    "mint_code",
    "parse_code",
    "read_signed_headers",
    "require_amount",
    "sign_request",
    "system_clock",
    "verify_code",
    "verify_signature",
]
