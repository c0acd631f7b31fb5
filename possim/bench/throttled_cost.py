"""What a sign-in the throttle refuses (HTTP 429) costs the core, beside what an approved payment costs.

The performance issue asks that a refused sign-in cost the core no more than a payment. On one store
(SQLite, or a schema of its own on the bench's PostgreSQL server), :func:`run_throttled_cost`:

- prepares a fresh core with one register and a few funded phones (``possim.bench.core_load.prepare_world``,
  the core section's world on a smaller scale) and serves it with a real ``possim core serve`` subprocess on a
  free loopback port (``possim.bench.served``), the core section's command and risk settings;
- gets one source address blocked: from a loopback alias of its own (``127.200.0.1``, never an address the
  phones, the register or the flood use; the core accounts a request to its TCP peer, as the flood relies
  on) it sends ``POST /v1/devices`` sign-ins, each with a new unknown e-mail and a wrong password and code.
  The first ``free_failures`` are real password checks; then the address is in backoff (429), and once it
  has named ``list_attack_accounts`` different accounts the throttle blocks it (a 429 whose
  ``Retry-After`` is beyond any backoff). Bounded: at most ``_APPROACH_MAX`` sign-ins and
  ``_APPROACH_SECONDS``; no block in time is an error;
- ``refused_429``: from that address, on one keep-alive connection, one request after another, a few
  unmeasured sign-ins and then ``count`` measured ones, each expected to be answered 429
  ``rate_limited``; anything else is counted in ``errors`` and ``by_outcome``, never dropped;
- ``payment``: then, on the same server and in the same way (one keep-alive connection from 127.0.0.1,
  one request after another, the register's signed client from ``possim.bench.load_client``), a few
  unmeasured payments and then ``count`` approved ``POST /v1/payments`` of 100 yen, each with a new order
  id and a new code (QR form); anything not approved is counted in ``errors``.

Each phase reports ``cpu_ms_per_request``: the server process's CPU time (user + system, from ``/proc``,
``possim.bench.served.cpu_seconds``) over the phase divided by the requests answered, and the wall
latency of a request (``p50_ms``, ``p99_ms``, nearest rank). ``ratio_429_to_payment`` is the first CPU
figure over the second (``None`` where ``/proc`` is missing). The two phases run one after the other,
never together, so each CPU figure is the server's work for that kind of request alone. Every loop is
bounded in count and time; only 127.0.0.0/8 is ever addressed.
"""

from __future__ import annotations

import functools
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from payment_core import db
from payment_core.config import Throttling
from payment_core.risk import BURST_FILE
from possim.bench import core_load
from possim.bench.load_client import APPROVED, _send
from possim.bench.served import cpu_seconds, served
from possim.world import RegisteredTerminal
from protocol import ErrorCode
from protocol.http_auth import SigningAuth

ADDRESS = "127.200.0.1"  # the throttled source: outside 127.0.0.0/16 (phones) and 127.64.0.0/10 (the flood)
REFUSED = "429"
_SIGNIN_PATH = "/v1/devices"
_TIMEOUT_SECONDS = 30.0
_APPROACH_MAX = 100  # sign-ins sent to get the address blocked (20 accounts block it)
_APPROACH_SECONDS = 120.0
_WARMUP = 20  # unmeasured requests before each measured phase
_AMOUNT_YEN = core_load.AMOUNT_YEN


@dataclass(frozen=True)
class Size:
    refused: int  # measured refused sign-ins
    payments: int  # measured approved payments
    phones: int
    seconds: float  # each measured phase's time bound


FULL = Size(refused=2_000, payments=1_000, phones=12, seconds=120.0)
QUICK = Size(refused=100, payments=40, phones=2, seconds=60.0)


@dataclass
class Phase:
    """What one measured phase got: each request's latency (seconds) and outcome, its span and the server's CPU."""

    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    server_cpu: float | None = None  # seconds
    cut_short: int = 0  # requests not sent because the time bound had passed


def run_throttled_cost(
    store: str, quick: bool, folder: Path | None = None, postgres_url: str | None = None
) -> dict[str, Any]:
    """Measure the server's CPU and the latency of a throttled sign-in (429) and of an approved payment.

    ``store`` is ``"sqlite"`` or ``"postgresql"`` (a new schema on ``postgres_url``, by default
    ``possim.bench.core_load.POSTGRES_URL``, dropped afterwards); ``quick`` runs far fewer requests; the
    server's files go in ``folder`` (a temporary directory by default). Returns ``{"store", "refused_429":
    {...}, "payment": {...}, "ratio_429_to_payment", "approach": {...}}``; each phase row has ``count``
    (requests measured), ``expected`` (429s or approvals among them), ``errors`` (the rest),
    ``by_outcome``, ``cpu_ms_per_request``, ``p50_ms``, ``p99_ms``, ``seconds`` and ``cut_short``. See the
    module's docstring for how.
    """
    if store not in ("sqlite", "postgresql"):
        raise ValueError(f"store must be sqlite or postgresql, not {store!r}")
    size = QUICK if quick else FULL
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="possim-bench-429-") as temporary:
            return _run(store, size, Path(temporary), postgres_url or core_load.POSTGRES_URL)
    folder.mkdir(parents=True, exist_ok=True)
    return _run(store, size, folder, postgres_url or core_load.POSTGRES_URL)


