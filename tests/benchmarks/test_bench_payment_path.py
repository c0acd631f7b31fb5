"""CPU a payment in the core's own process (``make bench``): the registers' app over ASGI, on SQLite and on
PostgreSQL, with no sockets and no load clients sharing the cores.

``possim bench --only core`` measures what a store chain sees, but on a busy 2-core machine its figures move
by 10-20% between two runs of the same code (its clients take as much CPU as the server). Here sixteen
registers pay at once through the same middleware, group writer (SQLite) or register threads (PostgreSQL)
and payment path, their signed requests prepared beforehand, and the figure is the process's CPU time a
payment: three runs on one 2-core machine gave 3.50-3.60 ms on SQLite and 8.30-9.14 ms on PostgreSQL, a
steadier way to compare two versions of the payment path. No thresholds: the figures go to the benchmark's
extra info and the output, for the issue notes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import pytest
from fastapi import FastAPI
from pytest_benchmark.fixture import BenchmarkFixture
from starlette.types import Message

from payment_core.api import create_app
from payment_core.core import Core
from possim.world import RegisteredTerminal, add_terminal
from protocol import ManualClock, encode_body, sign_request
from tests.support import assert_books_balance, balance
from wallet_app.minter import CodeMinter, CodesExhausted
from wallet_app.state import WalletState

REGISTERS = 16
PAYMENTS_EACH = 25  # a round: 400 payments, 40 seconds of the phone's codes (ten a second)
AMOUNT_YEN = 1
ROUNDS = 3

Request = tuple[list[tuple[bytes, bytes]], bytes]


def _codes(minter: CodeMinter, clock: ManualClock, count: int) -> list[str]:
    """``count`` fresh QR codes of the phone, ten a second, the clock moved on a second each ten."""
    codes: list[str] = []
    while len(codes) < count:
        try:
            codes.append(minter.mint().qr)
        except CodesExhausted:
            clock.advance(1)
    return codes


def _signed(register: RegisteredTerminal, code: str, clock: ManualClock) -> Request:
    body = encode_body({"order_id": f"bench-{secrets.token_hex(8)}", "amount": AMOUNT_YEN, "code": code})
    signed = sign_request(register.secret, register.id, "POST", "/v1/payments", body, clock())
    headers = [(b"host", b"core"), (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers += [(name.lower().encode(), value.encode()) for name, value in signed.as_dict().items()]
    return headers, body


async def _pay(app: FastAPI, request: Request) -> tuple[int, dict[str, Any]]:
    """One ``POST /v1/payments`` through the app as uvicorn would hand it over: its status and its JSON."""
    headers, body = request
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/payments",
        "raw_path": b"/v1/payments",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50_000),
        "server": ("127.0.0.1", 80),
    }
    incoming: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop() if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(message["status"] for message in sent if message["type"] == "http.response.start")
    answer = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return status, json.loads(answer)


async def _registers_pay(app: FastAPI, plans: list[list[Request]]) -> list[tuple[int, dict[str, Any]]]:
    async def one_register(requests: list[Request]) -> list[tuple[int, dict[str, Any]]]:
        return [await _pay(app, request) for request in requests]

    answers = await asyncio.gather(*(one_register(requests) for requests in plans))
    return [answer for register in answers for answer in register]


def _group_commits(core: Core) -> int | None:
    """The transactions the core's group writer has committed (SQLite), None without one (PostgreSQL)."""
    return core.group_writer.batches if core.group_writer is not None else None


@pytest.mark.load_risk
def test_bench_payment_path_cpu(
    benchmark: BenchmarkFixture,
    core: Core,
    clock: ManualClock,
    wallet: WalletState,
    minter: CodeMinter,
    funded: int,
) -> None:
    registers = [
        add_terminal(core, f"Bench store {index // 4 + 1}", f"register-{index}", "bench") for index in range(REGISTERS)
    ]
    app = create_app(core, registers_only=True)
    answers: list[tuple[int, dict[str, Any]]] = []
    cpu: list[float] = []

    def prepare(each: int = PAYMENTS_EACH) -> tuple[tuple[list[list[Request]]], dict[str, Any]]:
        codes = iter(_codes(minter, clock, REGISTERS * each))
        plans = [[_signed(register, next(codes), clock) for _ in range(each)] for register in registers]
        return (plans,), {}

    loop = asyncio.new_event_loop()  # one for every round: the app's admission slots belong to one loop

    def round_(plans: list[list[Request]]) -> None:
        started = time.process_time()
        answers.extend(loop.run_until_complete(_registers_pay(app, plans)))
        cpu.append(time.process_time() - started)

    try:
        round_(*prepare(each=2)[0])  # warm-up, not counted: statements compiled, connections opened
        cpu.clear()
        batches = _group_commits(core)
        benchmark.pedantic(round_, setup=prepare, rounds=ROUNDS)  # type: ignore[no-untyped-call]  # untyped plugin
    finally:
        loop.close()
    payments = len(answers)
    measured = payments - 2 * REGISTERS
    assert measured % (REGISTERS * PAYMENTS_EACH) == 0 and measured > 0
    assert [status for status, _ in answers] == [200] * payments
    assert {answer["status"] for _, answer in answers} == {"succeeded"}
    assert balance(core, wallet) == funded - payments * AMOUNT_YEN
    assert_books_balance(core)
    after = _group_commits(core)
    figures = {
        "store": core.engine.dialect.name,
        "payments": measured,
        "cpu_ms_per_payment": round(1000 * sum(cpu) / measured, 3),
        "group_commits": None if batches is None or after is None else after - batches,
    }
    benchmark.extra_info.update(figures)
    print("\npayment path:", figures)
