"""One data directory: nothing appears in the current directory, what is made is said, a wrong key is refused."""

from __future__ import annotations

import json
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import pytest

from payment_core import accounts
from payment_core.config import CoreConfig, create_server_key, key_fingerprint
from payment_core.core import Core
from payment_core.db import head_revision
from possim import home
from possim.cli import build_parser, main
from possim.runtime import display_url
from tests.conftest import Database

PASSWORD = "a long enough password"


@dataclass
class Place:
    home: Path  # $POSSIM_HOME (not made yet)
    cwd: Path  # the current directory, which must stay empty
    outside: Path  # where the tests keep secrets and other keys

    @property
    def key(self) -> Path:
        return self.home / "server.key"

    @property
    def db(self) -> Path:
        return self.home / "possim.db"

    def fingerprint(self) -> str:
        return key_fingerprint(bytes.fromhex(self.key.read_text()))


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Place:
    made = Place(tmp_path / "home", tmp_path / "cwd", tmp_path / "outside")
    made.cwd.mkdir()
    made.outside.mkdir()
    monkeypatch.setenv("POSSIM_HOME", str(made.home))
    for name in ("POSSIM_DB", "POSSIM_SERVER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POSSIM_PASSWORD", PASSWORD)
    monkeypatch.chdir(made.cwd)
    return made


def terminal_add(place: Place, *store: str, name: str = "t1") -> list[str]:
    return ["admin", *store, "terminal-add", "--store", "Ueno", "--secret-file", str(place.outside / f"{name}.secret")]


