"""Schemathesis auth for the possim core: every request is signed the way docs/SIGNING.md says.

Each operation's ``security`` in ``/openapi.json`` says who signs it:

- terminal operations (``terminalKeyId`` ...): signed with a register's id and secret
  (``possim admin terminal-add``);
- wallet-device operations (``deviceKeyId`` ...): signed with an enrolled device's key id and secret;
- wallet-session operations (``walletSession``): a bearer token, got by signing in on that device
  (``POST /v1/sessions``, device-signed, with the account's password);
- admin operations (``adminToken``): ``POSSIM_ADMIN_TOKEN``, the token of a key from ``possim admin key-add``
  (give a ``read`` key: an ``operator`` key would let the fuzzer pause top-ups and block addresses).

The signature is made on the request as it is sent (``requests``' prepared request: the path and query
as on the wire, the body bytes), so whatever schemathesis generates is signed correctly and the core
answers about the request itself, not about a bad signature.

Environment (from the repository root)::

    POSSIM_TERMINAL_ID=term_...  POSSIM_TERMINAL_SECRET=<hex, the secret file's content>
    POSSIM_DEVICES=dev_<n>:<base64url device_secret>[,dev_<m>:<secret>...]  POSSIM_PASSWORD=<the accounts'>
    POSSIM_ADMIN_TOKEN=<a read-scope admin token>
    SCHEMATHESIS_HOOKS=scripts.schemathesis_hooks \\
        schemathesis --config-file scripts/schemathesis.toml run http://127.0.0.1:8700/openapi.json --checks all

The device and session variables are optional: without them those operations are sent unsigned (401).
Give two devices or more, each on its own account (see :class:`Wallet`): the run revokes devices and
ends sessions; when a signed request then gets 401, schemathesis asks this provider again, which signs
in again or moves to the next spare device. Use throwaway accounts on a throwaway core: the fuzzer also
sends wrong passwords and TOTP codes, which the sign-in throttles and the TOTP lock count
(tests/contract/test_schemathesis.py serves a core with relaxed throttles).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
import schemathesis
from requests.auth import AuthBase
from schemathesis.core.parameters import ParameterLocation

from protocol.signing import sign_request

_TIMEOUT_SECONDS = 10
_REVOKING = ("/v1/wallet/sign-out-everywhere", "/v1/wallet/devices/{device_id}/revoke")


class Signer(AuthBase):
    """Adds the four ``X-Possim-*`` headers to a prepared request, over its bytes as sent."""

    def __init__(self, key_id: str, secret: bytes) -> None:
        self.key_id = key_id
        self.secret = secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        raw = body.encode() if isinstance(body, str) else bytes(body) if isinstance(body, bytes | bytearray) else b""
        method = (request.method or "GET").upper()
        signed = sign_request(self.secret, self.key_id, method, request.path_url, raw, datetime.now(UTC))
        request.headers.update(signed.as_dict())
        return request


@dataclass(frozen=True)
class Credential:
    signer: Signer | None = None
    bearer: str | None = None


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _kind(operation: Any) -> str:
    """``terminal``, ``device``, ``revoking`` (a device operation that revokes devices), ``bearer`` or
    ``public``, from the operation's security requirement."""
    if operation.path.endswith(_REVOKING):
        return "revoking"
    requirements = operation.definition.raw.get("security") or []
    names = {name for requirement in requirements for name in requirement}
    if any(name.startswith("terminal") for name in names):
        return "terminal"
    if any(name.startswith("device") for name in names):
        return "device"
    if "adminToken" in names:
        return "admin"
    return "bearer" if names else "public"


class Wallet:
    """The devices the run signs with, and the session it signs in to.

    ``POSSIM_DEVICES`` lists ``key_id:secret`` pairs, each on its own account. The first signs every
    device operation but the two that revoke devices (``sign-out-everywhere`` revokes every device of its
    account); those are signed by the others, one until it is revoked, then the next, then unsigned (401).
    Revoking another account's device is a 404, so the first device lasts the whole run."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        pairs = [item.partition(":") for item in os.environ.get("POSSIM_DEVICES", "").split(",") if item]
        devices = [Signer(key_id, _b64(secret)) for key_id, _, secret in pairs]
        self.primary, self.spares = (devices[0], devices[1:]) if devices else (None, [])
        self.password = os.environ.get("POSSIM_PASSWORD", "")
        self._lock = threading.Lock()

    def signer(self, revoking: bool = False) -> Signer | None:
        if not revoking:
            return self.primary
        with self._lock:
            while self.spares and not self._alive(self.spares[0]):
                self.spares.pop(0)
            return self.spares[0] if self.spares else None

    def access_token(self) -> str | None:
        signer = self.signer()
        if signer is None:
            return None
        body = json.dumps({"password": self.password}).encode()
        headers = {"Content-Type": "application/json"}
        url = f"{self.base_url}/v1/sessions"
        answer = requests.post(url, data=body, headers=headers, auth=signer, timeout=_TIMEOUT_SECONDS)
        return str(answer.json()["access_token"]) if answer.status_code == 201 else None

    def _alive(self, signer: Signer) -> bool:
        answer = requests.get(f"{self.base_url}/v1/wallet", auth=signer, timeout=_TIMEOUT_SECONDS)
        return answer.status_code == 200


_wallets: dict[str, Wallet] = {}
_wallets_lock = threading.Lock()


def _wallet(operation: Any) -> Wallet:
    base_url = str(operation.schema.get_base_url())
    with _wallets_lock:
        return _wallets.setdefault(base_url, Wallet(base_url))


def _headers_negated(case: schemathesis.Case) -> bool:
    """Whether schemathesis generated this case's headers to break the schema: the only headers the schema
    names are the credentials, so signing it would mend what the case is testing."""
    meta = case._meta
    return meta is not None and meta.is_negative_at(ParameterLocation.HEADER)


def _cache_key(_case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
    return _kind(context.operation)


@schemathesis.auth(refresh_interval=120, cache_by_key=_cache_key)  # access tokens live 300 s
class PossimAuth:
    def get(self, _case: schemathesis.Case, context: schemathesis.AuthContext) -> Credential | None:
        kind = _kind(context.operation)
        if kind == "terminal":
            secret = bytes.fromhex(os.environ["POSSIM_TERMINAL_SECRET"])
            return Credential(signer=Signer(os.environ["POSSIM_TERMINAL_ID"], secret))
        if kind == "public":
            return None
        if kind == "admin":  # a read-scope key: it lists, and each lever answers 403
            token = os.environ.get("POSSIM_ADMIN_TOKEN")
            return Credential(bearer=token) if token else None
        wallet = _wallet(context.operation)
        if kind in ("device", "revoking"):
            signer = wallet.signer(revoking=kind == "revoking")
            return Credential(signer=signer) if signer else None
        token = wallet.access_token()
        return Credential(bearer=token) if token else None

    def set(self, case: schemathesis.Case, data: Credential, _context: schemathesis.AuthContext) -> None:
        if _headers_negated(case):  # a case about missing or malformed signature headers goes as generated
            return
        if data.signer is not None:
            case._auth = data.signer
        elif data.bearer is not None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data.bearer}"}
