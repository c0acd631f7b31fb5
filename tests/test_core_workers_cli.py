"""``possim core serve --workers N``: what is refused before anything starts, and how the password budget
is shared. The workers themselves serving money races: ``tests/core/test_races_multiprocess.py``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from payment_core.config import CoreConfig
from payment_core.core import Core
from payment_core.models import AuditEvent, RequestNonce
from possim.cli import main
from possim.core_workers import share_budget
from possim.world import new_core
from tests.served_core import ServedCore, wait_until


@pytest.mark.parametrize("db", [":memory:", "sqlite://", "sqlite:///:memory:"])
@pytest.mark.parametrize("asked", [("--workers", "2"), ("--register-port", "8799")])
def test_more_processes_on_sqlite_in_memory_are_refused_in_one_line(
    db: str, asked: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database in memory lives in one process (a SQLite file is served by N: tests/core/test_races_multiprocess.py;
    the registers' own port too: tests/test_register_port.py)."""
    key = tmp_path / "server.key"
    assert main(["core", "serve", "--db", db, "--key-file", str(key), *asked]) == 2
    err = capsys.readouterr().err
    named = " ".join(asked) if asked[0] == "--workers" else asked[0]
    assert err.startswith(f"possim core: {named} needs a database file or PostgreSQL") and err.count("\n") == 1, err
    assert not key.exists()  # refused before anything was made


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


def test_each_worker_prunes_on_its_schedule(tmp_path: Path) -> None:
    """``--workers 2 --prune-every`` prunes as one process does: old nonces go, a fresh one stays, the run is
    audited (once or by both workers, never an error)."""
    core = new_core(tmp_path / "core.db")
    try:
        old, fresh = core.now() - timedelta(days=2), core.now()
        with core.transaction() as session:
            session.add_all([RequestNonce(key_id="term_old", nonce=f"n{n}", seen_at=old) for n in range(5)])
            session.add(RequestNonce(key_id="term_new", nonce="fresh", seen_at=fresh))
        served = ServedCore(core, tmp_path, "--workers", "2", "--prune-every", "0.005")
        try:

            def pruned() -> bool:
                assert served.process.poll() is None, served.output()
                return _nonces(core) == ["term_new"]

            wait_until(pruned, 60, served.output)
        finally:
            stopped = served.stop()
        assert stopped == 0, served.output()
        with core.read() as session:
            runs = session.scalars(select(AuditEvent).where(AuditEvent.action == "retention.prune")).all()
        assert runs and all(event.actor == "core" for event in runs)
    finally:
        core.close()


def _nonces(core: Core) -> list[str]:
    with core.read() as session:
        return sorted(session.scalars(select(RequestNonce.key_id)))
