"""``possim admin`` incident controls as an operator types them: keys, switches, blocks, forced resets."""

from __future__ import annotations

import argparse
import getpass
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from payment_core import accounts
from payment_core.core import Core
from payment_core.models import AdminKey, AuditEvent, OutboxMessage
from possim.cli import main
from possim.runtime import open_core

PASSWORD = "a long enough password"


def admin(tmp_path: Path, *args: str) -> list[str]:
    return ["admin", "--db", str(tmp_path / "core.db"), "--key-file", str(tmp_path / "server.key"), *args]


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(admin(tmp_path, *args)) == 0
    printed: dict[str, Any] = json.loads(capsys.readouterr().out)
    return printed


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Path]:
    """A store with one terminal, so the database and its key exist."""
    run(tmp_path, capsys, "terminal-add", "--store", "Ueno", "--secret-file", str(tmp_path / "t.secret"))
    yield tmp_path


def opened(tmp_path: Path) -> Core:
    return open_core(argparse.Namespace(db=str(tmp_path / "core.db"), db_schema=None, key_file=tmp_path / "server.key"))


def audit_actors(tmp_path: Path, action: str) -> list[str]:
    core = opened(tmp_path)
    try:
        with core.read() as session:
            return list(session.scalars(select(AuditEvent.actor).where(AuditEvent.action == action)))
    finally:
        core.close()


def test_key_add_writes_a_private_token_and_keeps_only_its_hash(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_file = store / "ops.token"
    printed = run(store, capsys, "key-add", "--name", "ops", "--scope", "operator", "--secret-file", str(secret_file))
    token = secret_file.read_text()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert printed["scope"] == "operator" and token.startswith(f"{printed['key_id']}.")
    assert token not in json.dumps(printed)
    listed = run(store, capsys, "key-list")
    assert token.partition(".")[2] not in json.dumps(listed)
    core = opened(store)
    try:
        with core.read() as session:
            (row,) = session.scalars(select(AdminKey)).all()
        assert row.token_hash != token and token.partition(".")[2] not in row.token_hash
    finally:
        core.close()
    assert main(admin(store, "key-add", "--name", "ops", "--secret-file", str(store / "again"))) == 1
    assert capsys.readouterr().err.strip() == "possim admin: account_exists: An admin key with this name exists."
    assert audit_actors(store, "admin.key_add") == [f"admin:{getpass.getuser()}"]


def test_pause_resume_and_switches(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(store, capsys, "pause", "topups", "--reason", "day 4")["paused"] == [
        "topup-cash",
        "topup-card",
        "topup-bank",
    ]
    assert run(store, capsys, "resume", "topup-card")["resumed"] == ["topup-card"]
    rows = {row["name"]: row["paused"] for row in run(store, capsys, "switches", "--json")["data"]}
    assert rows == {
        "topup-cash": True,
        "topup-card": False,
        "topup-bank": True,
        "signups": False,
        "enrollment": False,
    }
    assert main(admin(store, "switches")) == 0
    table = capsys.readouterr().out
    assert "topup-cash  PAUSED since" in table and "(day 4)" in table and "topup-card  running" in table
    assert audit_actors(store, "incident.pause") == [f"admin:{getpass.getuser()}"] * 3


def test_block_unblock_and_blocks(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(store, capsys, "block", "--country", "cn")["value"] == "CN"
    assert run(store, capsys, "block", "--cidr", "127.193.0.9/16")["value"] == "127.193.0.0/16"
    shown = run(store, capsys, "blocks", "--json")
    assert [row["value"] for row in shown["operator"]] == ["CN", "127.193.0.0/16"]
    assert run(store, capsys, "unblock", "--country", "CN")["lifted"] is True
    assert run(store, capsys, "unblock", "--country", "CN")["lifted"] is False
    assert main(admin(store, "block", "--cidr", "127.1.2.3/99")) == 1
    assert capsys.readouterr().err.strip() == "possim admin: parameter_invalid: value: not an address range"
    assert run(store, capsys, "address-unblock", "127.0.0.7")["lifted"] is False


def test_force_reset_for_everyone_voids_every_password(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    core = opened(store)
    try:
        made = [accounts.create_account(core, f"user{n}@example.jp", PASSWORD) for n in range(2)]
    finally:
        core.close()
    assert main(admin(store, "force-reset", "--account", "999")) == 1
    assert capsys.readouterr().err.strip() == "possim admin: resource_missing: No account 999."
    assert run(store, capsys, "force-reset", "--all")["accounts"] == 2
    core = opened(store)
    try:
        for account in made:
            assert accounts.check_password(core, account.email, PASSWORD).account is None
        with core.read() as session:
            mailed = session.scalars(select(OutboxMessage.to).where(OutboxMessage.subject.contains("(required)")))
            assert sorted(mailed) == ["user0@example.jp", "user1@example.jp"]
    finally:
        core.close()
    assert audit_actors(store, "password.reset_forced") == [f"admin:{getpass.getuser()}"] * 2
