"""``possim core serve --workers N``: N uvicorn processes behind one listening socket, and their supervisor.

The parent binds the socket once and starts N children. It has closed its own core by then (engine
disposed, no connection open, no thread left but its own), so the children are forked: they start in
milliseconds instead of importing everything again, and there is no lock held by another thread to
inherit. Were another thread running, they would be spawned instead (fresh interpreters, the socket and
the plan sent through multiprocessing's pipe). Either way the server key reaches a child in memory or
through that pipe, never on a command line or in an environment. Each child makes its own engine, pool
and :class:`payment_core.core.Core`, then runs ``uvicorn.Server`` on the shared socket; the kernel hands
each new connection to one of them.

``--register-port P`` adds one more child on a second socket, serving the registers' routes alone
(``create_app(registers_only=True)``), and runs the children of the public port at a lower CPU priority
(``PUBLIC_NICENESS``): a flood of sign-ins on the public port then queues in other processes' event loops
and below the tills in the scheduler, where with one process it shared the tills' event loop and GIL.

The parent only watches. SIGTERM or SIGINT: every child is asked to stop (SIGTERM: uvicorn finishes the
requests it holds), and killed if it has not within ``STOP_SECONDS``. A child that exits on its own (a
crash, ``kill -9``) is reported on stderr with its pid and exit code and replaced by a new child on the
same socket, while the others go on serving: a register whose connection died with it retries on a new
connection, which the kernel hands to a live worker (``possim chaos --core-workers 2`` proves it under
load). Replacements are bounded (:class:`RestartBudget`: at most ``MAX_RESTARTS`` within
``RESTART_WINDOW_SECONDS``): a child that keeps dying (a lost database at start) is not restarted in a
loop; past the bound the others are stopped and the command exits 1, for a service manager to restart the
whole. A child whose parent is gone stops too.

Every money invariant is held by the database (conditional UPDATEs, unique keys, row locks), so processes
need not share any memory; what is per process is listed in docs/ARCHITECTURE.md. The schema is migrated
once, by the parent's core, before the fork. On SQLite (a file; ``possim.commands.core`` refuses one in
memory) the workers' transactions queue on a flock beside the database (``payment_core.db``), each
worker's engine opening it for itself, so a second writer is handed the database as soon as the first
commits instead of sleeping in SQLite's busy handler.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from payment_core.api import create_app
from payment_core.config import CoreConfig
from payment_core.core import Core
from payment_core.db import make_engine
from payment_core.periodic import Periodic
from payment_core.retention import Pruner
from payment_core.server import bind_loopback, settle_collector
from payment_core.sweep import Sweeper

STOP_SECONDS = 20.0  # how long a stopping child may take to finish its requests before it is killed
_POLL_SECONDS = 0.2
_PARENT_CHECK_SECONDS = 1.0
EXIT_CHILD_FAILED = 1
MAX_RESTARTS = 5  # children replaced within RESTART_WINDOW_SECONDS; one more death stops the whole
RESTART_WINDOW_SECONDS = 60.0
# The public processes' niceness beside a register port: the tills get the CPU first, the public port what
# they leave. Measured with the core bench's flood (32 registers paying while 100 sign-ins at a time hit the
# public port, one SQLite file, 2 cores): +5 196.4/s p99 428 ms; +15 261.8/s p99 303 ms; +19 368.5/s p99 192 ms.
PUBLIC_NICENESS = 19  # the most there is (``os.nice`` stops at 19 above a niceness of 0)


class RestartBudget:
    """How many dead children may be replaced: at most ``limit`` within any ``window_seconds``."""

    def __init__(self, limit: int = MAX_RESTARTS, window_seconds: float = RESTART_WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._restarts: list[float] = []

    def take(self, now: float) -> bool:
        """True (and counted) when one more restart at ``now`` (monotonic seconds) is within the bound."""
        self._restarts = [at for at in self._restarts if now - at < self.window_seconds]
        if len(self._restarts) >= self.limit:
            return False
        self._restarts.append(now)
        return True

    @property
    def used(self) -> int:
        """Restarts counted in the current window (as of the last :meth:`take`)."""
        return len(self._restarts)


@dataclass(frozen=True)
class WorkerPlan:
    """What each child needs to serve: the core's configuration (with the server key) and uvicorn's options."""

    config: CoreConfig
    sqlite_synchronous: str = "FULL"
    log_level: str = "info"
    access_log: bool = True
    registers_only: bool = False  # the registers' routes alone (``--register-port``'s process)
    niceness: int = 0  # added to the process's CPU niceness (the public processes beside a register port)
    sweep_seconds: float = 5.0  # each worker's Sweeper (0: none); closing a payment locks its row, so N agree
    prune_seconds: float = 600.0  # each worker's Pruner (0: none); a row two workers would delete goes once


def share_budget(config: CoreConfig, workers: int) -> CoreConfig:
    """The password budget split between ``workers`` processes (at least one hash and one waiting each), so
    N processes do not hash N times as much at once as one would (``payment_core.password_work``)."""
    return dataclasses.replace(
        config,
        password_workers=max(1, config.password_workers // workers),
        password_queue=max(1, config.password_queue // workers),
    )


def serve(plan: WorkerPlan, host: str, port: int, workers: int, register_port: int | None = None) -> int:
    """Serve on ``host:port`` with ``workers`` processes, and on ``register_port`` (if any) with one more that
    answers the registers alone, until SIGTERM/SIGINT (0) or a child's exit past the restart budget (1)."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    listeners: list[socket.socket] = []
    try:
        for number in (port, *([register_port] if register_port else [])):
            try:
                listeners.append(bind_loopback(host, number))  # any address, despite the name
            except OSError as error:
                _say(f"cannot listen on {host}:{number}: {error.strerror or type(error).__name__}")
                return 2
        niceness = PUBLIC_NICENESS if register_port else 0
        public = dataclasses.replace(plan, config=share_budget(plan.config, workers), niceness=niceness)
        seats = [(public, listeners[0])] * workers
        # The registers' process queues no work and does none: sign-ups and resets are the public port's.
        tills = dataclasses.replace(
            plan, registers_only=True, config=dataclasses.replace(plan.config, queued_work_runner=False)
        )
        seats += [(tills, listener) for listener in listeners[1:]]
        return _Supervisor(seats).run()
    finally:
        for listener in listeners:
            listener.close()


