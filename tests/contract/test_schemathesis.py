"""``schemathesis run --checks all`` against a live core finds nothing: every answer is declared in
/openapi.json (statuses, error shape, ``Allow`` on 405, ``Retry-After`` on 429), every request the
schema allows is taken and every one it forbids is refused, and a declared security requirement is
enforced. Run the way docs/API.md tells anyone to, through the CLI with scripts/schemathesis_hooks.py
signing each request, with a bounded number of examples and a fixed seed (the suite must stay fast and
its outcome must not depend on the draw)."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from payment_core import admin_keys, terminals
from payment_core.api import create_app
from payment_core.config import CoreConfig, Throttling
from payment_core.core import Core
from payment_core.server import ServerThread
from protocol import system_clock
from tests.signins import CHEAP_HASHING
from tests.support import PASSWORD, sign_up_verified, totp_now
from wallet_app.client import WalletClient

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
MAX_EXAMPLES = 5
SEED = 20260101
_RUN_TIMEOUT_SECONDS = 240
_METHODS = ("get", "put", "post", "delete", "patch")
# The fuzzer is one address sending hundreds of wrong passwords, TOTP codes and sign-ups: with the real
# throttles it would be locked out within seconds and the rest of the run would test only 429s.
RELAXED = Throttling(
    account_max_failures=10**6, free_failures=10**6, list_attack_accounts=10**6, reset_requests_per_window=10**6
)


@pytest.fixture
def fuzzed_core(tmp_path: Path) -> Iterator[tuple[ServerThread, dict[str, str]]]:
    """A core on SQLite with a register and three wallets (one device each, each on its own account), and
    the environment scripts/schemathesis_hooks.py reads."""
    config = CoreConfig(
        db_url=str(tmp_path / "core.db"),
        server_key=secrets.token_bytes(32),
        throttling=RELAXED,
        passwords=CHEAP_HASHING,
        clock=system_clock,
    )
    core = Core(config)
    core.migrate()
    try:
        made = terminals.provision_terminal(core, "Fuzz store", "register-1", "test")
        with ServerThread(create_app(core)) as server:
            devices = []
            for number in range(3):
                email = f"fuzz{number}@example.jp"
                with WalletClient(server.url, clock=system_clock) as client:
                    kit = sign_up_verified(client, core, email)
                    code = totp_now(str(kit["totp_secret"]), system_clock)
                    state = client.enroll(email, PASSWORD, code, f"fuzz-{number}", wallet_name="fuzz")
                secret = base64.urlsafe_b64encode(state.secret).decode().rstrip("=")
                devices.append(f"{state.key_id}:{secret}")
            watcher = admin_keys.create_key(core, "fuzzer", admin_keys.READ, "admin:test")
            env = {
                "POSSIM_ADMIN_TOKEN": watcher.token,
                "POSSIM_TERMINAL_ID": made.terminal.id,
                "POSSIM_TERMINAL_SECRET": made.secret.hex(),
                "POSSIM_DEVICES": ",".join(devices),
                "POSSIM_PASSWORD": PASSWORD,
            }
            yield server, env
    finally:
        core.close()


@pytest.mark.slow
def test_schemathesis_finds_no_failure(fuzzed_core: tuple[ServerThread, dict[str, str]], tmp_path: Path) -> None:
    server, credentials = fuzzed_core
    env = os.environ | credentials | {"SCHEMATHESIS_HOOKS": "scripts.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(ROOT / "scripts" / "schemathesis.toml"),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--no-color",
    ]
    # Run outside the work tree: schemathesis keeps its state (.schemathesis/, .hypothesis/) in the cwd.
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=_RUN_TIMEOUT_SECONDS, check=False
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    paths = httpx.get(f"{server.url}/openapi.json", timeout=30).json()["paths"]
    operations = sum(1 for methods in paths.values() for method in methods if method in _METHODS)
    assert f"Selected: {operations}/{operations}" in report and f"Tested: {operations}" in report, report
    counted = re.search(r"(\d+) generated, (\d+) passed", report)
    assert counted is not None and counted.group(1) == counted.group(2) and int(counted.group(1)) > 200, report
    assert not re.search(r"failures?\b|errors?\b", report.split("SUMMARY")[-1].split("Test cases:")[-1]), report