def _run(store: str, size: Size, folder: Path, postgres_url: str) -> dict[str, Any]:
    schema = f"bench_{secrets.token_hex(6)}" if store == "postgresql" else None
    url = postgres_url if schema else str(folder / "core.db")
    scale = core_load.Scale(
        stores=1,
        registers_per_store=1,
        phones=size.phones,
        payments=size.payments,
        warmup=_WARMUP,
        seconds=size.seconds,
        flood_payments=0,
        flood_signins=0,
    )
    try:
        terminals, phones, key_file, settings = core_load.prepare_world(url, scale, folder, schema)
        command = [sys.executable, "-m", "possim", "core", "serve", "--db", url, "--key-file", str(key_file)]
        command += ["--host", "127.0.0.1", *(["--db-schema", schema] if schema else [])]
        command += ["--risk-config", str(BURST_FILE)]
        with served(command, folder / "core.log") as (server, pid):
            probe = functools.partial(cpu_seconds, pid)
            approach = _get_blocked(server)
            refused = _refusals(server, size, probe)
            pools, oldest = core_load.code_pools(phones, core_load.codes_per_phone(scale))
            stop_by = core_load.bounded_load(scale, oldest).stop_by
            paid = _payments(server, terminals[0], _jobs(pools, _WARMUP + size.payments), size, stop_by, probe)
    finally:
        if schema:
            db.drop_schema(postgres_url, schema)
    refused_row, payment_row = _row(refused, REFUSED), _row(paid, APPROVED)
    ratio = None
    if refused_row["cpu_ms_per_request"] and payment_row["cpu_ms_per_request"]:
        ratio = round(refused_row["cpu_ms_per_request"] / payment_row["cpu_ms_per_request"], 3)
    return {
        "store": store,
        "refused_429": refused_row,
        "payment": payment_row,
        "ratio_429_to_payment": ratio,
        "approach": approach,
        "address": ADDRESS,
        "amount_yen": _AMOUNT_YEN,
        "warmup": _WARMUP,
        "risk_rules": "as shipped, velocity limits out of reach (payment_core/risk/burst.toml)",
    } | settings


# -- the throttled address -------------------------------------------------------------------------


def _signin_client(url: str) -> httpx.Client:
    """One keep-alive connection from the throttled address (``verify=False``: plain HTTP on loopback)."""
    transport = httpx.HTTPTransport(local_address=ADDRESS, verify=False)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.Client(base_url=url, transport=transport, timeout=_TIMEOUT_SECONDS, limits=limits)


def _sign_in(http: httpx.Client) -> tuple[float, str, int]:
    """One failing sign-in (a new unknown e-mail, a wrong password and code): its latency, its outcome
    (``429`` when refused with ``rate_limited``, else ``http_<status>:<code>`` or ``error:<exception>``)
    and the ``Retry-After`` it carried (0 without one)."""
    body = {
        "email": f"throttled-{secrets.token_hex(6)}@example.jp",
        "password": secrets.token_urlsafe(12),
        "otp": f"{secrets.randbelow(1_000_000):06d}",
        "device_name": "throttled",
    }
    started = time.perf_counter()
    try:
        response = http.post(_SIGNIN_PATH, json=body)
    except httpx.HTTPError as error:
        return time.perf_counter() - started, f"error:{type(error).__name__}", 0
    latency = time.perf_counter() - started
    try:
        error_body = response.json().get("error") or {}
        code = error_body.get("code") if isinstance(error_body, dict) else None
    except (ValueError, AttributeError):
        code = None
    retry_after = response.headers.get("Retry-After", "0")
    wait = int(retry_after) if retry_after.isdigit() else 0
    if response.status_code == 429 and code == ErrorCode.RATE_LIMITED.value:
        return latency, REFUSED, wait
    return latency, f"http_{response.status_code}:{code}", wait


