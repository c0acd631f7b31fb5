"""Shared wiring for the commands: open the core's database with its server key, and say what was made.

The database and the key default to the data directory (``possim.home``). A database remembers the
fingerprint of the key it was first opened with (``core_meta``); opening it with another key is refused,
and so is making a new key for a database whose accounts, devices or terminals were made with an old
one (their secrets are derived from that key: a new one would make every signature fail). Only the
commands that make things create a database; every key or database made is said on stderr.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from payment_core.config import (
    SERVER_KEY_BYTES,
    SERVER_KEY_ENV,
    CoreConfig,
    create_server_key,
    key_fingerprint,
    read_server_key,
    server_key_from_env,
)
from payment_core.core import KEY_BOUND, Core, count_rows, remember_key_fingerprint, retry_on_conflict
from payment_core.core import stored_key_fingerprint as _stored_fingerprint
from payment_core.db import (
    head_revision,
    make_engine,
    make_session_factory,
    migrate,
    normalise_url,
    schema_version,
    table_names,
    transaction,
)
from payment_core.risk import RiskSettings, load_settings
from possim import home
from possim.attack.defences import DefenceProfile

MAKERS = "possim core serve, possim admin terminal-add or possim admin account-add makes one"


class StoreError(Exception):
    """Why the store cannot be opened, as one line for the user (printed after ``possim: ``)."""


def say(message: str) -> None:
    print(f"possim: {message}", file=sys.stderr)


def open_failure(command: str, error: Exception) -> int:
    """Report a store that would not open in one line (never a traceback, never a secret); exit code 2."""
    if isinstance(error, StoreError):
        say(str(error))
    else:
        print(f"possim {command}: cannot open the store: {type(error).__name__}", file=sys.stderr)
    return 2


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    db = home.database().replace("%", "%%")
    key = str(home.server_key()).replace("%", "%%")
    parser.add_argument(
        "--db",
        default=home.database(),
        help=f"database URL or SQLite path; postgresql://... for PostgreSQL (default: $POSSIM_DB or {db})",
    )
    parser.add_argument("--db-schema", default=None, help="PostgreSQL schema to use (created if missing)")
    parser.add_argument(
        "--key-file",
        type=Path,
        default=home.server_key(),
        help=f"server key file, made (0600) with a new database ($POSSIM_SERVER_KEY overrides it; default: {key})",
    )


def display_url(db: str) -> str:
    """The database as shown to people: a path, or a URL with any password masked."""
    if "://" not in db:
        return db
    url = make_url(db)
    if "password" in url.query:
        url = url.update_query_dict({"password": "***"})
    return url.render_as_string(hide_password=True)


def sqlite_file(db: str) -> Path | None:
    """The file of a SQLite database (None for a server URL or an in-memory database)."""
    if "://" not in db:
        return None if db == ":memory:" else Path(db)
    if db.startswith("sqlite:///") and db != "sqlite:///:memory:":
        return Path(db.removeprefix("sqlite:///"))
    return None


def _profile_settings(profile: DefenceProfile) -> dict[str, Any]:
    """What a defence profile (``possim core serve --defenses``) sets in the core's config."""
    return {
        "passwords": profile.passwords,
        "throttling": profile.throttling,
        "defences": profile.defences,
        "limits": profile.limits,
    }


def open_core(
    args: argparse.Namespace,
    trusted_proxies: tuple[str, ...] = (),
    breached_passwords: str = "builtin",
    *,
    create: bool = False,
    sqlite_synchronous: str = "FULL",
    proxy_secret: str | None = None,
    risk: RiskSettings | None = None,
    profile: DefenceProfile | None = None,
) -> Core:
    """The core on ``args.db`` with its server key; a missing database is made only when ``create``."""
    for proxy in trusted_proxies:
        ipaddress.ip_network(proxy, strict=False)  # a ValueError with the bad value, before serving
    db: str = args.db
    given = _given_key(args.key_file)  # a bad key is refused before anything is made
    engine, made = _open_engine(db, args.db_schema, create, sqlite_synchronous)
    try:
        migrate(engine)
        if made:
            file = sqlite_file(db)
            where = str(file.absolute()) if file is not None else display_url(db)
            say(f"created a new database at {where}" + (f" (schema {args.db_schema})" if args.db_schema else ""))
        key, source = given
        if key is None:
            key, source = _new_server_key(engine, args.key_file)
        _check_key(engine, key, source)
        config = CoreConfig(
            db_url=db,
            server_key=key,
            db_schema=args.db_schema,
            trusted_proxies=trusted_proxies,
            proxy_secret=proxy_secret,
            risk=risk or (profile.risk if profile is not None else load_settings()),
            breached_passwords=breached_passwords,
            **(_profile_settings(profile) if profile is not None else {}),
        )
    except BaseException:
        engine.dispose()
        raise
    return Core(config, engine=engine)


