"""One chaos run: the shop, the served core, the fault proxy, the registers selling, the crashes, then the
checks; its figures, and the command line that replays it.

Everything random is drawn from the seed (``random.Random`` per purpose: the sales, each request's fault, the
crash moments, the worker killed), so a failure replays with ``possim chaos`` and the same flags. What
cannot replay exactly is the machine's own timing (which request of another register a reordered one
waits for, whose copy of a duplicate the core decides first).
"""

from __future__ import annotations

import shlex
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from possim.chaos import registers as tills
from possim.chaos.checks import CheckReport, check
from possim.chaos.crashes import CrashDriver, plan_crashes
from possim.chaos.faults import FaultPlan, FaultRates
from possim.chaos.proxy import FaultProxy
from possim.chaos.registers import ClientSettings, Register, Sale, Tally, needs, plan_sales
from possim.chaos.served import ServedCore
from possim.chaos.shop import STORES, Phone, Shop, Store, build_shop, drop_store, open_store
from protocol import PaymentStatus

TIMEOUT_MARGIN_SECONDS = 0.5  # a timeout fault holds its request this much longer than the registers wait
SETTLE_SECONDS = 120.0  # after selling, how long the registers may go on reversing unknown outcomes
STOP_SECONDS = 120.0  # a crash driver's restart under way, at the end


@dataclass(frozen=True)
class ChaosSettings:
    """One run's knobs; :meth:`command_line` spells them as ``possim chaos`` flags."""

    seed: int
    payments: int
    registers: int = 3
    rates: FaultRates = field(default_factory=FaultRates)
    crashes: int = 0
    store: str = "sqlite"
    core_workers: int = 1
    phones_per_register: int = 0  # 0: two for a run of up to 300 payments, else three (ten codes a second each)
    max_seconds: float = 1800.0  # selling stops then; the sales not made are counted as cut short
    client: ClientSettings = field(default_factory=ClientSettings)

    def __post_init__(self) -> None:
        if self.payments < 1 or self.registers < 1 or self.phones_per_register < 0 or self.core_workers < 1:
            raise ValueError("payments, registers and core workers are 1 or more")
        if self.store not in STORES:
            raise ValueError(f"store {self.store!r}: one of {', '.join(STORES)}")
        plan_crashes(self.seed, self.payments, self.crashes)  # ValueError when they do not fit

    @property
    def phones(self) -> int:
        """Phones in each register's queue."""
        return self.phones_per_register or (2 if self.payments <= 300 else 3)

    def command_line(self) -> str:
        """The ``possim chaos`` command that replays this run."""
        words = ["possim", "chaos", "--seed", str(self.seed), "--payments", str(self.payments)]
        words += ["--registers", str(self.registers), *self.rates.flags(), "--crashes", str(self.crashes)]
        words += ["--store", self.store, "--core-workers", str(self.core_workers)]
        return shlex.join(words)


@dataclass
class ChaosResult:
    settings: ChaosSettings
    figures: dict[str, Any]
    checks: CheckReport
    store: Store
    sales: list[Sale]
    phones: list[Phone]
    failures: list[str]  # what went wrong besides the checks (a register's exception, a crash not survived)

    @property
    def ok(self) -> bool:
        return self.checks.ok and not self.failures


Progress = Callable[[int, int], None]  # (sales ended, sales planned), called about twice a second


def run_chaos(
    settings: ChaosSettings, folder: Path | None = None, *, keep_store: bool = False, progress: Progress | None = None
) -> ChaosResult:
    """One run in ``folder`` (a temporary one when None). The store is dropped afterwards unless ``keep_store``
    (a PostgreSQL schema kept is the caller's to drop: ``possim.chaos.shop.drop_store``)."""
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="possim-chaos-") as scratch:
            return run_chaos(settings, Path(scratch), keep_store=False, progress=progress)
    store = open_store(settings.store, folder)
    try:
        return _run(settings, folder, store, progress)
    finally:
        if not keep_store:
            drop_store(store)


def recheck(result: ChaosResult) -> ChaosResult:
    """The checks again, on a run's kept store (``keep_store``), as it is now."""
    report = check(result.store, result.sales, result.phones)
    ok = report.ok and not result.failures
    figures = result.figures | report.figures() | {"ok": ok, "problems": report.problems + result.failures}
    return replace(result, figures=figures, checks=report)