def _get_blocked(url: str) -> dict[str, Any]:
    """Fail sign-ins from :data:`ADDRESS` until the throttle blocks it (a 429 waiting longer than any
    backoff); what they were answered. Raises if it is not blocked within the bounds."""
    backoff_max = Throttling().backoff_max_seconds  # the served core keeps the default throttle settings
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + _APPROACH_SECONDS
    with _signin_client(url) as http:
        for attempt in range(1, _APPROACH_MAX + 1):
            if time.monotonic() > deadline:
                break
            _, outcome, wait = _sign_in(http)
            outcomes[outcome] += 1
            if outcome == REFUSED and wait > backoff_max:
                return {"signins": attempt, "by_outcome": dict(sorted(outcomes.items())), "retry_after_s": wait}
    raise RuntimeError(f"{ADDRESS} was not blocked after {sum(outcomes.values())} sign-ins: {dict(outcomes)}")


def _refusals(url: str, size: Size, probe: Callable[[], float | None]) -> Phase:
    """The blocked address's sign-ins, one after another: ``_WARMUP`` unmeasured, then ``size.refused``."""
    phase = Phase()
    with _signin_client(url) as http:
        for _ in range(_WARMUP):
            _sign_in(http)
        cpu_before, started = probe(), time.monotonic()
        for index in range(size.refused):
            if time.monotonic() - started > size.seconds:
                phase.cut_short = size.refused - index
                break
            latency, outcome, _ = _sign_in(http)
            phase.latencies.append(latency)
            phase.outcomes[outcome] += 1
        phase.seconds, cpu_after = time.monotonic() - started, probe()
    phase.server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return phase


# -- the payments ----------------------------------------------------------------------------------


def _jobs(pools: list[list[str]], count: int) -> list[tuple[str, str]]:
    """``count`` (order id, code) pairs, taking the phones in turn, each phone's codes oldest first."""
    drawn = [0] * len(pools)
    jobs = []
    for number in range(count):
        phone = number % len(pools)
        jobs.append((f"bench-429-{number}-{secrets.token_hex(4)}", pools[phone][drawn[phone]]))
        drawn[phone] += 1
    return jobs


def _payments(
    url: str,
    terminal: RegisteredTerminal,
    jobs: list[tuple[str, str]],
    size: Size,
    stop_by: float,
    probe: Callable[[], float | None],
) -> Phase:
    """The register's payments, one after another on one keep-alive connection, signed as the core section's
    clients sign: ``_WARMUP`` unmeasured, then the rest, stopping at ``stop_by`` (before a code expires)."""
    phase = Phase()
    auth = SigningAuth(terminal.id, terminal.secret)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=url, auth=auth, timeout=_TIMEOUT_SECONDS, limits=limits) as http:
        for order_id, code in jobs[:_WARMUP]:
            _send(http, order_id, code, _AMOUNT_YEN)
        measured = jobs[_WARMUP:]
        cpu_before, started = probe(), time.monotonic()
        deadline = min(started + size.seconds, stop_by)
        for index, (order_id, code) in enumerate(measured):
            if time.monotonic() > deadline:
                phase.cut_short = len(measured) - index
                break
            latency, outcome = _send(http, order_id, code, _AMOUNT_YEN)
            phase.latencies.append(latency)
            phase.outcomes[outcome] += 1
        phase.seconds, cpu_after = time.monotonic() - started, probe()
    phase.server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return phase


# -- the figures -----------------------------------------------------------------------------------


def _row(phase: Phase, expected: str) -> dict[str, Any]:
    count = len(phase.latencies)
    ordered = sorted(phase.latencies)
    cpu_ms = None
    if phase.server_cpu is not None and count:
        cpu_ms = round(phase.server_cpu * 1000 / count, 3)
    return {
        "count": count,
        "expected": phase.outcomes[expected],
        "errors": count - phase.outcomes[expected],
        "by_outcome": dict(sorted(phase.outcomes.items())),
        "cpu_ms_per_request": cpu_ms,
        "p50_ms": round(core_load.percentile(ordered, 0.50) * 1000, 2) if ordered else None,
        "p99_ms": round(core_load.percentile(ordered, 0.99) * 1000, 2) if ordered else None,
        "seconds": round(phase.seconds, 3),
        "cut_short": phase.cut_short,
    }


def run(quick: bool = False) -> dict[str, Any]:
    """The ``throttled`` section of ``possim bench``: a refused sign-in beside a payment on each store."""
    return {store: run_throttled_cost(store, quick) for store in ("sqlite", "postgresql")}


def print_table(console: Console, results: dict[str, Any]) -> None:
    table = Table(title="a sign-in refused by the throttle (429) beside an approved payment, server CPU")
    for column in ("store", "429 CPU ms", "429 p99 ms", "payment CPU ms", "payment p99 ms", "ratio"):
        table.add_column(column, justify="right")
    for store, row in results.items():
        refused, paid = row["refused_429"], row["payment"]
        table.add_row(
            store,
            str(refused["cpu_ms_per_request"]),
            str(refused["p99_ms"]),
            str(paid["cpu_ms_per_request"]),
            str(paid["p99_ms"]),
            str(row["ratio_429_to_payment"]),
        )
    console.print(table)
