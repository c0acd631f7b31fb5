"""Error codes shared by the core, the register and the wallet.

Errors travel as objects shaped like Stripe's: ``{"type", "code", "message", "param"}``. Each code has
one error type and one HTTP status, so every layer agrees on what a code means. A refusal for time (a clock
that is off) keeps its code and adds what was measured: :class:`ClockSkew`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeGuard


class ErrorType(StrEnum):
    INVALID_REQUEST = "invalid_request_error"
    AUTHENTICATION = "authentication_error"
    PAYMENT = "payment_error"
    IDEMPOTENCY = "idempotency_error"
    RATE_LIMIT = "rate_limit_error"
    API = "api_error"


class ErrorCode(StrEnum):
    # The payment code itself (found at the register or at the core).
    CODE_MALFORMED = "code_malformed"
    CODE_CHECKSUM = "code_checksum_failed"
    CODE_UNKNOWN_ISSUER = "code_unknown_issuer"
    CODE_FORGED = "code_forged"
    CODE_EXPIRED = "code_expired"
    CODE_NOT_YET_VALID = "code_not_yet_valid"
    CODE_ALREADY_USED = "code_already_used"
    DEVICE_REVOKED = "device_revoked"
    DEVICE_UNKNOWN = "device_unknown"
    CODE_GUESSING_THROTTLED = "code_guessing_throttled"
    # Money.
    RISK_DECLINED = "risk_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    ACCOUNT_FROZEN = "account_frozen"
    LIMIT_EXCEEDED = "limit_exceeded"
    AMOUNT_INVALID = "amount_invalid"
    REFUND_EXCEEDS_PAYMENT = "refund_exceeds_payment"
    PAYMENT_NOT_REFUNDABLE = "payment_not_refundable"
    CARD_DECLINED = "card_declined"
    # Confirmation on the phone (above a threshold, or when risk asks).
    CUSTOMER_DECLINED = "customer_declined"
    CONFIRMATION_EXPIRED = "confirmation_expired"
    PAYMENT_NOT_PENDING = "payment_not_pending"
    # Terminal request signing.
    SIGNATURE_MISSING = "signature_missing"
    SIGNATURE_INVALID = "signature_invalid"
    TIMESTAMP_STALE = "timestamp_stale"
    NONCE_REPLAYED = "nonce_replayed"
    TERMINAL_UNKNOWN = "terminal_unknown"
    # Accounts.
    CREDENTIALS_INVALID = "credentials_invalid"
    ACCOUNT_EXISTS = "account_exists"
    TOKEN_INVALID = "token_invalid"  # noqa: S105 (an error code)
    DEVICE_LIMIT = "device_limit_reached"
    # Requests.
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    NOT_FOUND = "resource_missing"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    VALIDATION_FAILED = "parameter_invalid"
    BODY_TOO_LARGE = "body_too_large"
    RATE_LIMITED = "rate_limited"
    SERVICE_UNAVAILABLE = "service_unavailable"
    SERVICE_PAUSED = "service_paused"  # an operator's kill switch (payment_core.incident)
    FORBIDDEN = "forbidden"  # an admin key whose scope does not allow the act
    INTERNAL = "internal_error"


@dataclass(frozen=True)
class ErrorSpec:
    type: ErrorType
    status: int
    message: str


_T = ErrorType
SPECS: dict[ErrorCode, ErrorSpec] = {
    ErrorCode.CODE_MALFORMED: ErrorSpec(_T.INVALID_REQUEST, 400, "This is not a payment code."),
    ErrorCode.CODE_CHECKSUM: ErrorSpec(_T.INVALID_REQUEST, 400, "The code was misread; scan it again."),
    ErrorCode.CODE_UNKNOWN_ISSUER: ErrorSpec(_T.INVALID_REQUEST, 400, "This code is not from a possim wallet."),
    ErrorCode.CODE_FORGED: ErrorSpec(_T.PAYMENT, 402, "The payment code is not valid."),
    ErrorCode.CODE_EXPIRED: ErrorSpec(_T.PAYMENT, 402, "The payment code has expired; refresh it."),
    ErrorCode.CODE_NOT_YET_VALID: ErrorSpec(
        _T.PAYMENT, 402, "The phone's clock is ahead of the core's: set the phone's time automatically."
    ),
    ErrorCode.CODE_ALREADY_USED: ErrorSpec(_T.PAYMENT, 402, "The payment code was already used."),
    ErrorCode.DEVICE_REVOKED: ErrorSpec(_T.PAYMENT, 402, "The phone that made this code was revoked."),
    ErrorCode.DEVICE_UNKNOWN: ErrorSpec(_T.PAYMENT, 402, "The payment code is not valid."),
    ErrorCode.CODE_GUESSING_THROTTLED: ErrorSpec(
        _T.RATE_LIMIT, 429, "Too many invalid codes; payments are paused for a while."
    ),
    ErrorCode.INSUFFICIENT_FUNDS: ErrorSpec(_T.PAYMENT, 402, "The balance is too low for this payment."),
    ErrorCode.ACCOUNT_FROZEN: ErrorSpec(_T.PAYMENT, 402, "The account is frozen."),
    ErrorCode.RISK_DECLINED: ErrorSpec(
        _T.PAYMENT, 402, "This payment was stopped by a security check; please pay another way or contact support."
    ),
    ErrorCode.LIMIT_EXCEEDED: ErrorSpec(_T.PAYMENT, 402, "The account's limit was reached."),
    ErrorCode.AMOUNT_INVALID: ErrorSpec(_T.INVALID_REQUEST, 400, "Amounts are whole yen above zero."),
    ErrorCode.REFUND_EXCEEDS_PAYMENT: ErrorSpec(
        _T.INVALID_REQUEST, 400, "The refund is larger than what is left to refund."
    ),
    ErrorCode.PAYMENT_NOT_REFUNDABLE: ErrorSpec(_T.INVALID_REQUEST, 400, "Only a succeeded payment can be refunded."),
    ErrorCode.CARD_DECLINED: ErrorSpec(_T.PAYMENT, 402, "The card was declined."),
    ErrorCode.CUSTOMER_DECLINED: ErrorSpec(_T.PAYMENT, 402, "The customer declined the payment on the phone."),
    ErrorCode.CONFIRMATION_EXPIRED: ErrorSpec(_T.PAYMENT, 402, "The customer did not confirm in time."),
    ErrorCode.PAYMENT_NOT_PENDING: ErrorSpec(
        _T.INVALID_REQUEST, 409, "The payment is no longer waiting for the customer's confirmation."
    ),
    ErrorCode.SIGNATURE_MISSING: ErrorSpec(_T.AUTHENTICATION, 401, "The request is not signed."),
    ErrorCode.SIGNATURE_INVALID: ErrorSpec(_T.AUTHENTICATION, 401, "The request signature does not match."),
    ErrorCode.TIMESTAMP_STALE: ErrorSpec(
        _T.AUTHENTICATION, 401, "The request's clock is too far from the core's: set the time automatically."
    ),
    ErrorCode.NONCE_REPLAYED: ErrorSpec(_T.AUTHENTICATION, 401, "The request was already received."),
    ErrorCode.TERMINAL_UNKNOWN: ErrorSpec(_T.AUTHENTICATION, 401, "The request signature does not match."),
    ErrorCode.CREDENTIALS_INVALID: ErrorSpec(
        _T.AUTHENTICATION,
        401,
        "Those sign-in details did not work. If this goes on, check your e-mail or reset your password.",
    ),
    ErrorCode.TOKEN_INVALID: ErrorSpec(_T.AUTHENTICATION, 401, "The access token is missing, invalid or expired."),
    ErrorCode.DEVICE_LIMIT: ErrorSpec(
        _T.INVALID_REQUEST, 409, "This account has as many devices as it may; sign one out first."
    ),
    ErrorCode.ACCOUNT_EXISTS: ErrorSpec(_T.INVALID_REQUEST, 409, "An account with this e-mail exists."),
    ErrorCode.IDEMPOTENCY_CONFLICT: ErrorSpec(_T.IDEMPOTENCY, 409, "This order id was used with other parameters."),
    ErrorCode.NOT_FOUND: ErrorSpec(_T.INVALID_REQUEST, 404, "No such resource."),
    ErrorCode.METHOD_NOT_ALLOWED: ErrorSpec(_T.INVALID_REQUEST, 405, "This method is not allowed here."),
    ErrorCode.VALIDATION_FAILED: ErrorSpec(_T.INVALID_REQUEST, 422, "The request is malformed."),
    ErrorCode.BODY_TOO_LARGE: ErrorSpec(_T.INVALID_REQUEST, 413, "The request body is too large."),
    ErrorCode.RATE_LIMITED: ErrorSpec(_T.RATE_LIMIT, 429, "Too many requests."),
    ErrorCode.SERVICE_UNAVAILABLE: ErrorSpec(_T.API, 503, "The service is unavailable; retry later."),
    ErrorCode.SERVICE_PAUSED: ErrorSpec(
        _T.API, 503, "This is paused for a while for your security. Your balance is safe; please try again later."
    ),
    ErrorCode.FORBIDDEN: ErrorSpec(_T.INVALID_REQUEST, 403, "These credentials may not do this."),
    ErrorCode.INTERNAL: ErrorSpec(_T.API, 500, "Something went wrong on our side."),
}


class ProtocolError(Exception):
    """The one error type the protocol raises, carrying an :class:`ErrorCode`.

    On the wire it is the envelope ``{"error": {"type", "code", "message", "param"?, ...details}}``
    (:meth:`envelope`); a client reads an answer back with :meth:`from_envelope`. ``details`` carries what
    an answer adds about the object it refused (``payment_id``, ``topup_id``, ``retry_after``, ...).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        param: str | None = None,
        *,
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.code = code
        self.spec = SPECS[code]
        self.message = message or self.spec.message
        self.param = param
        self.details: dict[str, Any] = dict(details or {})
        self._status = status
        super().__init__(f"{code.value}: {self.message}")

    @property
    def status(self) -> int:
        """The HTTP status: the code's own, or the one an answer really came with (:meth:`from_envelope`)."""
        return self._status if self._status is not None else self.spec.status

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.spec.type.value, "code": self.code.value, "message": self.message}
        if self.param is not None:
            body["param"] = self.param
        return body

    def envelope(self, **details: Any) -> dict[str, Any]:
        """The answer's body: ``{"error": {...}}`` with this error's details and ``details`` added."""
        return {"error": self.to_dict() | self.details | details}

    @classmethod
    def from_envelope(cls, status: int, data: object) -> ProtocolError:
        """The error an HTTP answer carries. ``data`` is the decoded JSON body (anything: a proxy's HTML page
        decodes to nothing useful). A code this version does not know, or a body that is no envelope, is
        ``service_unavailable`` for a 500/502/503/504 and ``internal_error`` otherwise, keeping the server's
        message; the answer's real status is kept either way."""
        raw = data.get("error") if isinstance(data, dict) else None
        problem: dict[str, Any] = raw if isinstance(raw, dict) else {}
        fallback = ErrorCode.SERVICE_UNAVAILABLE if status in _UNAVAILABLE_STATUSES else ErrorCode.INTERNAL
        code_text, message, param = problem.get("code"), problem.get("message"), problem.get("param")
        known = isinstance(code_text, str) and code_text in _KNOWN_CODES
        code = ErrorCode(code_text) if isinstance(code_text, str) and known else fallback
        if not isinstance(message, str) or not message:
            message = SPECS[code].message if known else f"The server answered HTTP {status}."
        details = {key: value for key, value in problem.items() if key not in _ENVELOPE_FIELDS}
        return cls(code, message, param if isinstance(param, str) else None, status=status, details=details)


