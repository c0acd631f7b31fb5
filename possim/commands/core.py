"""``possim core serve``: the payment core alone, under uvicorn."""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from payment_core.api import create_app
from payment_core.db import normalise_url
from payment_core.risk import RiskSettingsError, load_settings
from payment_core.server import settle_collector
from possim import core_workers, home
from possim.attack import defences
from possim.runtime import StoreError, add_store_arguments, open_core, open_failure, sqlite_file


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("core", help="run the payment core")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = actions.add_parser("serve", help="serve the HTTP API (OpenAPI at /openapi.json)")
    add_store_arguments(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8700)
    serve.add_argument(
        "--trust-proxy",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a proxy (address or network) whose X-Forwarded-For names the client, e.g. the web wallet's server; "
        "believed only with this run's proxy secret (see --proxy-secret-file)",
    )
    serve.add_argument(
        "--proxy-secret-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --trust-proxy: where each run writes a new random secret (0600) that the proxy must send "
        "(default proxy.secret in the data directory, where possim wallet web reads it)",
    )
    serve.add_argument(
        "--breached-passwords",
        default="builtin",
        metavar="SOURCE",
        help="common/breached password list: builtin, a range file or directory, or a range API URL",
    )
    serve.add_argument(
        "--risk-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="a TOML file of risk-rule thresholds and actions over the shipped ones (payment_core/risk/rules.toml)",
    )
    serve.add_argument(
        "--defenses",
        choices=defences.NAMES,
        default=defences.HARDENED,
        help="hardened (default): possim as shipped; 7pay: the doors 7pay left open in 2019, for `possim attack` "
        "to replay what they cost (never for real use)",
    )
    serve.add_argument(
        "--sqlite-synchronous",
        choices=("full", "normal"),
        default="full",
        help="SQLite only: full (default) syncs every commit to disk; normal is faster but a power cut may lose "
        "the last payments the core already approved",
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="N server processes sharing the port, each with its own engine (on SQLite their transactions queue "
        "on a lock file beside the database; not for a database in memory) (default 1)",
    )
    serve.add_argument(
        "--register-port",
        type=int,
        metavar="PORT",
        help="serve the registers' routes on PORT too, in a process of their own that no sign-in reaches, and "
        "run the processes of --port below it in CPU priority (nice +19): a sign-in flood on the public port "
        "cannot take the tills' CPU or event loop (not for a database in memory)",
    )
    serve.add_argument(
        "--sweep-every",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="close payments nobody confirmed in time every SECONDS (default 5; 0: only when they are read again)",
    )
    serve.add_argument(
        "--prune-every",
        type=float,
        default=None,
        metavar="MINUTES",
        help="forget the replay and guessing records no window reads any more every MINUTES (default 10; "
        "0: only by `possim admin prune`)",
    )
    serve.add_argument(
        "--queued-work",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="do the work sign-up, resend and reset requests queue after their 202 (default on; off: this "
        "process only answers and another process, or a later run, does the work)",
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a line a request on stdout (default on; the attack replay turns it off: 200,000 lines of 429)",
    )
    serve.set_defaults(func=run_serve)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return number


def run_serve(args: argparse.Namespace) -> int:
    processes = args.workers + (1 if args.register_port else 0)
    if processes > 1 and normalise_url(args.db).startswith("sqlite") and sqlite_file(args.db) is None:
        asked = "--register-port" if args.workers == 1 else f"--workers {args.workers}"
        print(
            f"possim core: {asked} needs a database file or PostgreSQL: "
            "a SQLite database in memory lives in one process",
            file=sys.stderr,
        )
        return 2
    proxy_secret = secrets.token_urlsafe(32) if args.trust_proxy else None  # a new one each run
    try:
        risk = load_settings(args.risk_config)
    except RiskSettingsError as error:
        print(f"possim core: {error}", file=sys.stderr)
        return 2
    try:
        core = open_core(
            args,
            trusted_proxies=tuple(args.trust_proxy),
            breached_passwords=args.breached_passwords,
            create=True,
            sqlite_synchronous=args.sqlite_synchronous.upper(),
            proxy_secret=proxy_secret,
            risk=risk if args.risk_config is not None else None,
            profile=defences.profile(args.defenses),
        )
    except StoreError as error:
        return open_failure("core", error)
    except (SQLAlchemyError, ValueError, OSError) as error:
        print(f"possim core: cannot open the store: {type(error).__name__}: {error}".splitlines()[0], file=sys.stderr)
        return 2
    if not args.queued_work:
        core.config = dataclasses.replace(core.config, queued_work_runner=False)
    if proxy_secret is not None:
        secret_file = args.proxy_secret_file or home.proxy_secret()
        try:
            write_proxy_secret(secret_file, proxy_secret)
        except OSError as error:
            core.close()
            print(f"possim core: cannot write the proxy secret to {secret_file}: {error.strerror}", file=sys.stderr)
            return 2
        proxies = ", ".join(args.trust_proxy)
        print(f"possim core: X-Forwarded-For believed from {proxies} with the proxy secret in {secret_file}")
    if args.defenses != defences.HARDENED:
        notes = "; ".join(defences.profile(args.defenses).notes)
        print(f"possim core: WEAKENED on purpose, defences {args.defenses}: {notes}", flush=True)
    workers = f", {args.workers} workers" if args.workers > 1 else ""
    print(
        f"possim core on http://{args.host}:{args.port} (database: {core.engine.url.render_as_string()}{workers})",
        flush=True,
    )
    prune_minutes = core.config.retention.prune_every_minutes if args.prune_every is None else args.prune_every
    if args.register_port:
        print(f"possim core: the registers' own port http://{args.host}:{args.register_port}", flush=True)
    if processes > 1:
        config = core.config
        core.close()  # migrated above, once, before the fork; each worker opens its own engine and pool
        plan = core_workers.WorkerPlan(
            config,
            sqlite_synchronous=args.sqlite_synchronous.upper(),
            access_log=args.access_log,
            sweep_seconds=args.sweep_every,
            prune_seconds=prune_minutes * 60.0,
        )
        return core_workers.serve(plan, args.host, args.port, args.workers, register_port=args.register_port)
    jobs = core_workers.periodic_jobs(core, args.sweep_every, prune_minutes * 60.0)
    try:
        # proxy_headers off: the core alone decides whose X-Forwarded-For to believe (payment_core.sources).
        app = create_app(core)
        settle_collector()
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level="info",
            access_log=args.access_log,
            proxy_headers=False,
        )
    finally:
        for job in jobs:
            job.stop()
    return 0


def write_proxy_secret(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path``, readable by this user only, replacing the last run's at once."""
    home.make_data_dir(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secret + "\n")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
