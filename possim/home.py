"""Where possim keeps its files: one data directory, never the current directory.

The directory is ``$POSSIM_HOME`` or, without it, the per-user data directory (``platformdirs``:
``~/.local/share/possim`` on Linux). Every command takes its default paths from here; ``--db``,
``--key-file``, ``--register-db``, ``--state`` and the like still name any other file. Each function
reads the environment when called, so a test (or a wrapper script) may set ``$POSSIM_HOME`` late.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

HOME_ENV = "POSSIM_HOME"
DB_ENV = "POSSIM_DB"


def data_dir() -> Path:
    """``$POSSIM_HOME`` (made absolute) or the per-user data directory."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured).expanduser().absolute()
    return Path(platformdirs.user_data_dir("possim", appauthor=False))


def data_dir_source() -> str:
    """How the data directory was chosen, for ``possim admin status``."""
    return f"${HOME_ENV}" if os.environ.get(HOME_ENV) else "per-user default"


def database() -> str:
    """The core's database: ``$POSSIM_DB`` (a URL or a SQLite path) or ``possim.db`` in the data directory."""
    return os.environ.get(DB_ENV) or str(data_dir() / "possim.db")


def server_key() -> Path:
    """The server key file (``$POSSIM_SERVER_KEY``, read by ``payment_core.config``, overrides any file)."""
    return data_dir() / "server.key"


def proxy_secret() -> Path:
    """The secret ``possim core serve --trust-proxy`` writes each run and ``possim wallet web`` sends (0600)."""
    return data_dir() / "proxy.secret"


def register_journal(terminal_id: str) -> Path:
    """A register's own journal (sales, clerks, shifts)."""
    return data_dir() / f"register-{terminal_id}.db"


def receipts(terminal_id: str) -> Path:
    """Where a register prints its receipts when no printer is given."""
    return data_dir() / f"receipts-{terminal_id}.escpos"


def wallet_state() -> Path:
    """The phone wallet's device file."""
    return data_dir() / "wallet.json"


def make_data_dir(path: Path) -> None:
    """Create ``path``'s folder; the data directory itself is made private (0700) when it is new."""
    folder = path.parent
    if folder.exists():
        return
    home = data_dir()
    if folder == home:
        home.parent.mkdir(parents=True, exist_ok=True)
        home.mkdir(mode=0o700, exist_ok=True)
    else:
        folder.mkdir(parents=True, exist_ok=True)
