"""``possim core serve --workers N``: what is refused before anything starts, and how the password budget
is shared. The workers themselves serving money races: ``tests/core/test_races_multiprocess.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from payment_core.config import CoreConfig
from possim.cli import main
from possim.core_workers import share_budget


def test_workers_on_sqlite_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, key = tmp_path / "core.db", tmp_path / "server.key"
    assert main(["core", "serve", "--db", str(db), "--key-file", str(key), "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("possim core: --workers 2 needs PostgreSQL") and err.count("\n") == 1, err
    assert not db.exists() and not key.exists()  # refused before anything was made


def test_workers_are_one_or_more(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["core", "serve", "--workers", "0"])
    assert exited.value.code == 2
    assert "--workers: 0 is not 1 or more" in capsys.readouterr().err


def test_the_password_budget_is_split_between_the_workers() -> None:
    config = CoreConfig(db_url="postgresql://127.0.0.1/test", server_key=bytes(32), password_workers=3)
    assert (share_budget(config, 2).password_workers, share_budget(config, 2).password_queue) == (1, 8)
    assert (share_budget(config, 1).password_workers, share_budget(config, 1).password_queue) == (3, 16)
    assert (share_budget(config, 32).password_workers, share_budget(config, 32).password_queue) == (1, 1)
