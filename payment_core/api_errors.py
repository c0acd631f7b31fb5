"""Errors as the API answers them: the ``{"error": {...}}`` envelope, ``Retry-After`` on a 429, and the
handlers that turn every exception (ours, FastAPI's, the database's, anything else) into that shape, so
no traceback ever reaches a caller."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from payment_core.core import Core
from protocol import ErrorCode, ProtocolError

log = logging.getLogger("possim.core")
DATABASE_RETRY_AFTER_SECONDS = 5
DATABASE_DOWN_MESSAGE = (
    "The payment service cannot reach its database, so nothing was done; try again in a few seconds "
    "(a payment with the same order id)."
)


class DatabaseUnavailable(ProtocolError):
    """503 with ``Retry-After``: the database refused, failed or could not be reached; the request's
    transaction was rolled back (or never began), so nothing it asked for happened."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.SERVICE_UNAVAILABLE, DATABASE_DOWN_MESSAGE)
        self.retry_after = DATABASE_RETRY_AFTER_SECONDS


def error_response(error: ProtocolError, *, retry_after: int | None = None, **details: Any) -> JSONResponse:
    """The error's envelope with its status; a 429 always carries ``Retry-After`` (and ``retry_after`` in the body)."""
    retry_after = getattr(error, "retry_after", None) or retry_after
    if retry_after is None:
        return JSONResponse(error.envelope(**details), status_code=error.status)
    body = error.envelope(**details, retry_after=retry_after)
    return JSONResponse(body, status_code=error.status, headers={"Retry-After": str(retry_after)})


def retry_after_for(core: Core, code: ErrorCode) -> int | None:
    """Seconds to wait after a 429 that does not say so itself: code guessing is counted over a window."""
    if code is ErrorCode.CODE_GUESSING_THROTTLED:
        return core.config.limits.code_failure_window_seconds
    return None


def install_error_handlers(app: FastAPI, core: Core) -> None:
    @app.exception_handler(ProtocolError)
    async def _protocol_error(_request: Request, exc: ProtocolError) -> JSONResponse:
        return error_response(exc, retry_after=retry_after_for(core, exc.code))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(ProtocolError(ErrorCode.VALIDATION_FAILED, str(exc.errors()[0].get("msg", ""))))

    @app.exception_handler(SQLAlchemyError)  # the driver's errors, and the pool's timeout waiting for a connection
    async def _database_error(_request: Request, exc: SQLAlchemyError) -> JSONResponse:
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        log.error("database error: %s", type(cause).__name__)
        return error_response(DatabaseUnavailable())

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(ProtocolError(ErrorCode.NOT_FOUND))
        if exc.status_code == 405:  # Starlette names the path's methods in Allow (RFC 9110 15.5.6): keep it
            answer = error_response(ProtocolError(ErrorCode.METHOD_NOT_ALLOWED))
            answer.headers["Allow"] = (exc.headers or {}).get("Allow", "")
            return answer
        return error_response(ProtocolError(ErrorCode.VALIDATION_FAILED, str(exc.detail)))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error: %s", type(exc).__name__)
        return error_response(ProtocolError(ErrorCode.INTERNAL))
