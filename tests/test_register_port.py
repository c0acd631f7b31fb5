"""``possim core serve --register-port P``: the registers' routes on a port and in a process of their own,
the public port's processes below them in CPU priority, and the registers' process replaced when it dies."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx

from payment_core.risk import BURST_FILE, load_settings
from possim.bench import core_load
from possim.bench.served import free_port, health_answers
from possim.core_workers import PUBLIC_NICENESS
from possim.world import new_core
from protocol import PaymentStatus
from tests.served_core import ServedCore, wait_until

WAIT_SECONDS = 60.0
_MOST_NICE = 19  # os.nice goes no further
SMALL = core_load.Scale(
    stores=1, registers_per_store=1, phones=1, payments=2, warmup=0, seconds=30.0, flood_payments=0, flood_signins=0
)


def test_registers_pay_on_their_own_port_which_answers_nothing_else(tmp_path: Path) -> None:
    core = new_core(tmp_path / "core.db", risk=load_settings(BURST_FILE))
    try:
        terminals, phones = core_load.setup_world(core, SMALL)
        (codes,), _oldest = core_load.code_pools(phones, 2)
        port = free_port()
        served = ServedCore(core, tmp_path, "--register-port", str(port))
        registers = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: health_answers(registers), WAIT_SECONDS, served.output)
            with terminals[0].client(registers) as register:
                paid = register.pay("own-port-1", 100, codes[0])
            assert paid.status == PaymentStatus.SUCCEEDED, paid
            # a sign-in is for the public port: the registers' port has no such route
            body = {"email": "someone@example.jp", "password": "whatever it is"}
            assert httpx.post(f"{registers}/v1/sessions", json=body, timeout=30).status_code == 404
            assert httpx.post(f"{served.url}/v1/sessions", json=body, timeout=30).status_code != 404
            # and the public port still takes a register's payment, as before
            with terminals[0].client(served.url) as register:
                assert register.pay("own-port-2", 100, codes[1]).status == PaymentStatus.SUCCEEDED

            public_pid, register_pid = _pid(served.url), _pid(registers)
            assert public_pid != register_pid
            assert _niceness(public_pid) == min(_MOST_NICE, _niceness(register_pid) + PUBLIC_NICENESS)

            os.kill(register_pid, signal.SIGKILL)  # the tills' process dies: a new one takes the port
            wait_until(
                lambda: health_answers(registers) and _pid(registers) != register_pid, WAIT_SECONDS, served.output
            )
            assert f"worker pid {register_pid} exited" in served.output()
        finally:
            stopped = served.stop()
        assert stopped == 0, served.output()
    finally:
        core.close()


def _pid(url: str) -> int:
    pid: int = httpx.get(f"{url}/healthz", timeout=10).json()["pid"]
    return pid


def _niceness(pid: int) -> int:
    """The process's nice value, from /proc (field 19 of its stat line)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[16])
