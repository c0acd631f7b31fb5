"""The money races again, against a real ``possim core serve --workers 2`` on SQLite and on PostgreSQL.

Each register's connection is pinned to one worker process (reconnected until ``/healthz`` on that
connection names the wanted pid), so the racing requests are decided by two processes that share
nothing but the database. The world is set up as everywhere (``possim.world``), by the test's own core
on the same database (file or schema), which also reads the books afterwards. On SQLite the test's core is
a third process writing to the file, queued on the same lock file as the workers (``payment_core.db``).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from payment_core.core import Core
from payment_core.db import drop_schema
from payment_core.risk import BURST_FILE
from possim.world import RegisteredTerminal, add_terminal, new_core, serve
from protocol import ManualClock, PaymentCode, TopupStatus, epoch_seconds, from_epoch, system_clock
from tests.conftest import BACKENDS, POSTGRES_URL
from tests.signins import CHEAP_HASHING
from tests.support import SignedCaller, assert_books_balance, balance, enroll_wallet, error_code
from wallet_app.minter import CodeMinter, CodesExhausted
from wallet_app.state import WalletState

WORKERS = 2
START_SECONDS = 60.0  # an interpreter importing the core and forking two workers, on a loaded 2-core machine
STOP_SECONDS = 30.0
PIN_TRIES = 200  # new connections tried to reach one given worker
ANSWER_SECONDS = 60.0
ROOT = Path(__file__).resolve().parents[2]
# The phones enroll through the test's own core: the races are about money, not argon2's cost.


class RecentCodes:
    """A phone's fresh QR codes, minted in its most recent seconds (ten a second), never one twice."""

    def __init__(self, wallet: WalletState) -> None:
        self.wallet = wallet
        self.clock = ManualClock(system_clock())
        self.minter = CodeMinter(wallet.device_id, wallet.secret, self.clock)
        self.used: set[tuple[int, int]] = set()

    def take(self, count: int) -> list[PaymentCode]:
        codes: list[PaymentCode] = []
        second = epoch_seconds(system_clock())
        for _ in range(count + 30):  # seconds back: well within a code's 60 s lifetime
            self.clock.set(from_epoch(second))
            for _ in range(10):
                try:
                    code = self.minter.mint()
                except CodesExhausted:
                    break
                if (code.minted_at, code.counter) not in self.used:
                    self.used.add((code.minted_at, code.counter))
                    codes.append(code)
            if len(codes) >= count:
                return codes[:count]
            second -= 1
        raise AssertionError("no fresh codes left in the last seconds")


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Shop:
    """The served core, the test's own core on its schema, two registers (two stores) and two phones; and a
    spare server on the same schema, started alongside, for the test that kills one of its workers."""

    server: Server
    spare: Server
    core: Core
    registers: tuple[RegisteredTerminal, RegisteredTerminal]
    spender: RecentCodes  # each phone's one minter: every code it makes is fresh
    drained: RecentCodes
    pids: list[int]


def start_server(core: Core, folder: Path, workers: int = WORKERS) -> Server:
    """``possim core serve --workers N`` on the core's database (and schema) and a free loopback port (not
    waited for)."""
    key_file = folder / "server.key"
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(core.config.server_key.hex())
    port = free_port()
    command = [sys.executable, "-m", "possim", "core", "serve", "--db", core.config.db_url, "--workers", str(workers)]
    if core.config.db_schema is not None:
        command += ["--db-schema", core.config.db_schema]
    command += ["--key-file", str(key_file), "--port", str(port)]
    command += ["--risk-config", str(BURST_FILE)]  # the races pay from one phone, fast
    env = {name: value for name, value in os.environ.items() if name not in ("POSSIM_SERVER_KEY", "POSSIM_DB")}
    env["POSSIM_HOME"] = str(folder / "home")
    log = folder / "core.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, env=env)
    return Server(f"http://127.0.0.1:{port}", process, log)


def wait_until_serving(server: Server) -> None:
    wait_for(lambda: answers(server), START_SECONDS, f"the core did not answer /healthz:\n{server.output()}")


