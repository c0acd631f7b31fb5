"""How a request travels: the body's bytes, the request target that is signed, the body-size limit.

Every client (the register, the phone, the web wallet's page) and the core use these, so the bytes a
client signs are the bytes the core checks:

- the body is compact JSON (``{"a":1}``, no spaces), or no bytes at all for a request without a body;
- the request target is the path exactly as it goes over the wire (percent-escapes kept, nothing
  decoded or normalised), then ``?`` and the raw query string when there is one;
- a body over ``MAX_BODY_BYTES`` is refused (413 ``body_too_large``) before it is all in memory, and a
  ``Content-Length`` that is not a number is refused too (422).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Mapping
from typing import Any

from protocol.errors import ErrorCode, ProtocolError

MAX_BODY_BYTES = 64 * 1024


def encode_body(body: Mapping[str, Any] | None) -> bytes:
    """The body's bytes: compact JSON, or nothing for a bodiless request."""
    return json.dumps(body, separators=(",", ":")).encode() if body is not None else b""


def request_target(raw_path: bytes | str, query: bytes | str = b"") -> str:
    """The signed request target from the path and the query as they are on the wire."""
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else raw_path
    query_text = query.decode("latin-1") if isinstance(query, bytes) else query
    return path + (f"?{query_text}" if query_text else "")


async def read_limited_body(declared_length: str | None, chunks: AsyncIterable[bytes]) -> bytes:
    """Read a request body of at most ``MAX_BODY_BYTES``; raises :class:`ProtocolError` (413, or 422 for an
    unclear length) as soon as it is known to be too large. A chunked body declares no length: it is
    counted as it comes."""
    if declared_length is not None and not (declared_length.isascii() and declared_length.isdigit()):
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "The request body's length is unclear.")
    too_large = ProtocolError(ErrorCode.BODY_TOO_LARGE, f"The request body is over {MAX_BODY_BYTES} bytes.")
    if declared_length is not None and int(declared_length) > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    return bytes(body)
