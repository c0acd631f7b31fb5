"""Reading a request: its body (size-limited), who sent it, and its fields.

Every route takes what it needs as a FastAPI dependency; nothing repeats the method or the path:

- ``Call``: the method, the request target exactly as sent (what a signature covers), the headers and
  the raw body, read once under ``protocol.MAX_BODY_BYTES``; reading it also sets ``sources.current_source``
  to the caller's address for the audit trail and the throttle.
- ``SignedDevice``: the phone whose signature over that call checks out (``payment_core.auth``);
  ``BearerSession``: the live session an access token names.
- ``TerminalCall``: a register's call, whose route does all of its database work in one worker
  thread (on PostgreSQL one of the core's register threads): the terminal's signature checked, the route's
  work done and the request's transaction committed, one hand-over from the event loop instead of three
  (the signature's dependency, the route, the commit).
  Under a sign-in flood the event loop is busy, and each hand-over waited for it while the request held
  SQLite's one slot. On SQLite that call runs in the core's group writer instead, with the other
  registers' requests of the moment, in one transaction (``payment_core.group_commit``).
- ``parse_body``: the body as one of ``payment_core.schemas``' models, or a 422 naming the field.

The authenticator and the core hang on ``app.state`` (``payment_core.api.create_app`` puts them there).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, TypeVar

from fastapi import Depends, Path, Request
from pydantic import BaseModel, ValidationError

from payment_core import sessions
from payment_core.auth import RequestAuthenticator, TerminalRef
from payment_core.core import Core
from payment_core.models import AuthSession, Device
from payment_core.request_unit import commit_request
from payment_core.schemas import ID_PATTERN, ORDER_ID
from payment_core.sources import current_source, request_source
from protocol import ErrorCode, ProtocolError, read_limited_body, request_target

_WHOLE_DIGITS = 19  # a whole float with more digits than this is no amount: left a float (refused)
M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")

# Path parameters, checked before the handler runs (422): ids the core makes are `pay_<hex>`, device numbers
# fit the 32-bit column (a larger one was a database error).
ORDER_ID_PATH = Annotated[str, Path(pattern=ID_PATTERN, description="The register's order id.")]
PAYMENT_ID_PATH = Annotated[str, Path(pattern=r"^[A-Za-z0-9_]{1,64}$", description="A payment id, `pay_...`.")]
DEVICE_ID_PATH = Annotated[int, Path(ge=1, le=2**31 - 1, description="A device number (the `device_id`).")]


@dataclass(frozen=True)
class Call:
    """One request as its signature sees it."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes


def app_core(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


async def read_call(request: Request) -> Call:
    config = app_core(request).config
    peer = request.client.host if request.client else None
    current_source.set(request_source(peer, request.headers, config.trusted_proxies, config.proxy_secret))
    body = await read_limited_body(request.headers.get("content-length"), request.stream())
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    return Call(request.method, request_target(raw_path, request.scope.get("query_string", b"")), request.headers, body)


CallData = Annotated[Call, Depends(read_call)]


def _authenticator(request: Request) -> RequestAuthenticator:
    authenticator: RequestAuthenticator = request.app.state.authenticator
    return authenticator


def signed_device(request: Request, call: CallData) -> Device:
    return _authenticator(request).device(call.headers, call.method, call.target, call.body)


def bearer_session(request: Request, call: CallData) -> AuthSession:
    return sessions.authenticate(app_core(request), call.headers.get("authorization"))


@dataclass(frozen=True)
class RegisterCall:
    """A register's request, read but not yet checked: :meth:`run` checks it and does the route's work."""

    authenticator: RequestAuthenticator
    call: Call
    core: Core

    async def run(self, work: Callable[[TerminalRef, Call], R]) -> R:
        """In one worker thread: the terminal whose signature checks out, ``work(terminal, call)`` (the answer),
        then the request's commit, so the answer is durable before the event loop sees it. A failed commit
        raises (a 503 with nothing kept); an error from ``work`` leaves what its savepoints kept for the
        request's middleware to commit with the error's answer, as for any other route.

        On PostgreSQL it runs on the core's register threads (``Core.register_threads``, one for each request
        admitted at once). On SQLite the same runs in the core's group writer instead
        (``payment_core.group_commit``), in a savepoint of a transaction shared with the other registers'
        requests of the moment, and is answered once that has committed."""
        writer = self.core.group_writer
        if writer is None:
            threads = self.core.register_threads
            assert threads is not None  # a core without a group writer has them (Core.__init__)
            context = contextvars.copy_context()  # the request's unit and source, as anyio would pass them
            return await asyncio.get_running_loop().run_in_executor(threads, context.run, self._run, work)
        answer: R = await asyncio.wrap_future(writer.submit(functools.partial(self._run, work)))
        return answer

    def _run(self, work: Callable[[TerminalRef, Call], R]) -> R:
        call = self.call
        terminal = self.authenticator.terminal(call.headers, call.method, call.target, call.body)
        answer = work(terminal, call)
        commit_request()
        return answer


async def register_call(request: Request, call: CallData) -> RegisterCall:  # no thread: nothing to wait for
    return RegisterCall(_authenticator(request), call, app_core(request))


TerminalCall = Annotated[RegisterCall, Depends(register_call)]
SignedDevice = Annotated[Device, Depends(signed_device)]
BearerSession = Annotated[AuthSession, Depends(bearer_session)]


def _whole_number(text: str) -> int | float:
    """A JSON number as an exact integer when it is one (``100.0``, ``1e2``), read in decimal, never binary.

    JSON has one number type and JSON Schema counts ``100.0`` as the integer 100; ``100.5`` (or a number
    too large to be an amount) stays a float, which the strict integer fields refuse."""
    number = Decimal(text)
    if number.is_finite() and number.adjusted() < _WHOLE_DIGITS and number == number.to_integral_value():
        return int(number)
    return float(text)


def _integral_floats_as_ints(body: bytes) -> bytes:
    """The body with whole-valued JSON numbers written as integers; anything that does not parse is left as
    it is, for pydantic to refuse with its own message."""
    try:
        data = json.loads(body.decode("utf-8"), parse_float=_whole_number)
    except (ValueError, RecursionError):
        return body
    return json.dumps(data).encode()


def parse_body(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(_integral_floats_as_ints(body) if body else b"{}")
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, f"{param}: {first['msg']}", param=param) from None


def check_order_id(order_id: str) -> str:
    if not ORDER_ID.fullmatch(order_id):
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "order_id: not a valid order id", param="order_id")
    return order_id


def digits_only(card_number: str) -> str:
    """A card or bank account number as its digits (spaces and dashes as people type them dropped)."""
    return "".join(char for char in card_number if char.isdigit())
