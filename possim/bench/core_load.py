"""How many approved payments a second does the core sustain with many registers paying at once?

Against a ceiling measured in the same run: the same clients (``possim.bench.load_client``: 2 spawned
processes, each connection one register with its own keep-alive connection, signing as the register
does) against ``possim.bench.ceiling_app``, a FastAPI app under the same uvicorn options that only reads
the body and answers. Then, on SQLite and on PostgreSQL in turn:

- a fresh core (``possim.world.new_core``: a new database or schema and a new server key) with
  8 stores of 4 registers (``possim.world.add_terminal``), served in-process for the setup only:
  50 phones signed up, verified from the simulated mail and enrolled with password and TOTP through
  the wallet API (each from its own loopback address, as phones come from their own networks: one
  address may ask for only 10 sign-ups a window), then funded with cash at a register;
- the same database served by a real ``possim core serve --register-port`` subprocess on free loopback
  ports: the registers pay on their own port, served by a process of its own; the public port (the
  wallets' and sign-ins') by another, below it in CPU priority;
- each phone's codes minted offline (``wallet_app.minter.CodeMinter`` on a manual clock) in its most
  recent seconds, ten a second as the protocol allows, QR form, each used once; the run must end
  within the codes' 60 s lifetime and 30 s skew, hence the measured phase's time bound;
- the load: every connection sends its warm-up payments, then its share of the measured ones, each
  ``POST /v1/payments`` with a fresh order id, a fresh code and 100 yen; no retry, every answer counted.

Between them, the floor (``possim.bench.floor_app``): the same load against the same FastAPI writing a
payment's rows by hand in one durable SQLite transaction, the best any core on this stack could do
(``floor.ratio``, over the same ceiling).

``payments_per_s`` counts approved payments over the measured span (first request sent to last answer);
``ratio`` is that over the ceiling. ``server_cpu`` and ``client_cpu`` say how many cores the server and
the clients kept busy meanwhile (``None`` where ``/proc`` is missing); ``server_memory_mb`` the server's
resident memory at the end of the load (``possim.bench.served.memory_mb``), the registers' process's.
Then ``flood``: a shorter run (``flood_payments``) of the registers on the same server while
``possim.bench.flood`` sends 100 sign-ins at a time to the public port from rotating loopback addresses
and polls its ``/healthz`` (its module says how). Default limits: 100 yen
payments are below ``confirm_above_yen`` and each phone's one top-up is within a new device's limits.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from payment_core import db
from payment_core.config import Limits
from payment_core.core import Core
from payment_core.risk import BURST_FILE, load_settings
from possim.bench.flood import Flood
from possim.bench.load_client import APPROVED, Connection, Load, Tally, drive
from possim.bench.served import cpu_seconds as _cpu_seconds
from possim.bench.served import free_port, health_answers, memory_mb, tree_cpu_seconds
from possim.bench.served import served as _served
from possim.world import Customer, RegisteredTerminal, add_terminal, fund, new_core, serve, sign_up_verified
from protocol import (
    DEFAULT_SKEW_SECONDS,
    DEFAULT_TTL_SECONDS,
    ManualClock,
    PaymentCode,
    epoch_seconds,
    from_epoch,
    system_clock,
)
from wallet_app.client import WalletClient
from wallet_app.minter import CodeMinter, CodesExhausted

POSTGRES_URL = os.environ.get("POSSIM_BENCH_POSTGRES", "postgresql://127.0.0.1:5432/test")
AMOUNT_YEN = 100
PROCESSES = 2
_START_SECONDS = 60.0
_CODE_MARGIN_SECONDS = 5  # the load stops this long before its oldest code would expire
_ENROLL_WORKERS = 2  # argon2 (sign-up and enrollment) keeps a core busy: two at a time on a 2-core machine


@dataclass(frozen=True)
class Scale:
    stores: int
    registers_per_store: int
    phones: int
    payments: int  # measured, per store type
    warmup: int  # per connection, not counted
    seconds: float  # the measured phase's time bound
    flood_payments: int  # measured during the sign-in flood, per store type
    flood_signins: int  # the flood's bound in sign-ins

    @property
    def terminals(self) -> int:
        return self.stores * self.registers_per_store


FULL = Scale(
    stores=8,
    registers_per_store=4,
    phones=50,
    payments=3_000,
    warmup=4,
    seconds=60.0,
    flood_payments=1_000,
    flood_signins=20_000,
)
QUICK = Scale(
    stores=2,
    registers_per_store=2,
    phones=5,
    payments=200,
    warmup=2,
    seconds=30.0,
    flood_payments=100,
    flood_signins=2_000,
)


@dataclass(frozen=True)
class Phone:
    """A phone's minter, the manual clock it mints on (set to each second minted in) and the codes it used."""

    minter: CodeMinter
    clock: ManualClock
    used: frozenset[str] = frozenset()  # the use keys of the codes its funding took


