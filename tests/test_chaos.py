"""``possim chaos``: seeded faults and crashes between real registers (``terminal.client.PaymentClient``) and a
real ``possim core serve`` subprocess, on SQLite and on PostgreSQL, then the books read back.

Each store runs once (a module fixture): every fault kind at once and two kills of the core under load; the
figures must all be 0, every kind of fault must really have been injected, and the checks must catch what a
test plants in the books afterwards. On PostgreSQL a core of two workers loses one to SIGKILL under load and
the supervisor replaces it while the registers' retries land on the other. The seed alone fixes the fault
schedule. The client's answer to a request the network delivered twice is pinned against the real core.
"""

from __future__ import annotations

import importlib
import io
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_core.core import Core
from payment_core.db import make_engine
from payment_core.ledger import till_book_name, wallet_book_name
from payment_core.models import Journal, LedgerAccount, Payment, Posting
from payment_core.server import ServerThread
from possim.bench.core_load import write_key
from possim.chaos.checks import FIGURES
from possim.chaos.crashes import plan_crashes
from possim.chaos.faults import KINDS, FaultKind, FaultPlan, FaultRates
from possim.chaos.registers import ENDED, plan_sales
from possim.chaos.report import as_json
from possim.chaos.run import ChaosResult, ChaosSettings, recheck, run_chaos
from possim.chaos.served import ServedCore
from possim.chaos.shop import Store, drop_store
from possim.cli import main
from possim.commands import bench
from possim.commands.chaos import report
from possim.core_workers import MAX_RESTARTS, RESTART_WINDOW_SECONDS, RestartBudget
from possim.world import new_core
from protocol import ManualClock, PaymentStatus
from terminal.client import PaymentClient
from tests.support import SignedCaller, assert_books_balance
from wallet_app.minter import CodeMinter

pytestmark = pytest.mark.slow

SEED = 6  # its schedule puts every kind of fault in each register's first REQUESTS_SURE requests
EVERY_FAULT = FaultRates(drop_request=0.05, drop_response=0.05, delay=0.05, duplicate=0.05, reorder=0.05, timeout=0.02)
REGISTERS = 3
PAYMENTS = 60  # 20 a register: each sends at least that many requests
REQUESTS_SURE = PAYMENTS // REGISTERS
STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=STORES)
def faulted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosResult]:
    """One run on the store: every fault kind, two crashes; its store kept for the planting test."""
    settings = ChaosSettings(
        seed=SEED, payments=PAYMENTS, registers=REGISTERS, rates=EVERY_FAULT, crashes=2, store=request.param
    )
    result = run_chaos(settings, tmp_path_factory.mktemp(f"chaos-{request.param}"), keep_store=True)
    try:
        yield result
    finally:
        drop_store(result.store)


def test_every_fault_and_two_crashes_lose_and_double_nothing(faulted: ChaosResult) -> None:
    figures = faulted.figures
    assert faulted.ok, figures["problems"]
    assert {name: figures[name] for name in FIGURES} == dict.fromkeys(FIGURES, 0)
    assert figures["audit_ok"] is True
    assert (figures["payments"], figures["cut_short"]) == (PAYMENTS, 0)
    assert all(sale.status in ENDED for sale in faulted.sales), [s.status for s in faulted.sales]
    assert figures["approved"] > PAYMENTS // 2
    assert all(figures["faults"][kind] >= 1 for kind in KINDS), figures["faults"]
    assert figures["late_copies_answered"] >= 1  # duplicates' and timeouts' copies reached the core
    assert figures["crashes"] == 2
    for crash in figures["crash_details"]:
        assert crash["kind"] == "core" and crash["back_pid"] not in (None, crash["victim_pid"]), crash
    assert sum(crash["requests_cut"] for crash in figures["crash_details"]) >= 1  # under load, not idle


