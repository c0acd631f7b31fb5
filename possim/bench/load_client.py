"""The load of ``possim bench --only core``: client processes, each holding keep-alive connections.

Every connection is one register: its own ``httpx.Client`` (one keep-alive connection to loopback) in
its own thread, signing with that register's key (``protocol.http_auth.SigningAuth``) as the register's
own client does, and sending ``POST /v1/payments`` bodies encoded as the register encodes them. The same
code drives the core and the ceiling app. A request is sent once (no retry): its latency
(``perf_counter``) and how it was answered are recorded.

Each connection first sends its warm-up payments (not counted); when every connection of every
process has warmed up, the parent says go and each connection sends the rest, until they are all sent
or the time bound has passed. The measured span runs from the first measured request sent to the last
answer received, on ``time.monotonic`` (one system-wide clock on Linux, so spans of separate processes
compare).

This module imports only ``protocol`` and httpx: it is what each spawned process imports.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from protocol import encode_body
from protocol.http_auth import SigningAuth

APPROVED = "approved"
_PATH = "/v1/payments"
_HEADERS = {"content-type": "application/json"}
_REQUEST_TIMEOUT_SECONDS = 30.0
_START_SECONDS = 60.0  # for a process to start, connect and send its warm-up payments


@dataclass(frozen=True)
class Connection:
    """One register's keep-alive connection: who signs, and the (order id, code) of each payment in turn."""

    key_id: str
    secret: bytes = field(repr=False)
    jobs: tuple[tuple[str, str], ...]  # the first ``warmup`` of them are not counted


@dataclass(frozen=True)
class Load:
    """What every connection sends: ``amount`` yen a payment, ``warmup`` of its payments first; it stops
    ``seconds`` after the measured phase began, or at ``stop_by`` (``time.monotonic``), whichever is first."""

    amount: int
    warmup: int
    seconds: float  # the measured phase's time bound
    stop_by: float  # when the first codes would expire: no payment is sent with a code past its lifetime


@dataclass
class Tally:
    """What the measured requests got: latencies (seconds), outcomes, and the span they took."""

    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    started: float = float("inf")
    ended: float = float("-inf")
    cut_short: int = 0  # payments not sent because the time bound had passed
    cpu_seconds: float | None = None  # the process's own CPU time (user + system) over the run

    def add(self, other: Tally) -> None:
        self.latencies.extend(other.latencies)
        self.outcomes.update(other.outcomes)
        self.started = min(self.started, other.started)
        self.ended = max(self.ended, other.ended)
        self.cut_short += other.cut_short
        if other.cpu_seconds is not None:
            self.cpu_seconds = (self.cpu_seconds or 0.0) + other.cpu_seconds


def outcome_of(status: int, data: Any) -> str:
    """``approved``, ``declined:<code>`` (the core stored a declined payment) or ``error:<code>``."""
    body = data if isinstance(data, dict) else {}
    if 200 <= status < 300:
        state = body.get("status")
        return APPROVED if state == "succeeded" else f"declined:{body.get('decline_code') or state}"
    error = body.get("error")
    details = error if isinstance(error, dict) else {}
    code = details.get("code") or f"http_{status}"
    declined = status == 402 or details.get("payment_id") is not None
    return f"{'declined' if declined else 'error'}:{code}"


def _send(http: httpx.Client, order_id: str, code: str, amount: int) -> tuple[float, str]:
    content = encode_body({"order_id": order_id, "amount": amount, "code": code})
    started = time.perf_counter()
    try:
        response = http.post(_PATH, content=content, headers=_HEADERS)
        status = response.status_code
        try:
            data = response.json()
        except ValueError:
            data = None
    except httpx.HTTPError as error:
        return time.perf_counter() - started, f"error:{type(error).__name__}"
    return time.perf_counter() - started, outcome_of(status, data)