class RecordingMinter(CodeMinter):
    """A phone's minter that remembers what it minted, so the pool never offers a code twice."""

    def __init__(self, device_id: int, secret: bytes, clock: ManualClock) -> None:
        super().__init__(device_id, secret, clock)
        self.minted: list[PaymentCode] = []

    def mint(self) -> PaymentCode:
        code = super().mint()
        self.minted.append(code)
        return code


def run(quick: bool = False) -> dict[str, Any]:
    scale = QUICK if quick else FULL
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="possim-bench-core-") as folder:
        ceiling = _ceiling(scale, Path(folder))
        result["ceiling_per_s"] = ceiling["answers_per_s"]
        result["ceiling"] = ceiling
        floor = _floor(scale, Path(folder))
        result["floor"] = floor | {"ratio": round(floor["answers_per_s"] / ceiling["answers_per_s"], 4)}
        for kind in ("sqlite", "postgresql"):
            section = _store(kind, scale, Path(folder) / kind)
            section["ratio"] = round(section["payments_per_s"] / ceiling["answers_per_s"], 4)
            result[kind] = section
    result.update(
        terminals=scale.terminals,
        stores=scale.stores,
        phones=scale.phones,
        payments=scale.payments,
        warmup_per_terminal=scale.warmup,
        amount_yen=AMOUNT_YEN,
        client_processes=PROCESSES,
        synchronous=result["sqlite"].pop("synchronous"),
        limits="defaults",
        risk_rules="as shipped, velocity limits out of reach (payment_core/risk/burst.toml)",
        time_bound_s=scale.seconds,
    )
    return result


# -- the two servers -------------------------------------------------------------------------------


def _ceiling(scale: Scale, folder: Path) -> dict[str, Any]:
    return _bare("ceiling", [sys.executable, "-m", "possim.bench.ceiling_app"], scale, folder)


def _floor(scale: Scale, folder: Path) -> dict[str, Any]:
    """``possim.bench.floor_app``: the same load against the least a durable SQLite payment costs."""
    return _bare(
        "floor", [sys.executable, "-m", "possim.bench.floor_app", "--db", str(folder / "floor.db")], scale, folder
    )


def _bare(label: str, command: list[str], scale: Scale, folder: Path) -> dict[str, Any]:
    """The load against a stand-in server (no registers or phones of its own: it checks no signature or code)."""
    fake_phones = [_fresh_phone(number + 1, secrets.token_bytes(32)) for number in range(scale.phones)]
    fake_terminals = [
        RegisteredTerminal(f"term_{label}{index}", secrets.token_bytes(32), label) for index in range(scale.terminals)
    ]
    with _served([*command, "--host", "127.0.0.1"], folder / f"{label}.log") as (url, pid):
        pools, oldest = code_pools(fake_phones, codes_per_phone(scale))
        plans = payment_plans(label, scale, fake_terminals, pools)
        tally, server_cpu = drive(url, plans, bounded_load(scale, oldest), lambda: _cpu_seconds(pid))
    return summary(tally, server_cpu)


