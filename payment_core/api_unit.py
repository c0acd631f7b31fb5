"""The API's request transactions (ASGI middleware): each request runs in one ``RequestUnit``, and its
commit happens before the first byte of the answer is sent.

Requests are admitted through slots, waited for in the event loop (never in a worker thread, which could
starve the threads that the admitted requests need): one on SQLite, which has a single writer, so a
request never sleeps in SQLite's busy handler; on PostgreSQL as many as the connection pool holds, so an
admitted request always finds a connection, and no more than ``core.POSTGRES_ADMITTED`` (more only took
turns at the interpreter's lock and the cores). ``/healthz`` and the OpenAPI document need no database.

Routes that check or hash a password (argon2: tens of milliseconds of CPU) keep their own short
transactions around that work instead (``PASSWORD_PATHS``): a request holding the store's one slot while
it hashes would hold every register's payment behind a sign-in. At most as many of them are let in at
once as the password budget holds (``payment_core.password_work``: workers and queue); one more is refused
here with 503 and ``Retry-After``, before it takes a worker thread or touches the database. Without
this, a flood of sign-ins took every worker thread, and an admitted payment could not get one to finish
while the sign-ins waited for its database lock (measured: no payment for 30 s on SQLite).
"""

from __future__ import annotations

import asyncio
import logging

from fastapi.routing import APIRoute
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payment_core.api_errors import DatabaseUnavailable, error_response
from payment_core.api_request import register_call
from payment_core.core import Core, admitted_at_once
from payment_core.password_work import PasswordWorkFull
from payment_core.request_unit import RequestUnit, current_unit
from protocol import MAX_BODY_BYTES

log = logging.getLogger("possim.core")
NO_DATABASE_PATHS = frozenset({"/healthz", "/openapi.json"})
PASSWORD_PATHS = frozenset(
    {"/v1/accounts", "/v1/devices", "/v1/sessions", "/v1/account/password", "/v1/password-reset/confirm"}
)


class RequestTransactions:
    def __init__(self, app: ASGIApp, core: Core) -> None:
        self.app = app
        self.core = core
        self.slots = admitted_at_once(core.engine)
        self._admit: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in NO_DATABASE_PATHS:
            await self.app(scope, receive, send)
            return
        if scope["path"] in PASSWORD_PATHS:
            await self._password_route(scope, receive, send)
            return
        if self._admit is None:  # made in the server's event loop, on first use
            self._admit = asyncio.Semaphore(self.slots)
        receive = await _body_read_ahead(receive)  # a slow or busy client's body is not read holding the slot
        if self.core.group_writer is not None and _register_route(scope):
            slot = _Slot(None)  # the group writer queues it (payment_core.group_commit): no slot to wait for
        else:
            await self._admit.acquire()
            slot = _Slot(self._admit)
        unit = RequestUnit(self.core.sessions)
        token = current_unit.set(unit)
        try:
            await self.app(scope, receive, _CommitFirst(unit, slot, scope, receive, send))
        finally:
            current_unit.reset(token)
            try:
                if unit.used:  # the answer was never started: an error escaped, nothing is kept
                    await run_in_threadpool(unit.rollback)
            finally:
                slot.release()

    async def _password_route(self, scope: Scope, receive: Receive, send: Send) -> None:
        budget = self.core.password_work
        if not budget.admit_request():  # as many in at once as the budget holds; /healthz says when it is full
            await error_response(PasswordWorkFull())(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            budget.leave_request()


def _register_route(scope: Scope) -> bool:
    """Is this one of the registers' routes (``api_request.TerminalCall``), whose work the core's group writer
    runs? Found among the app's routes once (on the first request), then matched like the router does."""
    app = scope.get("app")
    if app is None:  # an app not served by Starlette (a test's bare ASGI app)
        return False
    routes: list[APIRoute] | None = getattr(app.state, "register_routes", None)
    if routes is None:
        routes = [route for route in app.routes if isinstance(route, APIRoute) and _takes_register_call(route)]
        app.state.register_routes = routes
    return any(route.matches(scope)[0] is Match.FULL for route in routes)


def _takes_register_call(route: APIRoute) -> bool:
    return any(dependency.call is register_call for dependency in route.dependant.dependencies)


class _Slot:
    """A request's admission slot, given back once: when its transaction has ended, before the answer is sent."""

    def __init__(self, semaphore: asyncio.Semaphore | None) -> None:
        self._semaphore: asyncio.Semaphore | None = semaphore

    def release(self) -> None:
        semaphore, self._semaphore = self._semaphore, None
        if semaphore is not None:
            semaphore.release()


async def _body_read_ahead(receive: Receive) -> Receive:
    """``receive``, with the request's body read now, up to one byte past ``MAX_BODY_BYTES`` (beyond that the
    route reads the rest itself and refuses it): the read then waits for nobody while the request holds a slot."""
    early: list[Message] = []
    size = 0
    while size <= MAX_BODY_BYTES:
        message = await receive()
        early.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
        size += len(message.get("body", b""))

    async def replay() -> Message:
        return early.pop(0) if early else await receive()

    return replay


class _CommitFirst:
    """Wraps ``send``: commits the unit before the answer starts (a failed commit answers 503 instead), then
    gives the slot back; a unit its route has already committed (``api_request.TerminalCall``) costs no hop."""

    def __init__(self, unit: RequestUnit, slot: _Slot, scope: Scope, receive: Receive, send: Send) -> None:
        self._unit = unit
        self._slot = slot
        self._scope = scope
        self._receive = receive
        self._send = send
        self._replaced = False

    async def __call__(self, message: Message) -> None:
        if self._replaced:
            return  # the original answer's body: dropped, the 503 was sent whole
        if message["type"] == "http.response.start":
            try:
                if self._unit.used:
                    await run_in_threadpool(self._unit.commit)
            except SQLAlchemyError as error:
                log.error("commit failed: %s", type(error).__name__)
                self._replaced = True
                await error_response(DatabaseUnavailable())(self._scope, self._receive, self._send)
                return
            finally:
                if not self._unit.used:
                    self._slot.release()
        await self._send(message)
