"""Just enough HTTP/1.1 for the fault proxy: one request or one response read whole from an asyncio stream,
kept as the exact bytes received so that what reaches the core is what the register signed.

A body is framed by ``Content-Length`` (what httpx sends and uvicorn answers with) or, in a response, by
chunks or by the connection's end. Anything else, or a message larger than the bounds, is a
:class:`WireError`: the proxy closes that connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024  # asyncio's own line limit
MAX_BODY_BYTES = 1024 * 1024
_HEAD_END = b"\r\n\r\n"
_NO_BODY_STATUSES = frozenset({204, 304})


class WireError(Exception):
    """A message the proxy cannot frame (or the peer closed in the middle of one)."""


@dataclass(frozen=True)
class Message:
    """One HTTP message: ``raw`` is every byte of it as received; ``headers`` have lower-case names."""

    raw: bytes
    start_line: str
    headers: dict[str, str]

    @property
    def keeps_alive(self) -> bool:
        return "close" not in self.headers.get("connection", "").lower()

    @property
    def method(self) -> str:
        return self.start_line.split(" ", 1)[0]

    @property
    def status(self) -> int:
        """A response's status code (0 when the start line has none)."""
        parts = self.start_line.split(" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


async def read_request(reader: asyncio.StreamReader) -> Message | None:
    """The next request on a connection; None when the client closed it between requests."""
    try:
        head = await reader.readuntil(_HEAD_END)
    except asyncio.IncompleteReadError as error:
        if not error.partial.strip():
            return None
        raise WireError("the client closed in the middle of a request") from None
    except asyncio.LimitOverrunError:
        raise WireError("a request head above 64 KiB") from None
    start, headers = _parse_head(head)
    if "transfer-encoding" in headers:
        raise WireError("a chunked request")
    body = await _read_exactly(reader, _content_length(headers))
    return Message(head + body, start, headers)


async def read_response(reader: asyncio.StreamReader, method: str) -> Message:
    """The answer to a request sent with ``method``."""
    try:
        head = await reader.readuntil(_HEAD_END)
    except asyncio.IncompleteReadError:
        raise WireError("the server closed the connection without an answer") from None
    except asyncio.LimitOverrunError:
        raise WireError("an answer head above 64 KiB") from None
    start, headers = _parse_head(head)
    message = Message(head, start, headers)
    status = message.status
    if method == "HEAD" or status < 200 or status in _NO_BODY_STATUSES:
        return message
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Message(head + await _read_chunks(reader), start, headers)
    if "content-length" in headers:
        return Message(head + await _read_exactly(reader, _content_length(headers)), start, headers)
    body = await reader.read(MAX_BODY_BYTES + 1)  # framed by the connection's end
    if len(body) > MAX_BODY_BYTES:
        raise WireError("an answer above 1 MiB")
    return Message(head + body, start, headers | {"connection": "close"})


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise WireError("an unreadable head") from None
    lines = text.split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise WireError(f"a header line without a colon: {line[:40]!r}")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _content_length(headers: dict[str, str]) -> int:
    value = headers.get("content-length", "0")
    if not value.isdigit() or int(value) > MAX_BODY_BYTES:
        raise WireError(f"a Content-Length of {value[:20]!r}")
    return int(value)


async def _read_exactly(reader: asyncio.StreamReader, count: int) -> bytes:
    try:
        return await reader.readexactly(count)
    except asyncio.IncompleteReadError:
        raise WireError("the peer closed in the middle of a body") from None


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    """A chunked body, raw (sizes, chunks and trailers as received)."""
    raw = bytearray()
    while True:
        try:
            size_line = await reader.readuntil(b"\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            raise WireError("a broken chunk size") from None
        raw += size_line
        size_text = size_line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise WireError("a broken chunk size") from None
        if size == 0:
            while True:  # trailers, then the empty line
                try:
                    line = await reader.readuntil(b"\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    raise WireError("a broken chunk trailer") from None
                raw += line
                if line == b"\r\n":
                    return bytes(raw)
        raw += await _read_exactly(reader, size + 2)
        if len(raw) > MAX_BODY_BYTES:
            raise WireError("an answer above 1 MiB")