def _store(kind: str, scale: Scale, folder: Path) -> dict[str, Any]:
    folder.mkdir()
    schema = f"bench_{secrets.token_hex(6)}" if kind == "postgresql" else None
    db = POSTGRES_URL if schema else str(folder / "core.db")
    try:
        started = time.monotonic()
        terminals, phones, key_file, settings = prepare_world(db, scale, folder, schema)
        command = [sys.executable, "-m", "possim", "core", "serve", "--db", db, "--key-file", str(key_file)]
        command += ["--host", "127.0.0.1", *(["--db-schema", schema] if schema else [])]
        register_port = free_port()
        command += ["--risk-config", str(BURST_FILE), "--register-port", str(register_port)]
        with _served(command, folder / "core.log") as (url, pid):
            registers = _registers_url(register_port)
            setup_seconds = time.monotonic() - started
            pools, oldest = code_pools(phones, codes_per_phone(scale))
            plans = payment_plans(kind, scale, terminals, pools)
            tally, server_cpu = drive(registers, plans, bounded_load(scale, oldest), lambda: tree_cpu_seconds(pid))
            memory = memory_mb(httpx.get(f"{registers}/healthz", timeout=10).json()["pid"])  # before the flood
            flood = _flood(url, registers, pid, kind, scale, terminals, phones)
    finally:
        if schema:
            drop_schema(schema)
    extra = {"setup_s": round(setup_seconds, 1), "server_memory_mb": memory, "flood": flood}
    return summary(tally, server_cpu) | settings | extra


def _registers_url(port: int) -> str:
    """The registers' own port (``possim core serve --register-port``), once it answers."""
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + _START_SECONDS
    while not health_answers(url):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the registers' port {port} did not answer within {_START_SECONDS:.0f} s")
        time.sleep(0.1)
    return url


def _flood(
    url: str,
    registers: str,
    pid: int,
    kind: str,
    scale: Scale,
    terminals: list[RegisteredTerminal],
    phones: list[Phone],
) -> dict[str, Any]:
    """A shorter measured run (``flood_payments``) of the registers on their own port (``registers``) while
    ``possim.bench.flood`` floods the public port (``url``) with sign-ins. Besides the server's CPU (every
    process of it) it reports the flood's own (``flood_client_cpu``, cores): on this machine the attacker's
    client shares the cores with the server and the registers' clients."""
    short = _flood_scale(scale)
    phones = [dataclasses.replace(phone, used=phone.used | minted_keys(phone)) for phone in phones]
    pools, oldest = code_pools(phones, codes_per_phone(short))
    plans = payment_plans(f"{kind}-flood", short, terminals, pools)
    flood = Flood(url, scale.flood_signins, short.seconds)  # from the measured phase's start
    flood_cpu = time.process_time()  # this process runs nothing but the flood's threads meanwhile
    try:
        tally, server_cpu = drive(
            registers, plans, bounded_load(short, oldest), lambda: tree_cpu_seconds(pid), flood.start
        )
    finally:
        figures = flood.stop()
        flood_cpu = time.process_time() - flood_cpu
    row = summary(tally, server_cpu)
    kept = ("payments_per_s", "p50_ms", "p99_ms", "approved", "sent", "cut_short", "server_cpu", "client_cpu")
    return {name: row[name] for name in kept} | figures | {"flood_client_cpu": round(flood_cpu / row["seconds"], 2)}


def minted_keys(phone: Phone) -> frozenset[str]:
    """The use keys of every code the phone has minted (a minter remembers only its latest second)."""
    minted = phone.minter.minted if isinstance(phone.minter, RecordingMinter) else []
    return frozenset(_use_key(code) for code in minted)


def _flood_scale(scale: Scale) -> Scale:
    return dataclasses.replace(scale, payments=scale.flood_payments)