class SkewedClock(StrEnum):
    """Whose clock a clock-skew refusal is about: the phone that minted a code or signed a request, the
    register that signed one, or (``protocol.signing`` alone cannot tell) the request's sender."""

    PHONE = "phone"
    REGISTER = "register"
    SENDER = "sender"


@dataclass(frozen=True)
class ClockSkew:
    """What a refusal for time (``code_not_yet_valid``, ``code_expired``, ``timestamp_stale``) measured.

    On the wire these are four fields of the error body beside ``code`` and ``message`` (:meth:`details`):
    ``clock`` (whose), ``clock_offset_seconds`` (that clock minus the core's, as measured: positive ahead,
    negative behind; for an expired code, minus its age), ``server_time`` (the core's time when it decided,
    ISO 8601 UTC) and ``tolerance_seconds`` (how far the offset may go that way: the skew for a code dated
    ahead, its life plus the skew for an old one, the signature tolerance for a request). They are given only
    for a request whose signature, or a code whose MAC, was right: a forger learns nothing from them.
    """

    clock: SkewedClock
    offset_seconds: int
    server_time: datetime
    tolerance_seconds: int

    def details(self) -> dict[str, Any]:
        return {
            "clock": self.clock.value,
            "clock_offset_seconds": self.offset_seconds,
            "server_time": self.server_time.astimezone(UTC).isoformat(),
            "tolerance_seconds": self.tolerance_seconds,
        }

    @classmethod
    def of(cls, error: ProtocolError) -> ClockSkew | None:
        """The measurement an error carries (one read back with :meth:`ProtocolError.from_envelope` included),
        or None when it carries none or a field is not what it should be."""
        found = error.details
        clock, offset, tolerance = found.get("clock"), found.get("clock_offset_seconds"), found.get("tolerance_seconds")
        if not isinstance(clock, str) or clock not in _CLOCK_NAMES or not _is_int(offset) or not _is_int(tolerance):
            return None
        try:
            server_time = datetime.fromisoformat(str(found.get("server_time")))
        except ValueError:
            return None
        if server_time.tzinfo is None:
            return None
        return cls(SkewedClock(clock), offset, server_time.astimezone(UTC), tolerance)


