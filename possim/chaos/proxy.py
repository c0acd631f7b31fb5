"""The fault proxy: an HTTP/1.1 proxy on 127.0.0.1 between the registers and the core, that applies the
seeded plan (``possim.chaos.faults``) to every request.

Each register gets a port of its own, so the proxy knows whose request it holds and counts them (the plan
is keyed by register and request number). Every request is read whole and sent on byte for byte (the
signature covers the method, the target and the body), on the register connection's own keep-alive
connection to the core; a duplicate's second copy and a timeout's late copy go on connections of their own.
When the core does not answer (down, killed, a reset connection) the proxy closes the register's connection
unanswered, as a dead core would, and counts an upstream failure; it never retries on the register's
behalf. :meth:`FaultProxy.point_at` moves it to a core restarted on another port.

The proxy runs its own asyncio loop on a thread; :meth:`FaultProxy.stop` cancels every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading

from possim.chaos.faults import REORDER_MAX_SECONDS, Fault, FaultKind, FaultLog, FaultPlan
from possim.chaos.wire import Message, WireError, read_request, read_response

HOST = "127.0.0.1"
UPSTREAM_SECONDS = 30.0  # the core must answer a request within this, or it counts as not answered
CONNECT_SECONDS = 5.0
IDLE_REFRESH_SECONDS = 2.0  # a connection to the core idle this long is replaced (uvicorn drops idle ones after 5 s)
START_SECONDS = 10.0
STOP_SECONDS = 10.0


class FaultProxy:
    """Ports for ``registers`` registers (:attr:`urls`, after :meth:`start`), forwarding to the core on
    ``upstream_port``. A ``timeout`` fault holds its request ``timeout_hold_seconds`` (more than the
    registers' patience) before the late copy goes to the core."""

    def __init__(self, plan: FaultPlan, registers: int, upstream_port: int, *, timeout_hold_seconds: float) -> None:
        self.log = FaultLog()
        self.urls: list[str] = []
        self._plan = plan
        self._registers = registers
        self._upstream = (HOST, upstream_port)
        self._timeout_hold = timeout_hold_seconds
        self._numbers = [0] * registers
        self._sent = 0  # requests sent on to the core so far: a reordered request waits for the count to move
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="possim-chaos-proxy", daemon=True)
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._sent_moved: asyncio.Condition | None = None
        self._in_flight: set[int] = set()  # local ports of connections to the core awaiting an answer

    def start(self) -> list[str]:
        """Listen (one port a register) and return the registers' base URLs."""
        self._thread.start()
        self.urls = asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(timeout=START_SECONDS)
        return self.urls

    def point_at(self, port: int) -> None:
        """Send what comes next to the core on ``port`` (a restarted core)."""
        self._upstream = (HOST, port)

    def stop(self) -> None:
        """Close every port and connection and end the loop's thread."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=STOP_SECONDS)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=STOP_SECONDS)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- the loop's side ---------------------------------------------------------------------------

    async def _open(self) -> list[str]:
        self._sent_moved = asyncio.Condition()
        urls = []
        for register in range(self._registers):
            server = await asyncio.start_server(functools.partial(self._serve, register), HOST, 0)
            self._servers.append(server)
            urls.append(f"http://{HOST}:{server.sockets[0].getsockname()[1]}")
        return urls

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, register: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One register connection: request after request, each through its fault, until one closes it."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        upstream = _Upstream(self)
        try:
            while True:
                try:
                    request = await read_request(reader)
                except (WireError, OSError):
                    return
                if request is None:
                    return
                fault = self._plan.decide(register, self._numbers[register])
                self._numbers[register] += 1
                self.log.count_request()
                if fault.kind is not None:
                    self.log.record(fault)
                if not await self._through(fault, request, upstream, writer):
                    return
        except asyncio.CancelledError:  # the proxy is stopping: end quietly (asyncio reports a cancelled handler)
            return
        finally:
            upstream.close()
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _through(self, fault: Fault, request: Message, upstream: _Upstream, writer: asyncio.StreamWriter) -> bool:
        """Carry one request through its fault; False when the register's connection is to be closed."""
        kind = fault.kind
        if kind is FaultKind.DROP_REQUEST:
            return False
        if kind is FaultKind.TIMEOUT:
            await asyncio.sleep(self._timeout_hold)  # the register gives up meanwhile and closes its side
            await self._late_copy(request)
            return False
        if kind is FaultKind.DELAY:
            await asyncio.sleep(fault.delay_seconds)
        elif kind is FaultKind.REORDER:
            await self._overtaken()
        if kind is FaultKind.DUPLICATE:
            twin = _Upstream(self, count_failures=False)
            copies = await asyncio.gather(upstream.exchange(request), twin.exchange(request, once=True))
            answer = copies[fault.answer_copy]
            if copies[1 - fault.answer_copy] is not None:
                self.log.late_copy_answered()
        else:
            answer = await upstream.exchange(request)
        if answer is None or kind is FaultKind.DROP_RESPONSE:
            return False
        try:
            writer.write(answer.raw)
            await writer.drain()
        except OSError:
            return False
        return answer.keeps_alive and request.keeps_alive

    async def _late_copy(self, request: Message) -> None:
        if await _Upstream(self, count_failures=False).exchange(request, once=True) is not None:
            self.log.late_copy_answered()

    async def _overtaken(self) -> None:
        """Wait until another request has been sent on to the core (at most ``REORDER_MAX_SECONDS``)."""
        assert self._sent_moved is not None
        mark = self._sent
        async with self._sent_moved:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._sent_moved.wait_for(lambda: self._sent > mark), timeout=REORDER_MAX_SECONDS
                )

    async def _note_sent(self) -> None:
        assert self._sent_moved is not None
        async with self._sent_moved:
            self._sent += 1
            self._sent_moved.notify_all()

    @property
    def upstream(self) -> tuple[str, int]:
        return self._upstream

    def in_flight(self) -> set[int]:
        """The local ports of the proxy's connections to the core that carry a request not answered yet (read from
        another thread: a copy, taken between two steps of the loop)."""
        return set(self._in_flight)


class _Upstream:
    """A keep-alive connection to the core, opened when needed and replaced when idle or broken."""

    def __init__(self, proxy: FaultProxy, *, count_failures: bool = True) -> None:
        self._proxy = proxy
        self._count_failures = count_failures
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used_at = 0.0

    async def exchange(self, request: Message, *, once: bool = False) -> Message | None:
        """Send ``request`` and read the core's answer; None (connection closed) when there is none."""
        loop = asyncio.get_running_loop()
        try:
            if self._writer is None or loop.time() - self._used_at > IDLE_REFRESH_SECONDS:
                self.close()
                host, port = self._proxy.upstream
                self._reader, self._writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), timeout=CONNECT_SECONDS
                )
            assert self._reader is not None and self._writer is not None
            await self._proxy._note_sent()
            local_port = int(self._writer.get_extra_info("sockname")[1])
            self._proxy._in_flight.add(local_port)
            try:
                self._writer.write(request.raw)
                await self._writer.drain()
                answer = await asyncio.wait_for(read_response(self._reader, request.method), timeout=UPSTREAM_SECONDS)
            finally:
                self._proxy._in_flight.discard(local_port)
        except (OSError, WireError, TimeoutError):
            self.close()
            if self._count_failures:
                self._proxy.log.upstream_failed()
            return None
        self._used_at = loop.time()
        if once or not answer.keeps_alive:
            self.close()
        return answer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
