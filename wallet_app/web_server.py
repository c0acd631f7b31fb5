"""The web wallet: a phone-sized page (``wallet_app/web``) and a same-origin proxy to the core.

The page talks to ``/v1/*`` on its own origin, so a phone's browser needs no CORS and never learns the
core's address; this server forwards each call to the core unchanged (method, path with its query,
raw body, content type and the ``X-Possim-*`` signature headers, which cover the path and body, so the
proxy cannot alter a signed request without the core refusing it) and hands the answer back (status,
body, content type and ``Retry-After``). A core
that cannot be reached is a 503 ``service_unavailable`` in the core's own error shape.

Each forwarded call names the browser in ``X-Forwarded-For`` and carries the core's proxy secret in
``X-Possim-Proxy-Secret``: a core started with ``--trust-proxy`` believes the forwarded address only with
it (every local process connects from 127.0.0.1, so the address alone proves nothing). The secret is read
from the file that core wrote (:class:`ProxySecretFile`), again whenever the file changes, as it does each
time the core starts; it is never logged, and a browser's own copy of either header is never passed on.

The device secret never passes through here after enrollment: the page keeps it in the browser, mints
codes offline and signs its own requests (``web/possim.js``).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from protocol import ErrorCode, ProtocolError, read_limited_body
from protocol.signing import HEADER_KEY_ID, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP

WEB_DIR = Path(__file__).with_name("web")
PROXY_TIMEOUT_SECONDS = 10.0
_FORWARDED_HEADERS = (
    "content-type",
    "accept",
    *(h.lower() for h in (HEADER_KEY_ID, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)),
)
PROXY_SECRET_HEADER = "x-possim-proxy-secret"  # noqa: S105 (a header's name: payment_core.sources')
_RETURNED_HEADERS = ("retry-after",)  # a throttled address's wait (429), besides the body's retry_after
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def _error(error: ProtocolError) -> JSONResponse:
    return JSONResponse(error.envelope(), error.status)


class _SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response


class ProxySecretFile:
    """The core's proxy secret, from the file ``possim core serve --trust-proxy`` writes; read again when
    the file changes (a core that starts again writes a new secret). No file: no secret."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._secret: str | None = None
        self._lock = threading.Lock()

    def current(self) -> str | None:
        try:
            stat = self.path.stat()
            seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            with self._lock:
                if seen != self._seen:
                    self._secret, self._seen = self.path.read_text(encoding="ascii").strip() or None, seen
                return self._secret
        except (OSError, UnicodeDecodeError):
            return None

    def __repr__(self) -> str:
        return f"ProxySecretFile({str(self.path)!r})"  # the path only, never the secret


class _Proxy:
    """One pooled ``httpx.AsyncClient`` to the core, made on first use in the server's event loop."""

    def __init__(
        self, core_url: str, transport: httpx.AsyncBaseTransport | None, proxy_secret: ProxySecretFile | None
    ) -> None:
        self.core_url = httpx.URL(core_url.rstrip("/") + "/")
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._proxy_secret = proxy_secret

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=PROXY_TIMEOUT_SECONDS, transport=self._transport)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def forward(self, request: Request) -> Response:
        try:  # the core's own limit: no point carrying a body there that it would refuse
            body = await read_limited_body(request.headers.get("content-length"), request.stream())
        except ProtocolError as error:
            return _error(error)
        raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
        query: bytes = request.scope.get("query_string", b"")
        target = self.core_url.copy_with(raw_path=raw_path + (b"?" + query if query else b""))
        headers = {name: value for name in _FORWARDED_HEADERS if (value := request.headers.get(name)) is not None}
        if request.client is not None:
            headers["x-forwarded-for"] = request.client.host
            secret = self._proxy_secret.current() if self._proxy_secret is not None else None
            if secret is not None:
                headers[PROXY_SECRET_HEADER] = secret
        try:
            answer = await self.client().request(request.method, target, content=body, headers=headers)
        except httpx.HTTPError as error:
            message = f"The payment core cannot be reached ({type(error).__name__})."
            return _error(ProtocolError(ErrorCode.SERVICE_UNAVAILABLE, message))
        media_type = answer.headers.get("content-type", "application/json")
        passed = {name: value for name in _RETURNED_HEADERS if (value := answer.headers.get(name)) is not None}
        return Response(answer.content, answer.status_code, headers=passed, media_type=media_type)


def create_web_app(
    core_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    proxy_secret: ProxySecretFile | None = None,
) -> FastAPI:
    """The web wallet's app: the page at ``/`` and ``/v1/*`` proxied to the core at ``core_url`` (with the
    core's proxy secret on each call, when ``proxy_secret`` gives one)."""
    proxy = _Proxy(core_url, transport, proxy_secret)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await proxy.close()

    app = FastAPI(title="possim web wallet", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.add_middleware(_SecurityHeaders)
    app.state.proxy = proxy

    @app.api_route("/v1/{rest:path}", methods=_METHODS, include_in_schema=False)
    async def forward(request: Request, rest: str) -> Response:
        return await proxy.forward(request)

    app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app


def serve(core_url: str, host: str = "127.0.0.1", port: int = 8800, proxy_secret_file: Path | None = None) -> None:
    """Serve the web wallet in the foreground (``possim wallet web``); ``host="0.0.0.0"`` for a phone.

    A phone on plain ``http://`` (not localhost) has no WebCrypto; the page then uses its own SHA-256,
    with the same results (see ``web/possim.js``).
    """
    # proxy_headers off: the client is the TCP peer; this server names it to the core in X-Forwarded-For.
    secret = ProxySecretFile(proxy_secret_file) if proxy_secret_file is not None else None
    app = create_web_app(core_url, proxy_secret=secret)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, proxy_headers=False)
