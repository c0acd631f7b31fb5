"""The request path's waits (payment_core.api_unit, api_request.TerminalCall): a register's request hands over
to a worker thread once, reads its body before it takes an admission slot, and gives the slot back when its
transaction has committed, before its answer is written. Under a sign-in flood the event loop is busy, and
each of these waits used to stretch the time a payment held SQLite's one slot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import pytest
from starlette.types import Message, Receive, Scope, Send

from payment_core.api_unit import RequestTransactions
from payment_core.core import POSTGRES_ADMITTED, Core
from payment_core.db import is_postgres
from payment_core.request_unit import current_unit
from tests.support import SignedCaller
from wallet_app.minter import CodeMinter

WAIT_SECONDS = 10.0


@pytest.fixture
def hand_overs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function run in a worker thread (starlette and FastAPI both go through anyio)."""
    seen: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        called = getattr(func, "func", func)  # starlette hands over a functools.partial
        seen.append(getattr(called, "__qualname__", repr(called)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return seen


@pytest.fixture
def register_threads(core: Core, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function the core's register threads ran (PostgreSQL; none exist on SQLite)."""
    seen: list[str] = []
    threads = core.register_threads
    if threads is None:
        return seen
    real = threads.submit

    def counted(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        called = args[0] if args else func  # ``context.run(function, ...)``: the function is the first argument
        seen.append(getattr(called, "__qualname__", repr(called)))
        return real(func, *args, **kwargs)

    monkeypatch.setattr(threads, "submit", counted)
    return seen


def _batched(core: Core) -> int:
    """The register requests the core's group writer has run (SQLite); -1 where there is none (PostgreSQL)."""
    return -1 if core.group_writer is None else core.group_writer.requests


def test_a_register_request_is_one_hand_over_to_a_worker_thread(
    core: Core,
    terminal: SignedCaller,
    minter: CodeMinter,
    funded: int,
    hand_overs: list[str],
    register_threads: list[str],
) -> None:
    """On PostgreSQL one of the core's register threads does the signature, the payment and the commit; on
    SQLite the core's group writer does (payment_core.group_commit). Neither goes through anyio's threads."""
    assert (core.register_threads is None) == (core.group_writer is not None)
    before = _batched(core)
    paid = terminal.pay("one-hop", 300, minter.mint().qr)
    assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text
    assert paid.json()["balance_after"] == funded - 300
    one_hop = [] if core.group_writer is not None else ["RegisterCall._run"]
    assert hand_overs == []
    assert register_threads == one_hop
    assert _batched(core) == (-1 if before == -1 else before + 1)

    register_threads.clear()
    looked_up = terminal.call("GET", "/v1/orders/one-hop")
    assert looked_up.status_code == 200 and looked_up.json()["amount"] == 300
    assert hand_overs == []
    assert register_threads == one_hop
    assert _batched(core) == (-1 if before == -1 else before + 2)


def test_a_refused_register_request_still_keeps_its_nonce(
    core: Core, terminal: SignedCaller, hand_overs: list[str], register_threads: list[str]
) -> None:
    """An error's answer commits what the request's savepoints kept (the nonce), as for any route: the same
    signed request again is a replay."""
    first = terminal.call("POST", "/v1/payments", {"order_id": "bad", "amount": 0, "code": "x"}, nonce="n" * 32)
    assert first.status_code == 400 and first.json()["error"]["code"] == "amount_invalid", first.text
    if core.group_writer is None:
        assert register_threads == ["RegisterCall._run"]
        assert len(hand_overs) == 1  # the error's commit, by the request's middleware (payment_core.api_unit)
    else:
        assert hand_overs == []  # the group writer released the request's savepoint, nonce and all
    again = terminal.call("POST", "/v1/payments", {"order_id": "bad", "amount": 0, "code": "x"}, nonce="n" * 32)
    assert again.status_code == 401 and again.json()["error"]["code"] == "nonce_replayed", again.text


def _scope(path: str) -> Scope:
    return {"type": "http", "path": path, "method": "POST", "headers": [], "query_string": b""}


async def _app_using_the_database(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that reads its body, uses the request's transaction, then answers."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    unit = current_unit.get()
    assert unit is not None
    await anyio.to_thread.run_sync(unit.session)  # the transaction begins (on SQLite: the writer's turn)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_the_body_is_read_before_the_slot_and_the_slot_is_back_before_the_answer(core: Core) -> None:
    async def scenario() -> None:
        middleware = RequestTransactions(_app_using_the_database, core)
        middleware.slots = 1  # one slot, as on SQLite, whatever the test's store
        await middleware(_scope("/v1/warm-up"), _receive_once(b""), _discard)  # makes the slot
        admit = middleware._admit
        assert admit is not None
        parts = [b'{"a": ', b"1}"]
        delivered = asyncio.Event()
        slot_free_at_start: list[bool] = []

        async def receive() -> Message:
            part = parts.pop(0)
            if not parts:
                delivered.set()
            return {"type": "http.request", "body": part, "more_body": bool(parts)}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                slot_free_at_start.append(not admit.locked())

        await admit.acquire()  # another request holds the one slot
        request = asyncio.create_task(middleware(_scope("/v1/payments"), receive, send))
        await asyncio.wait_for(delivered.wait(), WAIT_SECONDS)  # the body is read while the slot is taken
        assert not request.done()
        admit.release()
        await asyncio.wait_for(request, WAIT_SECONDS)
        assert slot_free_at_start == [True]  # committed, slot given back, then the answer's first byte
        assert not admit.locked()

    asyncio.run(scenario())


def _receive_once(body: bytes) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _discard(_message: Message) -> None:
    return None


def test_requests_admitted_at_once_one_on_sqlite_at_most_four_on_postgresql(core: Core) -> None:
    middleware = RequestTransactions(_app_using_the_database, core)
    if is_postgres(core.engine):  # the pool holds 32: more threads at once only took turns at the interpreter
        assert middleware.slots == POSTGRES_ADMITTED == 4
        assert core.register_threads is not None and core.register_threads._max_workers == 4
    else:  # one writer
        assert middleware.slots == 1