Seat = tuple[WorkerPlan, socket.socket]  # what a child serves, and where


class _Supervisor:
    def __init__(self, seats: list[Seat]) -> None:
        self._seats = seats
        self._children: list[BaseProcess] = []
        self._signalled: int | None = None
        self._budget = RestartBudget()
        self._started = 0

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            alone = threading.active_count() == 1
            context = multiprocessing.get_context("fork") if alone else multiprocessing.get_context("spawn")
            self._children = [self._start(context, seat) for seat in self._seats]
            return self._watch(context)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _start(self, context: ForkContext | SpawnContext, seat: Seat) -> BaseProcess:
        """A new child serving ``seat``'s plan on its shared socket."""
        self._started += 1
        plan, listener = seat
        child = context.Process(
            target=_child_main,
            args=(plan, listener, os.getpid()),
            name=f"possim-core-worker-{self._started}",
        )
        child.start()
        return child

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signalled = signum

    def _watch(self, context: ForkContext | SpawnContext) -> int:
        """Replace each child that exits on its own, within the restart budget; 0 once signalled, 1 past the
        budget."""
        while self._signalled is None:
            ended = wait([child.sentinel for child in self._children], timeout=_POLL_SECONDS)
            if not ended or self._signalled is not None:
                continue
            for index, child in enumerate(self._children):
                if child.sentinel not in ended:
                    continue
                child.join(timeout=STOP_SECONDS)  # its pipe closes a moment before it can be reaped
                gone = f"worker pid {child.pid} exited with code {child.exitcode}"
                if not self._budget.take(time.monotonic()):
                    limit, window = self._budget.limit, self._budget.window_seconds
                    _say(f"{gone}; {limit} restarts within {window:.0f} s already: stopping the others")
                    return EXIT_CHILD_FAILED
                self._children[index] = self._start(context, self._seats[index])
                _say(f"{gone}; replaced by worker pid {self._children[index].pid}")
        return 0

    def _stop_all(self) -> None:
        for child in self._children:
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for child in self._children:
            child.join(timeout=max(0.0, deadline - time.monotonic()))
            if child.is_alive():
                _say(f"worker pid {child.pid} did not stop within {STOP_SECONDS:.0f} s; killing it")
                child.kill()
                child.join(timeout=STOP_SECONDS)


def _child_main(plan: WorkerPlan, listener: socket.socket, parent: int) -> None:
    """One worker: its own engine, pool, core and app, served on the shared socket."""
    for sig in (signal.SIGTERM, signal.SIGINT):  # not the supervisor's handlers, if forked: stop at once
        signal.signal(sig, signal.SIG_DFL)
    if plan.niceness:
        os.nice(plan.niceness)
    config = plan.config
    try:
        engine = make_engine(
            config.db_url, config.db_schema, create_schema=False, sqlite_synchronous=plan.sqlite_synchronous
        )
        core = Core(config, engine=engine)
    except (SQLAlchemyError, ValueError, OSError) as error:
        _say(f"worker pid {os.getpid()} cannot open the store: {type(error).__name__}")
        sys.exit(3)
    try:
        # proxy_headers off: the core alone decides whose X-Forwarded-For to believe (payment_core.sources).
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(core, registers_only=plan.registers_only),
                log_level=plan.log_level,
                access_log=plan.access_log,
                proxy_headers=False,
            )
        )
        settle_collector()

        def stop(_signum: int, _frame: FrameType | None) -> None:
            server.should_exit = True

        # uvicorn replaces these while it serves and calls them again once it has stopped: with the default
        # handlers that call would end the process before the deferred work below is done.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        threading.Thread(target=_stop_when_orphaned, args=(server, parent), daemon=True).start()
        jobs = periodic_jobs(core, plan.sweep_seconds, plan.prune_seconds)
        try:
            server.run(sockets=[listener])
        finally:
            for job in jobs:
                job.stop()
    finally:
        core.close()  # a queued job under way is finished first (the rest wait in the database)


def periodic_jobs(core: Core, sweep_seconds: float, prune_seconds: float) -> list[Periodic]:
    """The core's own jobs, started: closing unanswered payments and pruning what no window reads any more."""
    jobs: list[Periodic] = [Sweeper(core, sweep_seconds)] if sweep_seconds > 0 else []
    jobs += [Pruner(core, prune_seconds)] if prune_seconds > 0 else []
    for job in jobs:
        job.start()
    return jobs


def _stop_when_orphaned(server: uvicorn.Server, parent: int) -> None:
    """Stop serving when the supervisor is gone (killed without a chance to stop its children)."""
    while not server.should_exit:
        if os.getppid() != parent:
            server.should_exit = True
            return
        time.sleep(_PARENT_CHECK_SECONDS)


def _say(message: str) -> None:
    print(f"possim core: {message}", file=sys.stderr, flush=True)