def _connection(
    url: str, plan: Connection, load: Load, warmed: threading.Barrier, start: threading.Event, tally: Tally
) -> None:
    auth = SigningAuth(plan.key_id, plan.secret)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=url, auth=auth, timeout=_REQUEST_TIMEOUT_SECONDS, limits=limits) as http:
        warm_until = min(time.monotonic() + _START_SECONDS, load.stop_by)
        for order_id, code in plan.jobs[: load.warmup]:
            if time.monotonic() > warm_until:
                break
            _send(http, order_id, code, load.amount)
        try:
            warmed.wait(timeout=_START_SECONDS)
        except threading.BrokenBarrierError:  # a connection failed to warm up: the process reports it
            return
        if not start.wait(timeout=_START_SECONDS):
            return
        measured = plan.jobs[load.warmup :]
        tally.started = time.monotonic()
        deadline = min(tally.started + load.seconds, load.stop_by)
        for index, (order_id, code) in enumerate(measured):
            if time.monotonic() > deadline:
                tally.cut_short = len(measured) - index
                break
            latency, outcome = _send(http, order_id, code, load.amount)
            tally.latencies.append(latency)
            tally.outcomes[outcome] += 1
        tally.ended = time.monotonic()


def client_process(url: str, plans: list[Connection], load: Load, ready: Any, go: Any, results: Any) -> None:
    """One client process (the target of a spawned ``multiprocessing.Process``): a thread per connection.

    Puts ``"ready"`` on ``ready`` once every connection has warmed up, waits for ``go``, then puts its
    :class:`Tally` (or the text of what went wrong) on ``results``.
    """
    try:
        warmed = threading.Barrier(len(plans) + 1)
        start = threading.Event()
        tallies = [Tally() for _ in plans]
        threads = [
            threading.Thread(target=_connection, args=(url, plan, load, warmed, start, tally), daemon=True)
            for plan, tally in zip(plans, tallies, strict=True)
        ]
        for thread in threads:
            thread.start()
        warmed.wait(timeout=_START_SECONDS)
        ready.put("ready")
        cpu_before = time.process_time()  # this process's CPU, every thread's
        if go.wait(timeout=_START_SECONDS):
            start.set()
        for thread in threads:
            thread.join(timeout=load.seconds + _REQUEST_TIMEOUT_SECONDS + 5)
        total = Tally()
        for tally in tallies:
            total.add(tally)
        total.cpu_seconds = time.process_time() - cpu_before
        results.put(total)
    except Exception as error:  # the parent reports it; a spawned process has no one else to tell
        message = f"{type(error).__name__}: {error}"
        ready.put(message)  # whichever the parent waits on
        results.put(message)


def drive(
    url: str,
    processes: list[list[Connection]],
    load: Load,
    probe: Callable[[], float | None] | None = None,
    on_go: Callable[[], None] | None = None,
) -> tuple[Tally, float | None]:
    """Run the load from ``len(processes)`` spawned client processes against ``url``; the summed tally and
    the CPU seconds ``probe`` (the server's CPU clock) moved during the measured phase. ``on_go`` is called
    once every connection has warmed up, just before the measured phase starts."""
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    workers = [
        context.Process(target=client_process, args=(url, plans, load, ready, go, results), daemon=True)
        for plans in processes
    ]
    try:
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + _START_SECONDS + 30
        for _ in workers:
            said = _get(ready, deadline, workers, "warm up")
            if said != "ready":
                raise RuntimeError(f"a client process failed: {said}")
        cpu_before = probe() if probe else None
        if on_go:
            on_go()
        go.set()
        total = Tally()
        deadline = time.monotonic() + load.seconds + _REQUEST_TIMEOUT_SECONDS + 30
        for _ in workers:
            got = _get(results, deadline, workers, "finish")
            if not isinstance(got, Tally):
                raise RuntimeError(f"a client process failed: {got}")
            total.add(got)
        cpu_after = probe() if probe else None
        for worker in workers:
            worker.join(timeout=10)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=5)
            if worker.is_alive():
                worker.kill()
                worker.join(timeout=5)
    server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return total, server_cpu


_LAST_WORDS_SECONDS = 10.0


def _get(channel: Any, deadline: float, workers: list[Any], what: str) -> Any:
    """The next message on ``channel`` before ``deadline``; an error if the time passes or the clients died."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"the client processes did not {what} in time")
        try:
            return channel.get(timeout=min(left, 1.0))
        except queue.Empty:
            if any(worker.is_alive() for worker in workers):
                continue
        # Every client has exited: what a client put just before it exited may still be on its way through
        # the pipe (a full run in the suite lost a finished client's tally to this race), so wait a little.
        try:
            return channel.get(timeout=_LAST_WORDS_SECONDS)
        except queue.Empty:
            raise RuntimeError(f"the client processes exited before they {what}") from None
