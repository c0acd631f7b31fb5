"""The attacker's sign-in client: one keep-alive HTTP connection from one source address (a 127.x.y.z
alias), on the standard library's ``http.client``. A list attack sends hundreds of thousands of the same
small request; httpx spends about a millisecond of CPU on each, this a fifth of that, and the replay runs
on the same two cores as the core it attacks. Everything else in the replay speaks through
:class:`wallet_app.client.WalletClient`."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from protocol import ErrorCode, ProtocolError, encode_body
from wallet_app.client import enrolled_state
from wallet_app.state import WalletState

_HEADERS = {"content-type": "application/json", "connection": "keep-alive"}
_CLOSED_BEFORE_READING = (http.client.RemoteDisconnected, BrokenPipeError)


class ListClient:
    def __init__(self, base_url: str, source: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"the list client speaks plain HTTP to a host and port: {base_url!r}")
        self.base_url = base_url
        self._connection = http.client.HTTPConnection(
            parts.hostname, parts.port, timeout=timeout, source_address=(source, 0)
        )

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """The answer's status and JSON body (None when it is not JSON). A keep-alive connection the server
        closed before reading the request is opened again, once; any other failure is an answer of its own."""
        for attempt in (1, 2):
            try:
                self._connection.request("POST", path, encode_body(body), _HEADERS)
                response = self._connection.getresponse()
                raw = response.read()
                break
            except (OSError, http.client.HTTPException) as error:
                self._connection.close()
                if attempt == 2 or not isinstance(error, _CLOSED_BEFORE_READING):
                    message = f"cannot reach the core: {type(error).__name__}"
                    raise ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, message) from None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        return response.status, data if isinstance(data, dict) else None

    def enroll(self, email: str, password: str, otp: str, device_name: str) -> WalletState:
        """``POST /v1/devices``, as :meth:`wallet_app.client.WalletClient.enroll`."""
        body = {"email": email, "password": password, "otp": otp, "device_name": device_name}
        status, data = self.post("/v1/devices", body)
        if status >= 400 or data is None:
            raise ProtocolError.from_envelope(status, data)
        return enrolled_state(self.base_url, email, data)

    def close(self) -> None:
        self._connection.close()
