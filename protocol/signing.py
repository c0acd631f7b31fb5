"""HMAC-SHA256 request signatures, modelled on PayPay's OPA-Auth and Stripe's webhook signatures.

The signer covers the key id, method, path (with query), timestamp, nonce and the SHA-256 of the body::

    possim-req-v1\\n{KEY_ID}\\n{METHOD}\\n{PATH}\\n{TIMESTAMP}\\n{NONCE}\\n{sha256(body) hex}

and sends it as ``X-Possim-Signature: v1=<hex>`` beside ``X-Possim-Key-Id``, ``X-Possim-Timestamp``
and ``X-Possim-Nonce``. The verifier refuses a timestamp more than ``TOLERANCE_SECONDS`` away from its
clock (once the signature is right, saying how far and giving its own time); refusing a nonce it has seen
is the verifier's stateful part (it keeps nonces for ``NONCE_RETENTION_SECONDS``, longer than any
timestamp it would accept).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from protocol.clock import epoch_seconds
from protocol.errors import ClockSkew, ErrorCode, ProtocolError, SkewedClock, ahead_or_behind

TOLERANCE_SECONDS = 120
NONCE_RETENTION_SECONDS = 2 * TOLERANCE_SECONDS + 60
HEADER_KEY_ID = "X-Possim-Key-Id"
HEADER_TIMESTAMP = "X-Possim-Timestamp"
HEADER_NONCE = "X-Possim-Nonce"
HEADER_SIGNATURE = "X-Possim-Signature"
_SCHEME = "v1"
_REQUEST_KEY_LABEL = b"possim/request-signing-key/v1"
_MAX_NONCE_LENGTH = 64
_MAX_TIMESTAMP_DIGITS = 12


@dataclass(frozen=True)
class SignedHeaders:
    key_id: str
    timestamp: int
    nonce: str
    signature: str

    def as_dict(self) -> dict[str, str]:
        return {
            HEADER_KEY_ID: self.key_id,
            HEADER_TIMESTAMP: str(self.timestamp),
            HEADER_NONCE: self.nonce,
            HEADER_SIGNATURE: f"{_SCHEME}={self.signature}",
        }


def request_key(secret: bytes) -> bytes:
    """The signing key derived from a terminal's or device's secret (never the secret itself)."""
    return hmac.new(secret, _REQUEST_KEY_LABEL, hashlib.sha256).digest()


def canonical_request(key_id: str, method: str, path: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    return "\n".join(["possim-req-v1", key_id, method.upper(), path, str(timestamp), nonce, body_hash]).encode()


def compute_signature(
    secret: bytes, key_id: str, method: str, path: str, timestamp: int, nonce: str, body: bytes
) -> str:
    message = canonical_request(key_id, method, path, timestamp, nonce, body)
    return hmac.new(request_key(secret), message, hashlib.sha256).hexdigest()


def sign_request(
    secret: bytes, key_id: str, method: str, path: str, body: bytes, now: datetime, nonce: str | None = None
) -> SignedHeaders:
    timestamp = epoch_seconds(now)
    nonce = nonce or secrets.token_hex(16)
    signature = compute_signature(secret, key_id, method, path, timestamp, nonce, body)
    return SignedHeaders(key_id, timestamp, nonce, signature)


def read_signed_headers(headers: Mapping[str, str]) -> SignedHeaders:
    """Pull the signature headers out of a request; raises ``signature_missing`` when any is absent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        key_id = lowered[HEADER_KEY_ID.lower()]
        timestamp_text = lowered[HEADER_TIMESTAMP.lower()]
        nonce = lowered[HEADER_NONCE.lower()]
        signature_field = lowered[HEADER_SIGNATURE.lower()]
    except KeyError:
        raise ProtocolError(ErrorCode.SIGNATURE_MISSING) from None
    scheme, _, signature = signature_field.partition("=")
    if (
        scheme != _SCHEME
        or not signature
        or not timestamp_text.isascii()
        or not timestamp_text.isdigit()
        or len(timestamp_text) > _MAX_TIMESTAMP_DIGITS
        or not 0 < len(nonce) <= _MAX_NONCE_LENGTH
        or not key_id
    ):
        raise ProtocolError(ErrorCode.SIGNATURE_INVALID)
    return SignedHeaders(key_id, int(timestamp_text), nonce, signature)


def verify_signature(
    secret: bytes,
    signed: SignedHeaders,
    method: str,
    path: str,
    body: bytes,
    now: datetime,
    tolerance_seconds: int = TOLERANCE_SECONDS,
    signer: SkewedClock = SkewedClock.SENDER,
) -> None:
    """Check the signature in constant time, then the timestamp window. Raises :class:`ProtocolError`.

    The timestamp is judged only once the signature is right, so ``timestamp_stale`` (with how far the
    ``signer``'s clock is off and the core's time: :func:`stale_timestamp`) goes only to a holder of the key.
    """
    expected = compute_signature(secret, signed.key_id, method, path, signed.timestamp, signed.nonce, body)
    if not hmac.compare_digest(expected.encode(), signed.signature.encode("utf-8", "replace")):
        raise ProtocolError(ErrorCode.SIGNATURE_INVALID)
    if abs(signed.timestamp - epoch_seconds(now)) > tolerance_seconds:
        raise stale_timestamp(signed.timestamp, now, tolerance_seconds, signer)


def stale_timestamp(timestamp: int, now: datetime, tolerance_seconds: int, signer: SkewedClock) -> ProtocolError:
    """``timestamp_stale`` for a request signed at ``timestamp`` (epoch seconds, by the signer's clock) and
    received at the core's ``now``: whose clock, how far ahead or behind, and the core's time."""
    offset = timestamp - epoch_seconds(now)
    whose = "The request's" if signer is SkewedClock.SENDER else f"The {signer.value}'s"
    how_far = ahead_or_behind(offset, "the core's")
    core_time = now.astimezone(UTC).strftime("%H:%M:%S")
    message = (
        f"{whose} clock is {how_far} (up to {tolerance_seconds} s either way is allowed); the core's time is "
        f"{core_time} UTC. Set the time automatically."
    )
    skew = ClockSkew(signer, offset, now, tolerance_seconds)
    return ProtocolError(ErrorCode.TIMESTAMP_STALE, message, details=skew.details())