def describe_seconds(seconds: int) -> str:
    """A span as a person reads it: ``95 s``, ``3 min 20 s``, ``14 min``, ``5 h``, ``3 days`` (the sign is dropped)."""
    span = abs(seconds)
    if span < 120:
        return f"{span} s"
    if span < 600:
        minutes, rest = divmod(span, 60)
        return f"{minutes} min" if rest == 0 else f"{minutes} min {rest} s"
    if span < 2 * 3600:
        return f"{round(span / 60)} min"
    if span < 48 * 3600:
        return f"{round(span / 3600)} h"
    return f"{round(span / 86400)} days"


def ahead_or_behind(offset_seconds: int, other: str = "") -> str:
    """How an offset (positive: ahead) reads: ``3 min ahead``, ``95 s behind``; with ``other`` (``the core's``),
    ``3 min ahead of the core's`` or ``95 s behind the core's``."""
    span = describe_seconds(offset_seconds)
    if offset_seconds > 0:
        return f"{span} ahead of {other}" if other else f"{span} ahead"
    return f"{span} behind {other}" if other else f"{span} behind"


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


_CLOCK_NAMES = frozenset(clock.value for clock in SkewedClock)
_UNAVAILABLE_STATUSES = frozenset({500, 502, 503, 504})
_KNOWN_CODES = frozenset(code.value for code in ErrorCode)
_ENVELOPE_FIELDS = frozenset({"type", "code", "message", "param"})