def answers(server: Server) -> bool:
    assert server.process.poll() is None, server.output()
    try:
        return httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def stop_server(server: Server) -> int:
    """SIGTERM, as a service manager sends; killed if it has not exited within the bound. Its exit code."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=STOP_SECONDS)
        raise


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # no such process, or the number is another user's now
        return True
    return False


def worker_pids(url: str, tries: int = PIN_TRIES) -> set[int]:
    """The pids that answer /healthz, each over a new connection, until ``WORKERS`` of them have."""
    seen: set[int] = set()
    for _ in range(tries):
        seen.add(int(httpx.get(f"{url}/healthz", timeout=5).json()["pid"]))
        if len(seen) == WORKERS:
            break
    return seen


def pinned(shop: Shop, register: RegisteredTerminal, pid: int) -> SignedCaller:
    """A register whose keep-alive connection is served by worker ``pid`` (the caller closes it)."""
    for _ in range(PIN_TRIES):
        caller = SignedCaller(shop.server.url, register.id, register.secret, system_clock)
        if caller.http.get("/healthz").json()["pid"] == pid:
            return caller
        caller.http.close()
    raise AssertionError(f"no connection reached worker {pid} in {PIN_TRIES} tries")


@pytest.fixture(scope="module", params=BACKENDS)
def shop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The shop on a SQLite file or on a new PostgreSQL schema."""
    if request.param == "sqlite":
        db, schema = str(tmp_path_factory.mktemp("store") / "core.db"), None
    else:
        db, schema = POSTGRES_URL, f"t_{secrets.token_hex(6)}"
    core = new_core(db, db_schema=schema, passwords=CHEAP_HASHING)
    try:
        registers = (
            add_terminal(core, "Shibuya 1-chome", "register-1", "test"),
            add_terminal(core, "Shinjuku 3-chome", "register-2", "test"),
        )
        server = start_server(core, tmp_path_factory.mktemp("workers"))  # both servers start while phones enroll
        try:
            spare = start_server(core, tmp_path_factory.mktemp("spare"))
            try:
                with serve(core) as setup, ThreadPoolExecutor(max_workers=2) as pool:  # argon2 is outside the GIL
                    emails = ("a@example.jp", "b@example.jp")
                    made = pool.map(lambda email: enroll_wallet(setup.url, system_clock, email, core), emails)
                    phones = tuple(RecentCodes(wallet) for wallet in made)
                wait_until_serving(server)
                with registers[0].client(server.url) as register:
                    for phone in phones:
                        code = phone.take(1)[0].numeric
                        topped = register.topup_cash(f"fund-{secrets.token_hex(6)}", 10_000, code)
                        assert topped.status == TopupStatus.SUCCEEDED, topped
                pids = sorted(worker_pids(server.url))
                yield Shop(server, spare, core, registers, phones[0], phones[1], pids)
            finally:
                stop_server(spare)
        finally:
            stopped = stop_server(server)
        assert stopped == 0, server.output()
        assert all(gone(pid) for pid in pids), f"a worker outlived its supervisor: {server.output()}"
    finally:
        core.close()
        if schema is not None:
            drop_schema(POSTGRES_URL, schema)


def test_both_workers_serve(shop: Shop) -> None:
    assert len(shop.pids) == WORKERS, shop.pids
    assert shop.server.process.pid not in shop.pids  # the supervisor serves nothing itself


