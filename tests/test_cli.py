"""The ``possim`` command as users run it: admin provisioning, audit, and ``core serve`` as a process."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from possim.cli import main

ROOT = Path(__file__).resolve().parent.parent


def admin(tmp_path: Path, *args: str) -> list[str]:
    return ["admin", "--db", str(tmp_path / "core.db"), "--key-file", str(tmp_path / "server.key"), *args]


def test_admin_provisions_a_terminal_with_a_private_secret_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_file = tmp_path / "term.secret"
    assert main(admin(tmp_path, "terminal-add", "--store", "Ueno", "--secret-file", str(secret_file))) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["terminal_id"].startswith("term_")
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(bytes.fromhex(secret_file.read_text())) == 32
    assert stat.S_IMODE((tmp_path / "server.key").stat().st_mode) == 0o600
    assert secret_file.read_text() not in printed.values()


def test_admin_accounts_freeze_and_audit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSSIM_PASSWORD", "a long enough password")
    assert main(admin(tmp_path, "account-add", "--email", "jiro@example.jp")) == 0
    account_id = json.loads(capsys.readouterr().out)["account_id"]
    assert main(admin(tmp_path, "account-freeze", str(account_id))) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "frozen"
    assert main(admin(tmp_path, "audit", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["audit"] == "balanced"


def test_admin_errors_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(admin(tmp_path, "terminal-add", "--store", "Ueno", "--secret-file", str(tmp_path / "t.secret"))) == 0
    capsys.readouterr()
    assert main(admin(tmp_path, "device-revoke", "999")) == 1
    assert capsys.readouterr().err.strip() == "possim admin: resource_missing: No such resource."
    down = ["admin", "--db", "postgresql://127.0.0.1:9/none", "--key-file", str(tmp_path / "k"), "audit"]
    assert main(down) == 2
    err = capsys.readouterr().err
    assert err.startswith("possim admin: cannot open the store") and "Traceback" not in err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_core_serve_runs_as_a_process_and_serves_openapi(tmp_path: Path) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "possim", "core", "serve", "--db", str(tmp_path / "core.db")]
    command += ["--key-file", str(tmp_path / "server.key"), "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the core did not come up in 30 s"
                time.sleep(0.1)
        assert health.json()["status"] == "ok" and health.json()["password_work"]["saturated"] is False
        spec = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()
        assert {"/v1/payments", "/v1/orders/{order_id}/reverse", "/v1/payments/{payment_id}/refunds"} <= set(
            spec["paths"]
        )
        assert (
            "order_id"
            in spec["paths"]["/v1/payments"]["post"]["requestBody"]["content"]["application/json"]["schema"][
                "properties"
            ]
        )
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_register_adds_a_clerk_and_refuses_to_start_without_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "register.db")
    monkeypatch.setenv("POSSIM_CLERK_PIN", "2580")
    assert main(["register", "--register-db", db, "--add-clerk", "1001", "Sato"]) == 0
    assert "clerk 1001 (Sato) added" in capsys.readouterr().out
    assert "2580" not in (tmp_path / "register.db").read_bytes().decode("latin-1")
    monkeypatch.setenv("POSSIM_CLERK_PIN", "12")
    assert main(["register", "--register-db", db, "--add-clerk", "1002", "Suzuki"]) == 1
    assert "PIN is 4 to 8 digits" in capsys.readouterr().err
    assert main(["register", "--register-db", db]) == 1
    assert "--terminal-id" in capsys.readouterr().err
    missing = str(tmp_path / "nope.secret")
    args = ["register", "--register-db", db, "--terminal-id", "term_x", "--terminal-secret-file", missing]
    assert main(args) == 1
    assert "cannot read the terminal secret file" in capsys.readouterr().err


def test_demo_without_a_terminal_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """Under pytest stdout is not a terminal: the TUI demo refuses with a hint instead of drawing garbage."""
    assert main(["demo"]) == 2
    assert "--headless" in capsys.readouterr().err


def test_wallet_show_writes_a_scannable_code_and_explains_what_it_cannot_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    import zxingcpp
    from PIL import Image

    from protocol import parse_code, system_clock, verify_code
    from wallet_app.state import WalletState, save_state

    secret = bytes(range(1, 33))
    state = tmp_path / "wallet.json"
    save_state(WalletState("http://127.0.0.1:9", "a@example.jp", 1, 77, secret), state)
    png = tmp_path / "code.png"
    assert main(["wallet", "--state", str(state), "show", "--png", str(png)]) == 0
    texts = [r.text for r in zxingcpp.read_barcodes(np.asarray(Image.open(png).convert("L")))]
    qr = next(text for text in texts if len(text) == 40)
    assert verify_code(parse_code(qr), secret, system_clock()).device_id == 77
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["wallet", "--state", str(state), "show", "--window"]) == 1
    assert "needs a display" in capsys.readouterr().err
    assert main(["wallet", "--state", str(tmp_path / "none.json"), "show", "--png", str(png)]) == 1
    assert "enroll this device first" in capsys.readouterr().err
    assert main(["wallet", "--state", str(state)]) == 2  # no terminal under pytest
    assert "needs a terminal" in capsys.readouterr().err
