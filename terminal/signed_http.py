"""Signed HTTP: an httpx client whose every request carries a ``protocol.signing`` signature.

The signature covers what the core checks: the method, the path as the server decodes it plus the raw
query string, the timestamp, a fresh nonce and the exact body bytes sent. The request is built first
and signed from its own URL, so the signed path is the one that goes over the wire, whatever the base
URL. A terminal signs with its id (``term_...``); a wallet device would sign with ``dev_<number>``.

Nothing here retries or interprets answers; that is the caller's policy (see ``terminal.client``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from protocol import Clock, sign_request, system_clock

# The core's pattern for order, refund and top-up ids (payment_core.schemas): URL-safe as it stands,
# so the path the register signs is the path the core decodes.
ID_PATTERN = re.compile(r"[A-Za-z0-9_\-:.]{1,64}")

# What a caller of :meth:`SignedClient.send` may see instead of a response: the core did not answer.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL, OSError)


def is_safe_id(value: object) -> bool:
    """True for an id the core accepts and that can stand in a path as it is (not ``.`` or ``..``)."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None and value.strip(".") != ""


def encode_json(body: dict[str, Any] | None) -> bytes:
    """The body bytes, serialised once: compact JSON, or nothing for a bodiless request."""
    return json.dumps(body, separators=(",", ":")).encode() if body is not None else b""


def signed_path(url: httpx.URL) -> str:
    """The path the core verifies: the decoded path, then ``?`` and the raw query if there is one."""
    query = url.query.decode("ascii")
    return url.path + (f"?{query}" if query else "")


class SignedClient:
    """A synchronous httpx client that signs every request it sends with a fresh nonce.

    ``transport`` is the seam: tests pass ``httpx.MockTransport``; by default httpx talks to the network.
    """

    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret: bytes,
        *,
        clock: Clock = system_clock,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.key_id = key_id
        self._secret = secret
        self._clock = clock
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SignedClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def send(self, method: str, path: str, content: bytes = b"") -> httpx.Response:
        """Sign and send one request, reading the whole answer. Raises what httpx raises (see TRANSPORT_ERRORS)."""
        headers = {"content-type": "application/json"} if content else {}
        request = self._http.build_request(method, path, content=content, headers=headers)
        signed = sign_request(self._secret, self.key_id, method, signed_path(request.url), content, self._clock())
        request.headers.update(signed.as_dict())
        return self._http.send(request)
