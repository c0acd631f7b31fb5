"""Shared wiring for the commands: where the database and the server key live."""

from __future__ import annotations

import argparse
import ipaddress
import os
from pathlib import Path

from payment_core.config import CoreConfig, load_server_key
from payment_core.core import Core

DEFAULT_DATA_DIR = Path(os.environ.get("POSSIM_HOME", "var"))


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=os.environ.get("POSSIM_DB", str(DEFAULT_DATA_DIR / "possim.db")),
        help="database URL or SQLite path (default: var/possim.db; postgresql://... for PostgreSQL)",
    )
    parser.add_argument("--db-schema", default=None, help="PostgreSQL schema to use (created if missing)")
    parser.add_argument(
        "--key-file",
        type=Path,
        default=DEFAULT_DATA_DIR / "server.key",
        help="server key file, created with mode 0600 if missing ($POSSIM_SERVER_KEY overrides it)",
    )


def open_core(
    args: argparse.Namespace, trusted_proxies: tuple[str, ...] = (), breached_passwords: str = "builtin"
) -> Core:
    db: str = args.db
    if "://" not in db:
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    if trusted_proxies:
        for proxy in trusted_proxies:
            ipaddress.ip_network(proxy, strict=False)  # a ValueError with the bad value, before serving
    config = CoreConfig(db_url=db, server_key=load_server_key(args.key_file), db_schema=args.db_schema,
                        trusted_proxies=trusted_proxies, breached_passwords=breached_passwords)  # fmt: skip
    core = Core(config)
    core.migrate()
    return core
