"""Secrets the core can re-derive instead of storing.

A device's or terminal's secret is ``HMAC-SHA256(server_key, kind | id | salt)``. The database holds
only the random salt, so a copy of the database alone gives an attacker no secret; the server key lives
in configuration (an environment variable or a 0600 file). Rotating a secret means a new salt. An
account's TOTP secret is derived the same way (kind ``totp``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SALT_BYTES = 16


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def derive_secret(server_key: bytes, kind: str, identifier: str, salt: bytes) -> bytes:
    message = f"possim/{kind}-secret/v1|{identifier}|".encode() + salt
    return hmac.new(server_key, message, hashlib.sha256).digest()


def device_secret(server_key: bytes, device_id: int, salt: bytes) -> bytes:
    return derive_secret(server_key, "device", str(device_id), salt)


def terminal_secret(server_key: bytes, terminal_id: str, salt: bytes) -> bytes:
    return derive_secret(server_key, "terminal", terminal_id, salt)


def totp_secret(server_key: bytes, account_id: int, salt: bytes) -> str:
    """The account's RFC 6238 secret: 20 derived bytes (160 bits, RFC 4226's advice) in base32."""
    raw = derive_secret(server_key, "totp", str(account_id), salt)[:20]
    return base64.b32encode(raw).decode()


def keyed_hash(server_key: bytes, purpose: str, identifier: str, value: str) -> str:
    """A keyed hash of a short secret (an e-mail code): useless to brute-force without the server key."""
    message = f"possim/{purpose}/v1|{identifier}|{value}".encode()
    return hmac.new(server_key, message, hashlib.sha256).hexdigest()


def device_key_id(device_id: int) -> str:
    return f"dev_{device_id}"