def bounded_load(scale: Scale, oldest: int) -> Load:
    """The load, stopping before the oldest code it sends would be past its lifetime and skew at the core
    (``possim core serve`` keeps the protocol's defaults), with a few seconds to spare."""
    expires = oldest + DEFAULT_TTL_SECONDS + DEFAULT_SKEW_SECONDS - _CODE_MARGIN_SECONDS
    return Load(AMOUNT_YEN, scale.warmup, scale.seconds, stop_by=time.monotonic() + (expires - time.time()))


def durability(core: Core) -> dict[str, Any]:
    """How durable a commit is: SQLite's ``PRAGMA synchronous`` (as the core sets it), PostgreSQL's settings."""
    with core.engine.connect() as conn:
        if core.engine.dialect.name == "sqlite":
            return {"synchronous": db.sqlite_synchronous_name(conn.exec_driver_sql("PRAGMA synchronous").scalar())}
        return {name: conn.exec_driver_sql(f"SHOW {name}").scalar() for name in ("synchronous_commit", "fsync")}


def write_key(path: Path, key: bytes) -> Path:
    """The core's key where ``possim core serve --key-file`` reads it (0600, as the core makes its own)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    return path


def prepare_world(
    db: str, scale: Scale, folder: Path, schema: str | None = None, amount: int = AMOUNT_YEN
) -> tuple[list[RegisteredTerminal], list[Phone], Path, dict[str, Any]]:
    """A fresh core on ``db`` (``schema`` on PostgreSQL) with ``scale``'s registers and phones funded for
    their payments of ``amount`` yen (:func:`setup_world`), closed again for a server to take over: its
    registers, phones, server key file (in ``folder``) and durability settings."""
    core = new_core(db, db_schema=schema, risk=load_settings(BURST_FILE))  # funding every phone at one register
    try:
        terminals, phones = setup_world(core, scale, amount)
        return terminals, phones, write_key(folder / "server.key", core.config.server_key), durability(core)
    finally:
        core.close()


def drop_schema(schema: str) -> None:
    """Drop a bench run's schema on the bench's PostgreSQL server."""
    db.drop_schema(POSTGRES_URL, schema)


# -- the world: registers, phones, codes -----------------------------------------------------------


def setup_world(core: Core, scale: Scale, amount: int = AMOUNT_YEN) -> tuple[list[RegisteredTerminal], list[Phone]]:
    """The registers, and the phones enrolled and funded through the core's API (served in-process)."""
    terminals = [
        add_terminal(core, f"Bench store {store + 1}", f"register-{register + 1}", actor="bench")
        for store in range(scale.stores)
        for register in range(scale.registers_per_store)
    ]
    codes = codes_per_phone(scale) + codes_per_phone(_flood_scale(scale))  # the flood's run too
    funds = max(1_000, math.ceil(codes * amount / 1_000) * 1_000)
    if funds > Limits().new_device_topup_max_yen:
        raise ValueError(f"{funds} yen a phone is above a new device's top-up limit: fewer payments or more phones")
    with serve(core) as server:
        with ThreadPoolExecutor(max_workers=_ENROLL_WORKERS) as pool:
            enrolled = list(pool.map(lambda index: _enroll(core, server.url, index), range(scale.phones)))
        phones = []
        with terminals[0].client(server.url) as register:
            for device_id, secret in enrolled:
                clock = ManualClock(system_clock())
                minter = RecordingMinter(device_id, secret, clock)
                fund(register, minter, funds, prefix="bench-fund")
                phones.append(Phone(minter, clock, frozenset(_use_key(code) for code in minter.minted)))
    return terminals, phones


def _enroll(core: Core, url: str, index: int) -> tuple[int, bytes]:
    """possim.world's steps (sign-up, the mailed code, the authenticator, enrollment), each phone from its
    own loopback address."""
    customer = Customer(f"bench{index}@example.jp", secrets.token_urlsafe(18), f"+8190{index:08d}", f"Bench {index}")
    address = f"127.0.{1 + index // 250}.{1 + index % 250}"
    transport = httpx.HTTPTransport(local_address=address)
    with WalletClient(url, timeout=120, transport=transport) as client:
        verified = sign_up_verified(client, core, customer)
        state = client.enroll(customer.email, customer.password, verified.totp(system_clock), f"bench phone {index}")
    return state.device_id, state.secret