def _open_engine(db: str, schema: str | None, create: bool, sqlite_synchronous: str = "FULL") -> tuple[Engine, bool]:
    """The engine, and whether the database is new; a missing one is refused unless ``create``."""
    path = sqlite_file(db)
    if path is not None:
        existed = path.exists()
        if not existed and not create:
            raise StoreError(f"there is no database at {path.absolute()} ({MAKERS}; --db or $POSSIM_DB names another)")
        if not existed:
            home.make_data_dir(path.absolute())
        return make_engine(db, schema, sqlite_synchronous=sqlite_synchronous), not existed
    engine = make_engine(db, schema, create_schema=create, sqlite_synchronous=sqlite_synchronous)
    if normalise_url(db).startswith("sqlite"):  # in memory: new every time, nothing to say
        return engine, False
    try:
        new = schema_version(engine) is None
    except BaseException:
        engine.dispose()
        raise
    if new and not create:
        engine.dispose()
        where = display_url(db) + (f" (schema {schema})" if schema else "")
        raise StoreError(f"there is no possim database at {where} ({MAKERS})")
    return engine, new


@dataclass(frozen=True)
class _KeySource:
    path: Path | None  # None: the key came from $POSSIM_SERVER_KEY

    def __str__(self) -> str:
        return f"from ${SERVER_KEY_ENV}" if self.path is None else str(self.path)


def _given_key(key_file: Path) -> tuple[bytes | None, _KeySource]:
    """The key from ``$POSSIM_SERVER_KEY`` or else the file (None if there is no file), checked."""
    try:
        from_env = server_key_from_env()
    except ValueError as error:
        raise StoreError(f"${SERVER_KEY_ENV} is not a hex key ({error})") from None
    source = _KeySource(None if from_env is not None else key_file)
    key = from_env if from_env is not None else _read_key(key_file)
    if key is not None and len(key) < SERVER_KEY_BYTES:
        raise StoreError(f"the server key {source} is shorter than {SERVER_KEY_BYTES} bytes")
    return key, source


def _new_server_key(engine: Engine, key_file: Path) -> tuple[bytes, _KeySource]:
    """A new key file, only for a database nothing was made in yet (else the error names the key it needs)."""
    with transaction(make_session_factory(engine)) as session:
        stored = _stored_fingerprint(session)
        bound = count_rows(session, KEY_BOUND)
    hint = f"set --key-file or ${SERVER_KEY_ENV} to that key"
    if stored is not None:
        raise StoreError(
            f"there is no server key at {key_file}, and this database was made with the key of fingerprint "
            f"{stored}; {hint}"
        )
    if any(bound.values()):
        held = ", ".join(f"{count} {name if count > 1 else name[:-1]}" for name, count in bound.items() if count)
        raise StoreError(
            f"there is no server key at {key_file}, and this database already holds {held} made with another "
            f"key; {hint}"
        )
    home.make_data_dir(key_file.absolute())
    try:
        key = create_server_key(key_file)
    except FileExistsError:  # another process made it a moment ago: use that one
        made = _read_key(key_file)
        assert made is not None
        return made, _KeySource(key_file)
    say(f"created a new server key at {key_file} (fingerprint {key_fingerprint(key)})")
    return key, _KeySource(key_file)


def _read_key(path: Path) -> bytes | None:
    try:
        return read_server_key(path)
    except ValueError as error:
        raise StoreError(f"the server key file {path} does not hold a hex key ({error})") from None


def _check_key(engine: Engine, key: bytes, source: _KeySource) -> None:
    """Record the key's fingerprint in a database that has none; refuse a key that is not the recorded one."""
    fingerprint = key_fingerprint(key)
    sessions = make_session_factory(engine)

    def bind() -> str:
        with transaction(sessions) as session:
            return remember_key_fingerprint(session, fingerprint, datetime.now(UTC))

    stored = retry_on_conflict(bind)
    if stored != fingerprint:
        raise StoreError(
            f"the server key {source} (fingerprint {fingerprint}) is not the key this database was made with "
            f"(fingerprint {stored}); set --key-file or ${SERVER_KEY_ENV} to that key"
        )


def store_status(args: argparse.Namespace) -> dict[str, Any]:
    """What ``possim admin status`` shows; reads only, creates nothing (not even a missing database)."""
    key, source = _given_key(args.key_file)
    fingerprint = None if key is None else key_fingerprint(key)
    db: str = args.db
    status: dict[str, Any] = {
        "data_dir": str(home.data_dir()),
        "data_dir_from": home.data_dir_source(),
        "key_file": None if source.path is None else str(source.path),
        "key_from": "env" if source.path is None else "file",
        "key_exists": key is not None,
        "key_fingerprint": fingerprint,
        "database": display_url(db),
        "db_schema": args.db_schema,
        "database_exists": False,
        "schema_version": None,
        "schema_head": head_revision(),
        "database_key_fingerprint": None,
        "key_matches": None,
        "counts": None,
    }
    path = sqlite_file(db)
    if path is not None and not path.exists():
        return status
    engine = make_engine(db, args.db_schema, create_schema=False)
    try:
        version = schema_version(engine)
        if version is None:
            return status
        present = table_names(engine)
        with transaction(make_session_factory(engine)) as session:
            stored = _stored_fingerprint(session) if "core_meta" in present else None
            counts = count_rows(session, present=present)
    finally:
        engine.dispose()
    status.update(database_exists=True, schema_version=version, database_key_fingerprint=stored, counts=counts)
    if stored is not None and fingerprint is not None:
        status["key_matches"] = stored == fingerprint
    return status