def err_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_the_first_command_that_makes_things_makes_the_home_and_says_so(
    place: Place, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(terminal_add(place)) == 0
    assert err_lines(capsys) == [
        f"possim: created a new database at {place.db}",
        f"possim: created a new server key at {place.key} (fingerprint {place.fingerprint()})",
    ]
    assert stat.S_IMODE(place.home.stat().st_mode) == 0o700
    assert stat.S_IMODE(place.key.stat().st_mode) == 0o600
    assert main(terminal_add(place, name="t2")) == 0  # both exist now: nothing to say
    assert err_lines(capsys) == []
    assert main(["outbox"]) == 0
    assert err_lines(capsys) == ["(the outbox is empty)"]
    assert list(place.cwd.iterdir()) == []


def test_the_defaults_all_come_from_the_data_home(place: Place, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()
    for argv in (["outbox"], ["admin", "audit"], ["core", "serve"]):
        args = parser.parse_args(argv)
        assert (args.db, args.key_file) == (str(place.db), place.key)
    assert home.register_journal("T1") == place.home / "register-T1.db"
    assert home.receipts("T1") == place.home / "receipts-T1.escpos"
    assert home.wallet_state() == place.home / "wallet.json"
    monkeypatch.setenv("POSSIM_CLERK_PIN", "2580")
    assert main(["register", "--add-clerk", "1001", "Sato"]) == 0
    assert (place.home / "register-T1.db").exists()
    assert list(place.cwd.iterdir()) == []
    monkeypatch.setenv("POSSIM_DB", "postgresql://127.0.0.1:5432/elsewhere")
    assert build_parser().parse_args(["outbox"]).db == "postgresql://127.0.0.1:5432/elsewhere"


def test_without_possim_home_the_per_user_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSSIM_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert home.data_dir() == Path(platformdirs.user_data_dir("possim", appauthor=False))
    assert home.data_dir() == tmp_path / "xdg" / "possim"
    assert home.data_dir_source() == "per-user default"


def test_outbox_and_admin_refuse_a_missing_database_and_make_nothing(
    place: Place, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["outbox"]) == 2
    assert err_lines(capsys) == [
        f"possim: there is no database at {place.db} (possim core serve, possim admin terminal-add or "
        "possim admin account-add makes one; --db or $POSSIM_DB names another)"
    ]
    assert main(["admin", "audit"]) == 2
    assert main(["admin", "device-revoke", "1"]) == 2
    elsewhere = place.outside / "nope.db"
    assert main(["outbox", "--db", str(elsewhere)]) == 2
    assert f"there is no database at {elsewhere} " in capsys.readouterr().err
    assert not place.home.exists() and not elsewhere.exists()
    assert list(place.cwd.iterdir()) == []


def test_a_new_key_for_a_database_made_with_another_is_refused_by_fingerprint(
    place: Place, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(terminal_add(place)) == 0
    capsys.readouterr()
    original = place.fingerprint()
    hint = "set --key-file or $POSSIM_SERVER_KEY to that key"
    other = place.outside / "other.key"
    assert main(["admin", "--key-file", str(other), "terminal-add", "--store", "Ueno", "--secret-file", "x"]) == 2
    assert err_lines(capsys) == [
        f"possim: there is no server key at {other}, and this database was made with the key of fingerprint "
        f"{original}; {hint}"
    ]
    assert not other.exists() and list(place.cwd.iterdir()) == []
    wrong = key_fingerprint(create_server_key(other))
    key = ["--key-file", str(other)]
    commands = (["outbox", *key], ["core", "serve", *key], ["admin", *key, "audit"])
    for argv in (*commands, ["admin", *key, "account-add", "--email", "jiro@example.jp"]):
        assert main(argv) == 2
        assert err_lines(capsys) == [
            f"possim: the server key {other} (fingerprint {wrong}) is not the key this database was made with "
            f"(fingerprint {original}); {hint}"
        ]
    assert main(["admin", *key, "status"]) == 1
    assert "NO: the database was made with fingerprint " + original in capsys.readouterr().out


def test_a_wrong_key_is_refused_on_every_backend(
    database: Database, place: Place, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ["--db", database.url, *(["--db-schema", database.schema] if database.schema else [])]
    assert main(["outbox", *store]) == 2
    assert "there is no " in capsys.readouterr().err
    assert main(["admin", *store, "account-add", "--email", "hanako@example.jp"]) == 0
    created = err_lines(capsys)
    assert created[0].startswith("possim: created a new database at ") and len(created) == 2
    right = place.fingerprint()
    wrong_key = secrets.token_bytes(32)
    monkeypatch.setenv("POSSIM_SERVER_KEY", wrong_key.hex())
    assert main(["outbox", *store]) == 2
    assert err_lines(capsys) == [
        f"possim: the server key from $POSSIM_SERVER_KEY (fingerprint {key_fingerprint(wrong_key)}) is not the key "
        f"this database was made with (fingerprint {right}); set --key-file or $POSSIM_SERVER_KEY to that key"
    ]
    monkeypatch.setenv("POSSIM_SERVER_KEY", place.key.read_text())
    assert main(["outbox", *store, "--json"]) == 0
    assert wrong_key.hex() not in capsys.readouterr().err


def test_a_database_from_before_fingerprints_keeps_its_key(place: Place, capsys: pytest.CaptureFixture[str]) -> None:
    """A database made before the fingerprint was recorded: no new key over its accounts; its key is adopted."""
    db = place.outside / "old.db"
    key = secrets.token_bytes(32)
    core = Core(CoreConfig(db_url=str(db), server_key=key))
    core.migrate()
    accounts.create_account(core, "jiro@example.jp", PASSWORD)
    core.close()
    assert main(["outbox", "--db", str(db)]) == 2
    assert err_lines(capsys) == [
        f"possim: there is no server key at {place.key}, and this database already holds 1 account made with "
        "another key; set --key-file or $POSSIM_SERVER_KEY to that key"
    ]
    assert not place.key.exists()
    key_file = place.outside / "old.key"
    key_file.write_text(key.hex())
    assert main(["admin", "--db", str(db), "--key-file", str(key_file), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["database_key_fingerprint"] is None  # status only reads
    assert main(["outbox", "--db", str(db), "--key-file", str(key_file)]) == 0
    assert "jiro@example.jp" in capsys.readouterr().out
    assert main(["admin", "--db", str(db), "--key-file", str(key_file), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["database_key_fingerprint"] == key_fingerprint(key) and status["key_matches"] is True


def test_admin_status_json(place: Place, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["admin", "status", "--json"]) == 0
    empty = json.loads(capsys.readouterr().out)
    assert empty["database_exists"] is False and empty["key_exists"] is False and empty["counts"] is None
    assert not place.home.exists()  # status makes nothing
    assert main(terminal_add(place)) == 0
    assert main(["admin", "account-add", "--email", "hanako@example.jp"]) == 0
    capsys.readouterr()
    assert main(["admin", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status == {
        "data_dir": str(place.home),
        "data_dir_from": "$POSSIM_HOME",
        "key_file": str(place.key),
        "key_from": "file",
        "key_exists": True,
        "key_fingerprint": place.fingerprint(),
        "database": str(place.db),
        "db_schema": None,
        "database_exists": True,
        "schema_version": head_revision(),
        "schema_head": head_revision(),
        "database_key_fingerprint": place.fingerprint(),
        "key_matches": True,
        "counts": {
            "accounts": 1,
            "devices": 0,
            "terminals": 1,
            "merchants": 1,
            "payments": 0,
            "refunds": 0,
            "topups": 0,
            "journals": 0,
            "outbox": 1,
        },
    }
    assert place.key.read_text() not in json.dumps(status)
    assert main(["admin", "status"]) == 0
    shown = capsys.readouterr().out
    assert f"server key      {place.key} (fingerprint {place.fingerprint()})" in shown
    assert "key matches     yes" in shown and "accounts 1, devices 0, terminals 1" in shown


def test_a_postgresql_password_is_masked() -> None:
    assert display_url("postgresql://possim:hunter2@db:5432/pos") == "postgresql://possim:***@db:5432/pos"
    assert "hunter2" not in display_url("postgresql://db/pos?password=hunter2")
    assert display_url("/srv/possim.db") == "/srv/possim.db"


def test_the_fingerprint_is_short_and_is_not_the_key() -> None:
    key = bytes(range(32))
    fingerprint = key_fingerprint(key)
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    assert fingerprint == key_fingerprint(bytes(range(32))) != key_fingerprint(bytes(range(1, 33)))
    assert fingerprint not in key.hex()


def test_a_key_file_is_never_overwritten_nor_left_half_written(
    place: Place, capsys: pytest.CaptureFixture[str]
) -> None:
    place.outside.joinpath("server.key").write_text("not hex")
    bad = place.outside / "server.key"
    with pytest.raises(FileExistsError):
        create_server_key(bad)
    assert bad.read_text() == "not hex" and sorted(p.name for p in place.outside.iterdir()) == ["server.key"]
    assert main(["admin", "--key-file", str(bad), "terminal-add", "--store", "Ueno", "--secret-file", "x"]) == 2
    refusal = err_lines(capsys)
    assert len(refusal) == 1 and refusal[0].startswith(f"possim: the server key file {bad} does not hold a hex key")
    assert not place.home.exists()  # refused before anything was made
    bad.write_text("abcd")
    assert main(["admin", "--key-file", str(bad), "status"]) == 2
    assert err_lines(capsys) == [f"possim: the server key {bad} is shorter than 32 bytes"]