def _run(settings: ChaosSettings, folder: Path, store: Store, progress: Progress | None) -> ChaosResult:
    setup_started = time.monotonic()
    planned = plan_sales(settings.seed, settings.payments, settings.registers, settings.phones)
    shop = build_shop(store, folder, needs(planned, settings.registers, settings.phones))
    sales = [
        Sale(sale, shop.registers[sale.register].id, shop.phones[sale.register][sale.phone].account_id)
        for sale in planned
    ]
    core = ServedCore(store, shop.key_file, folder, settings.core_workers)
    failures: list[str] = []
    try:
        port = core.start()
        hold = settings.client.timeout + TIMEOUT_MARGIN_SECONDS
        with FaultProxy(
            FaultPlan(settings.seed, settings.rates), settings.registers, port, timeout_hold_seconds=hold
        ) as proxy:
            urls = proxy.start()
            setup_s = time.monotonic() - setup_started
            started = time.monotonic()
            tally = Tally()
            driver = CrashDriver(
                settings.seed,
                plan_crashes(settings.seed, settings.payments, settings.crashes),
                core,
                proxy,
                proxy.log,
                tally,
            )
            selling = _registers(settings, shop, sales, urls, tally, started)
            threads = tills.start(selling)
            driver.start()
            settle_until = started + settings.max_seconds + SETTLE_SECONDS + 10.0

            def report_progress() -> None:
                if progress is not None:
                    progress(tally.ended, settings.payments)

            if not tills.join(threads, settle_until, report_progress):
                failures.append("a register was still busy when the run's bound passed")
            driver.stop(STOP_SECONDS)
            seconds = time.monotonic() - started
            failures += [
                f"register {r.terminal.id}: {type(r.failure).__name__}: {r.failure}" for r in selling if r.failure
            ]
            if driver.failure is not None:
                failures.append(f"crash: {type(driver.failure).__name__}: {driver.failure}")
            if driver.busy:
                failures.append("the crash driver was still restarting the core at the end")
        if not core.alive():
            failures.append(f"the core is not running at the end:\n{core.output()[-2000:]}")
    finally:
        core.stop()
    phones = [phone for queue in shop.phones for phone in queue]
    report = check(store, sales, phones)
    figures = _figures(settings, sales, proxy, driver, report, failures, seconds, setup_s)
    return ChaosResult(settings, figures, report, store, sales, phones, failures)


def _registers(
    settings: ChaosSettings, shop: Shop, sales: list[Sale], urls: list[str], tally: Tally, started: float
) -> list[Register]:
    sell_until = started + settings.max_seconds
    return [
        Register(
            terminal,
            urls[index],
            shop.phones[index],
            [sale for sale in sales if sale.planned.register == index],
            tally,
            settings.client,
            sell_until,
            sell_until + SETTLE_SECONDS,
        )
        for index, terminal in enumerate(shop.registers)
    ]


def _figures(
    settings: ChaosSettings,
    sales: list[Sale],
    proxy: FaultProxy,
    driver: CrashDriver,
    report: CheckReport,
    failures: list[str],
    seconds: float,
    setup_s: float,
) -> dict[str, Any]:
    attempted = [sale for sale in sales if sale.attempted]
    statuses = [sale.status for sale in attempted]
    faults = proxy.log.by_kind()
    ok = report.ok and not failures
    return {
        "seed": settings.seed,
        "store": settings.store,
        "core_workers": settings.core_workers,
        "registers": settings.registers,
        "payments": len(attempted),
        "cut_short": len(sales) - len(attempted),
        "approved": statuses.count(PaymentStatus.SUCCEEDED),
        "declined": statuses.count(PaymentStatus.DECLINED),
        "reversed": statuses.count(PaymentStatus.REVERSED),
        "refused": statuses.count(tills.REFUSED),
        "reversed_after_unknown": sum(1 for sale in attempted if sale.reversed_later),
        "requests": proxy.log.requests,
        "faults": faults,
        "faults_total": sum(faults.values()),
        "upstream_failures": proxy.log.upstream_failures,
        "late_copies_answered": proxy.log.late_copies_answered,
        "crashes": len(driver.crashes),
        "crash_kind": "worker" if settings.core_workers > 1 else "core",
        "crash_details": _crash_details(driver, proxy.log.upstream_failures),
        **report.figures(),
        "ok": ok,
        "seconds": round(seconds, 1),
        "setup_s": round(setup_s, 1),
        "problems": report.problems + failures,
        "replay": settings.command_line(),
    }


def _crash_details(driver: CrashDriver, upstream_failures: int) -> list[dict[str, Any]]:
    """Each crash's figures, with ``requests_cut``: the requests the core did not answer from that kill until the
    next one (or the end), each of which the register retried, queried or reversed."""
    details = [crash.figures() for crash in driver.crashes]
    marks = [crash.upstream_failures_before for crash in driver.crashes] + [upstream_failures]
    for index, detail in enumerate(details):
        detail["requests_cut"] = marks[index + 1] - marks[index]
    return details