def race(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """The calls at once, one thread each; their answers in the same order."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result(timeout=ANSWER_SECONDS) for future in futures]


def test_one_code_at_two_registers_on_two_workers_exactly_one_wins(shop: Shop) -> None:
    rounds = 20
    before = balance(shop.core, shop.spender.wallet)
    codes = [code.qr for code in shop.spender.take(rounds)]
    first, second = (pinned(shop, register, pid) for register, pid in zip(shop.registers, shop.pids, strict=True))
    with first, second:
        for round_, code in enumerate(codes):
            answers = race(
                lambda: first.pay(f"code-a-{round_}", 10, code), lambda: second.pay(f"code-b-{round_}", 10, code)
            )
            assert sorted(r.status_code for r in answers) == [200, 402], [r.text for r in answers]
            assert error_code(next(r for r in answers if r.status_code == 402)) == "code_already_used"
    assert balance(shop.core, shop.spender.wallet) == before - 10 * rounds
    assert_books_balance(shop.core)


def test_one_order_sent_to_two_workers_is_one_payment(shop: Shop) -> None:
    """A register's retry lands on the other worker while the first try is still being decided."""
    rounds = 10
    before = balance(shop.core, shop.spender.wallet)
    codes = [code.qr for code in shop.spender.take(rounds)]
    register = shop.registers[0]
    first, second = (pinned(shop, register, pid) for pid in shop.pids)
    with first, second:
        for round_, code in enumerate(codes):
            order = f"order-{round_}-{secrets.token_hex(4)}"
            answers = race(lambda: first.pay(order, 100, code), lambda: second.pay(order, 100, code))
            assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
            assert answers[0].json() == answers[1].json()
    assert balance(shop.core, shop.spender.wallet) == before - 100 * rounds
    assert_books_balance(shop.core)


def test_payments_on_two_workers_never_overdraw(shop: Shop) -> None:
    """More 700 yen payments than the wallet holds, from both registers on both workers at once."""
    held = balance(shop.core, shop.drained.wallet)
    count = held // 700 + 6
    codes = [code.qr for code in shop.drained.take(count)]
    callers = [pinned(shop, register, pid) for register in shop.registers for pid in shop.pids for _ in range(2)]
    try:
        answers = race(
            *(
                (lambda caller=callers[i % len(callers)], i=i, code=code: caller.pay(f"drain-{i}", 700, code))
                for i, code in enumerate(codes)
            )
        )
    finally:
        for caller in callers:
            caller.http.close()
    declined = [r for r in answers if r.status_code == 402]
    assert sum(r.status_code == 200 for r in answers) == held // 700, [r.text for r in answers]
    assert len(declined) == 6 and {error_code(r) for r in declined} == {"insufficient_funds"}
    assert balance(shop.core, shop.drained.wallet) == held % 700
    assert_books_balance(shop.core)


def test_refunds_on_two_workers_never_exceed_the_payment(shop: Shop) -> None:
    """Six refunds of 300 yen against one payment of 1,000, at once: three are taken, the rest refused."""
    register = shop.registers[0]
    code = shop.spender.take(1)[0].qr
    callers = [pinned(shop, register, pid) for pid in shop.pids for _ in range(3)]
    try:
        paid = callers[0].pay(f"refunded-{secrets.token_hex(4)}", 1_000, code)
        assert paid.status_code == 200, paid.text
        before = balance(shop.core, shop.spender.wallet)
        path = f"/v1/payments/{paid.json()['id']}/refunds"
        answers = race(
            *(
                (lambda caller=caller, i=i: caller.call("POST", path, {"refund_id": f"r-{i}", "amount": 300}))
                for i, caller in enumerate(callers)
            )
        )
    finally:
        for caller in callers:
            caller.http.close()
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 400, 400, 400], [r.text for r in answers]
    assert {error_code(r) for r in answers if r.status_code != 200} == {"refund_exceeds_payment"}
    assert balance(shop.core, shop.spender.wallet) == before + 900
    assert_books_balance(shop.core)


def test_a_crashed_worker_is_reported_and_replaced(shop: Shop) -> None:
    """A worker killed outright: its supervisor says which and starts another in its place; the other worker
    and the supervisor go on (the bound on restarts: tests/test_chaos.py)."""
    server = shop.spare
    wait_until_serving(server)
    pids = worker_pids(server.url)
    assert len(pids) == WORKERS, pids
    victim, other = sorted(pids)
    os.kill(victim, signal.SIGKILL)
    replaced = f"worker pid {victim} exited with code -9; replaced by worker pid"
    wait_for(lambda: replaced in server.output(), START_SECONDS, server.output())
    assert server.process.poll() is None, server.output()
    assert not gone(other)
    wait_for(lambda: len(worker_pids(server.url) - {victim}) == WORKERS, START_SECONDS, server.output())