def _fresh_phone(device_id: int, secret: bytes) -> Phone:
    clock = ManualClock(system_clock())
    return Phone(CodeMinter(device_id, secret, clock), clock)


def _use_key(code: PaymentCode) -> str:
    """What the core records of a used code (``protocol.payment_code.VerifiedCode.use_key``)."""
    return f"{code.device_id}:{code.minted_at}:{code.counter}"


def codes_per_phone(scale: Scale) -> int:
    return math.ceil((scale.payments + scale.warmup * scale.terminals) / scale.phones)


def code_pools(phones: list[Phone], per_phone: int) -> tuple[list[list[str]], int]:
    """Each phone's ``per_phone`` codes (QR form), minted on its own minter in its most recent seconds,
    ten a second, oldest first, never one the phone has used; and the second the oldest was minted in."""
    pools = []
    oldest = epoch_seconds(system_clock())
    for phone in phones:
        codes: list[PaymentCode] = []
        second = epoch_seconds(system_clock())
        while len(codes) < per_phone:
            phone.clock.set(from_epoch(second))
            for _ in range(10):
                try:
                    code = phone.minter.mint()
                except CodesExhausted:
                    break
                if _use_key(code) not in phone.used:
                    codes.append(code)
            second -= 1
        codes = sorted(codes[:per_phone], key=lambda code: (code.minted_at, code.counter))
        pools.append([code.qr for code in codes])
        oldest = min([oldest, *(code.minted_at for code in codes)])
    return pools, oldest


def payment_plans(
    label: str, scale: Scale, terminals: list[RegisteredTerminal], pools: list[list[str]]
) -> list[list[Connection]]:
    """Each process's connections, one per register. Payments go out in rounds (each connection's first,
    then each one's second, ...); payment ``k`` uses phone ``k % phones``, so a round's payments come from
    as many different phones as there are."""
    count = len(terminals)
    shares = [scale.warmup + scale.payments // count + (index < scale.payments % count) for index in range(count)]
    jobs: list[list[tuple[str, str]]] = [[] for _ in range(count)]
    drawn = [0] * len(pools)
    number = 0
    for round_ in range(max(shares)):
        for index in range(count):
            if round_ >= shares[index]:
                continue
            phone = number % len(pools)
            code = pools[phone][drawn[phone]]
            drawn[phone] += 1
            jobs[index].append((f"bench-{label}-{index}-{round_}-{secrets.token_hex(4)}", code))
            number += 1
    connections = [Connection(t.id, t.secret, tuple(j)) for t, j in zip(terminals, jobs, strict=True)]
    return [connections[process::PROCESSES] for process in range(PROCESSES)]


# -- the figures -----------------------------------------------------------------------------------


def percentile(ordered: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least ``share`` of the values at or below it."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else math.nan


def summary(tally: Tally, server_cpu: float | None) -> dict[str, Any]:
    seconds = tally.ended - tally.started
    ordered = sorted(tally.latencies)
    approved = tally.outcomes[APPROVED]
    codes = {outcome: count for outcome, count in sorted(tally.outcomes.items()) if outcome != APPROVED}
    return {
        "payments_per_s": round(approved / seconds, 1),
        "answers_per_s": round(len(ordered) / seconds, 1),
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
        "approved": approved,
        "declined": sum(count for outcome, count in codes.items() if outcome.startswith("declined:")),
        "errors": sum(count for outcome, count in codes.items() if outcome.startswith("error:")),
        "codes": codes,
        "sent": len(ordered),
        "cut_short": tally.cut_short,
        "seconds": round(seconds, 3),
        "server_cpu": None if server_cpu is None else round(server_cpu / seconds, 2),
        "client_cpu": None if tally.cpu_seconds is None else round(tally.cpu_seconds / seconds, 2),
    }
