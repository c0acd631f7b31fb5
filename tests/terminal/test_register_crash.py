"""A register killed mid-payment (SIGKILL) reconciles its pending order with the core at its next start.

The register is ``python -m terminal.headless`` in a subprocess, selling through the real PaymentClient to a
real core on loopback (uvicorn, SQLite). Between them a loopback proxy holds the payment: after the core
charged (the answer never comes back) or before the core sees it (the request never arrives). The test kills
the register while it waits, starts it again on the same file, and checks what it did against the core's
database: a payment present is recorded as a sale; a payment absent is reversed, and a late copy of the
request then charges nothing.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from sqlalchemy import select

from payment_core.config import Limits
from payment_core.models import Payment
from possim import world
from protocol import PaymentStatus
from terminal.catalog import Catalog, Product
from terminal.register_store import RegisterStore
from tests.support import balance, customer
from tests.terminal.holding_proxy import WAIT_SECONDS, HoldingProxy, json_of, send_raw, status_of

STORE = "possim 品川店"
CLERK_ID, CLERK_PIN = "2001", "4826"
FUNDS = 5_000
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[world.World]:
    """One core with a funded customer for the module; each test provisions a register of its own."""
    folder = tmp_path_factory.mktemp("crash-core")
    with world.open_world(
        folder,
        customer("kaito@example.jp"),
        store=STORE,
        device_name="kaito's phone",
        funds=FUNDS,
        limits=Limits(new_device_hours=0),
        actor="test",
    ) as opened:
        yield opened


@dataclass(frozen=True)
class Register:
    """A register provisioned at the core, with its file (a clerk added) and its secret on disk."""

    terminal_id: str
    secret_file: Path
    db: Path

    def command(self, core_url: str, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "terminal.headless",
            *("--core", core_url, "--terminal-id", self.terminal_id, "--secret-file", str(self.secret_file)),
            *("--register-db", str(self.db), *extra),
        ]

    def orders(self) -> list[sqlite3.Row]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute("SELECT * FROM wallet_orders ORDER BY rowid").fetchall()


def new_register(served: world.World, folder: Path, name: str) -> Register:
    terminal = world.add_terminal(served.core, STORE, name=name, actor="test")
    secret_file = folder / "terminal.secret"
    secret_file.write_text(terminal.secret.hex())
    db = folder / "register.db"
    with RegisterStore(db, terminal_id=terminal.id) as store:
        store.clerks.add_clerk(CLERK_ID, "Ito", CLERK_PIN)
    return Register(terminal.id, secret_file, db)


def cheap_product() -> Product:
    return next(p for p in Catalog.default() if 100 <= p.price <= 1_000 and not p.age_restricted)


def core_payment(served: world.World, terminal_id: str, order_id: str) -> Payment | None:
    with served.core.read() as session:
        found = session.scalars(
            select(Payment).where(Payment.terminal_id == terminal_id, Payment.order_id == order_id)
        ).one_or_none()
        if found is not None:
            session.expunge(found)
        return found


def environment() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "POSSIM_CLERK_PIN"}
    env["POSSIM_CLERK_PIN"] = CLERK_PIN
    env["PYTHONPATH"] = str(ROOT)
    return env


def kill_mid_payment(
    served: world.World, register: Register, product: Product, hold: Literal["request", "answer"]
) -> HoldingProxy:
    """Start the register selling ``product`` through a proxy that holds the payment, wait until it is held,
    and SIGKILL the register. Returns the proxy (its held request) once the register is dead."""
    with HoldingProxy(served.url, hold) as proxy:
        process = subprocess.Popen(
            register.command(proxy.url, "--clerk", CLERK_ID, "--sell", product.jan),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment(),
            cwd=ROOT,
        )
        try:
            assert process.stdin is not None
            process.stdin.write(f"{world.next_code(served.minter).numeric}\n".encode())
            process.stdin.close()
            for _ in range(int(WAIT_SECONDS / 0.05)):
                if proxy.held.wait(0.05) or process.poll() is not None:
                    break
            if not proxy.held.is_set():
                process.kill()
                process.wait(timeout=WAIT_SECONDS)
                printed = b"".join(stream.read() for stream in (process.stdout, process.stderr) if stream is not None)
                pytest.fail(f"the payment never reached the proxy: {printed.decode(errors='replace')}")
            # The order was written down before it was sent: it is there, pending, while the register waits.
            (order,) = register.orders()
            assert order["state"] == "pending"
            assert order["amount"] == product.price
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=WAIT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=WAIT_SECONDS)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        assert process.returncode == -signal.SIGKILL
        return proxy


def restart(served: world.World, register: Register, sell: Product | None = None) -> str:
    """Start the register again on the same file (straight to the core) and return what it printed; with
    ``sell``, it then sells that product with a fresh code from the customer's phone."""
    extra = ("--clerk", CLERK_ID, "--sell", sell.jan) if sell is not None else ()
    done = subprocess.run(
        register.command(served.url, *extra),
        input=f"{world.next_code(served.minter).numeric}\n" if sell is not None else "",
        capture_output=True,
        text=True,
        env=environment(),
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_killed_after_the_core_charged_the_restart_records_the_sale(served: world.World, tmp_path: Path) -> None:
    register = new_register(served, tmp_path, "register-charged")
    product = cheap_product()
    before = balance(served.core, served.customer.wallet)
    proxy = kill_mid_payment(served, register, product, "answer")
    assert json_of(proxy.core_answer)["status"] == PaymentStatus.SUCCEEDED  # the answer the register never got
    receipt_no = f"{register.terminal_id}-000001"
    order_id = f"{receipt_no}-1"
    charged = core_payment(served, register.terminal_id, order_id)
    assert charged is not None and charged.status == PaymentStatus.SUCCEEDED  # the core has it; the register does not

    printed = restart(served, register)

    assert f"pending: 1 pending payment found: 1 recorded as paid (receipt {receipt_no})" in printed
    with RegisterStore(register.db, terminal_id=register.terminal_id) as store:
        sale = store.journal.get_sale(receipt_no)
        assert sale is not None
        assert (sale.order_id, sale.payment_id, sale.total, sale.tender) == (
            order_id,
            charged.id,
            product.price,
            "wallet",
        )
        assert store.wallet_orders.pending() == []
        order = store.wallet_orders.get(order_id)
        assert order is not None and order.state == "paid"
    assert balance(served.core, served.customer.wallet) == before - product.price  # charged once, kept
    assert "000001" in (tmp_path / "receipts.escpos").read_bytes().decode("ascii", "replace")  # receipt printed
    again = restart(served, register, sell=product)  # the next start finds nothing left, and sells on
    assert "pending: none" in again and f"recorded: receipt {register.terminal_id}-000002" in again
    assert balance(served.core, served.customer.wallet) == before - 2 * product.price


def test_killed_before_the_core_saw_it_the_restart_reverses_and_a_late_copy_cannot_charge(
    served: world.World, tmp_path: Path
) -> None:
    register = new_register(served, tmp_path, "register-lost")
    product = cheap_product()
    before = balance(served.core, served.customer.wallet)
    proxy = kill_mid_payment(served, register, product, "request")
    order_id = f"{register.terminal_id}-000001-1"
    assert core_payment(served, register.terminal_id, order_id) is None  # the core never saw it

    printed = restart(served, register)

    assert "pending: 1 pending payment found: 1 reversed" in printed
    closed = core_payment(served, register.terminal_id, order_id)
    assert closed is not None and (closed.status, closed.amount) == (PaymentStatus.REVERSED, 0)
    with RegisterStore(register.db, terminal_id=register.terminal_id) as store:
        assert store.journal.recent_sales() == []
        order = store.wallet_orders.get(order_id)
        assert order is not None and order.state == "reversed"

    late = send_raw(served.url, proxy.held_request)  # the lost request turns up after all

    assert status_of(late) == 200 and json_of(late)["status"] == PaymentStatus.REVERSED  # the closed order, no charge
    after = core_payment(served, register.terminal_id, order_id)
    assert after is not None and after.status == PaymentStatus.REVERSED
    assert balance(served.core, served.customer.wallet) == before
