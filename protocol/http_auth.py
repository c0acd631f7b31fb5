"""Request signing as an ``httpx.Auth``: the client side of ``protocol.signing``.

Give it to ``httpx.Client(auth=...)`` (or to one request) and every request is signed from the request
httpx is about to send: its method, its own URL's target (``protocol.wire.request_target``) and its
body bytes, with a fresh nonce each time, retries included. The URL that is sent is always the one that
was signed, whatever base URL or path joining came before. httpx's own ``BasicAuth`` is the model.

This is the one module of ``protocol`` that uses a library beyond the standard one: httpx is the client
every possim program talks HTTP with.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from protocol.clock import Clock, system_clock
from protocol.signing import sign_request
from protocol.wire import request_target


class SigningAuth(httpx.Auth):
    """Signs with ``key_id`` (``term_...`` for a terminal, ``dev_<number>`` for a phone) and its secret."""

    requires_request_body = True  # the signature covers the body's bytes

    def __init__(self, key_id: str, secret: bytes, clock: Clock = system_clock) -> None:
        self.key_id = key_id
        self._secret = secret
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path, _, query = request.url.raw_path.partition(b"?")
        target = request_target(path, query)
        signed = sign_request(self._secret, self.key_id, request.method, target, request.content, self._clock())
        request.headers.update(signed.as_dict())
        yield request


class BearerAuth(httpx.Auth):
    """A session's access token in ``Authorization: Bearer ...``."""

    def __init__(self, access_token: str) -> None:
        self._header = f"Bearer {access_token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request