def test_the_report_shows_every_figure_and_the_bench_section_prints_it(
    faulted: ChaosResult, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report(faulted, as_json=False) == 0
    table = capsys.readouterr().out
    for label in ("fault: drop request", "fault: timeout", "crashes survived (core killed)", "doubled", "audit"):
        assert label in table, table
    assert f"{faulted.figures['faults']['duplicate']} " in table.split("fault: duplicate", 1)[1].split("\n", 1)[0]
    assert report(faulted, as_json=True) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == as_json(faulted.figures) and list(printed)[:2] == ["seed", "store"]
    written = io.StringIO()
    importlib.import_module(f"possim.bench.{bench.MODULES['chaos']}").print_table(Console(file=written), printed)
    assert "crash at sale" in written.getvalue()


def test_the_checks_catch_what_is_planted_in_the_books(
    faulted: ChaosResult, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second charge for an approved order, in a journal of its own that balances (the audit alone passes),
    and a payment for an order no register sold: each is caught, and the command fails with its replay line."""
    approved = next(sale for sale in faulted.sales if sale.status == PaymentStatus.SUCCEEDED)
    engine = make_engine(faulted.store.url, faulted.store.schema, create_schema=False)
    try:
        with Session(engine) as session, session.begin():
            payment = session.scalars(
                select(Payment).where(
                    Payment.terminal_id == approved.terminal_id, Payment.order_id == approved.planned.order_id
                )
            ).one()
            payment_id = payment.id
            _charge(session, approved.account_id, approved.terminal_id, "adjustment", payment.id, payment.amount)
            stray = Payment(
                id=f"pay_{secrets.token_hex(12)}",
                terminal_id=approved.terminal_id,
                merchant_id=payment.merchant_id,
                order_id="never-sold",
                request_hash="0" * 64,
                amount=70,
                status=PaymentStatus.SUCCEEDED,
                account_id=approved.account_id,
                amount_refunded=0,
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
            session.add(stray)
            session.flush()
            _charge(session, approved.account_id, approved.terminal_id, "payment", stray.id, 70)
    finally:
        engine.dispose()
    checked = recheck(faulted)
    assert checked.checks.audit_ok  # the books still balance: only the comparison with the registers sees it
    assert checked.checks.doubled == 1, checked.checks.problems
    assert checked.checks.unknown_to_register == 1, checked.checks.problems
    assert checked.checks.wallets_off == 1, checked.checks.problems
    assert (checked.checks.lost, checked.checks.not_final, checked.checks.half_written) == (0, 0, 0)
    assert report(checked, as_json=True) == 1
    err = capsys.readouterr().err
    assert f"doubled: payment {payment_id} (order {approved.planned.order_id}) is charged by 2 journals" in err
    assert "unknown_to_register: order never-sold" in err
    assert f"replay: possim chaos --seed {SEED} --payments {PAYMENTS} --registers {REGISTERS}" in err


def _charge(session: Session, account_id: int, terminal_id: str, kind: str, reference: str, amount: int) -> None:
    """A balanced journal from the wallet to the register's book, the balances moved with it."""
    books = {
        book.name: book
        for book in session.scalars(
            select(LedgerAccount).where(
                LedgerAccount.name.in_([wallet_book_name(account_id), till_book_name(terminal_id)])
            )
        )
    }
    wallet, till = books[wallet_book_name(account_id)], books[till_book_name(terminal_id)]
    journal = Journal(kind=kind, reference=reference, created_at=datetime.now(UTC))
    session.add(journal)
    session.flush()
    session.add_all(
        [
            Posting(journal_id=journal.id, ledger_account_id=wallet.id, amount=-amount),
            Posting(journal_id=journal.id, ledger_account_id=till.id, amount=amount),
        ]
    )
    wallet.balance -= amount
    till.balance += amount


@pytest.mark.postgres
def test_a_killed_worker_is_replaced_and_the_registers_retry_on_the_other(tmp_path: Path) -> None:
    """Two workers on one PostgreSQL; the one holding the most connections is killed under load. The registers
    whose connection died with it retry, and their retries land on the live worker while the supervisor
    starts another."""
    settings = ChaosSettings(seed=7, payments=60, registers=REGISTERS, crashes=1, store="postgresql", core_workers=2)
    result = run_chaos(settings, tmp_path)
    figures = result.figures
    assert result.ok, figures["problems"]
    assert {name: figures[name] for name in FIGURES} == dict.fromkeys(FIGURES, 0)
    (crash,) = figures["crash_details"]
    assert crash["kind"] == "worker" and crash["victim_connections"] >= 1, crash
    assert crash["back_pid"] not in (None, crash["victim_pid"]), crash
    assert crash["requests_cut"] >= 1, crash  # a register's request died with the worker...
    assert all(sale.status in ENDED for sale in result.sales)  # ...and every sale still ended
    assert figures["approved"] > PAYMENTS // 2


def test_the_supervisor_replaces_workers_within_its_bound_then_stops(tmp_path: Path) -> None:
    """``MAX_RESTARTS`` killed workers are replaced; one more within the window and the command exits 1."""
    core = new_core(tmp_path / "core.db")
    try:
        key_file = write_key(tmp_path / "server.key", core.config.server_key)
    finally:
        core.close()
    served = ServedCore(Store("sqlite", str(tmp_path / "core.db")), key_file, tmp_path, workers=2)
    served.start()
    try:
        for _ in range(MAX_RESTARTS):
            victim = served.workers()[0]
            served.kill_worker(victim)
            assert served.wait_for_replacement(victim) is not None, served.output()
        served.kill_worker(served.workers()[0])
        assert served.wait_exit(timeout=60) == 1, served.output()
    finally:
        served.stop()
    assert f"{MAX_RESTARTS} restarts within {RESTART_WINDOW_SECONDS:.0f} s already: stopping the others" in (
        served.output()
    )
    assert served.output().count("replaced by worker pid") == MAX_RESTARTS


def test_the_restart_budget_forgets_restarts_older_than_its_window() -> None:
    budget = RestartBudget(limit=2, window_seconds=10.0)
    assert (budget.take(0.0), budget.take(1.0), budget.take(2.0)) == (True, True, False)
    assert budget.take(10.5) and budget.used == 2  # the one at 0.0 has left the window
    assert not budget.take(10.9)


def test_the_same_seed_gives_the_same_fault_schedule_sales_and_crashes() -> None:
    plan = FaultPlan(SEED, EVERY_FAULT)
    assert plan.schedule(REGISTERS, 200) == FaultPlan(SEED, EVERY_FAULT).schedule(REGISTERS, 200)
    assert plan.schedule(REGISTERS, 200) != FaultPlan(SEED + 1, EVERY_FAULT).schedule(REGISTERS, 200)
    assert plan_sales(SEED, 50, 3, 2) == plan_sales(SEED, 50, 3, 2) != plan_sales(SEED + 1, 50, 3, 2)
    assert plan_crashes(SEED, 1_000, 3) == plan_crashes(SEED, 1_000, 3) != plan_crashes(SEED + 1, 1_000, 3)
    early = {fault.kind for fault in plan.schedule(REGISTERS, REQUESTS_SURE)}
    assert early == set(FaultKind)  # why the runs above see every kind
    delays = [fault.delay_seconds for fault in plan.schedule(REGISTERS, 200) if fault.kind is FaultKind.DELAY]
    assert delays and all(0 < delay < ChaosSettings(1, 1).client.timeout for delay in delays)


def test_rates_and_counts_out_of_bounds_are_refused_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["chaos", "--seed", "1", "--payments", "10", "--drop-request", "1.5"])
    assert exited.value.code == 2 and "--drop-request: 1.5 is not between 0 and 1" in capsys.readouterr().err
    assert main(["chaos", "--seed", "1", "--payments", "10", "--delay", "0.6", "--timeout", "0.6"]) == 2
    assert capsys.readouterr().err == "possim chaos: the fault rates add up to more than 1\n"
    assert main(["chaos", "--seed", "1", "--payments", "10", "--crashes", "9"]) == 2
    assert "9 crashes need more than 10 payments" in capsys.readouterr().err


class _DeliveredTwice(httpx.BaseTransport):
    """Delivers the first payment request twice to the core, as a faulty network may, and hands back the answer
    to the second copy (the core's ``nonce_replayed``: the first copy took the nonce, and charged)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.first_answer: httpx.Response | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/v1/payments" or self.first_answer is not None:
            return self._inner.handle_request(request)
        self.first_answer = self._inner.handle_request(request)
        self.first_answer.read()
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def test_a_register_answered_nonce_replayed_asks_again_and_is_told_the_truth(
    core: Core, server: ServerThread, terminal: SignedCaller, minter: CodeMinter, funded: int, clock: ManualClock
) -> None:
    """The bug ``possim chaos`` found: the answer to a duplicated request's second copy (401 ``nonce_replayed``)
    was taken for "refused, nothing happened" while the first copy had charged the wallet. The client now
    asks again, with a fresh nonce under the same order id, and reports the payment as it is."""
    twice = _DeliveredTwice()
    waits: list[float] = []
    with PaymentClient(
        server.url, terminal.key_id, terminal.secret, clock=clock, transport=twice, sleep=waits.append
    ) as register:
        outcome = register.pay("twice-1", 1_200, minter.mint().qr)
    assert twice.first_answer is not None and twice.first_answer.status_code == 200  # the first copy charged
    assert (outcome.status, outcome.amount, outcome.balance_after) == ("succeeded", 1_200, funded - 1_200)
    assert (outcome.attempts, outcome.payment_id) == (2, twice.first_answer.json()["id"])
    assert len(waits) == 1  # one retry, after the usual backoff
    assert_books_balance(core)
