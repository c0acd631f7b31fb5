"""``possim admin``: provision terminals and accounts, freeze, revoke, and prove the books balance."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from payment_core import accounts, devices, terminals
from payment_core.core import Core
from payment_core.ledger import audit_books
from payment_core.risk.explain import explain_lines, explain_transaction
from possim.commands import admin_incident, admin_report
from possim.runtime import StoreError, add_store_arguments, open_core, open_failure, store_status
from protocol import ProtocolError


def _actor() -> str:
    return f"admin:{getpass.getuser()}"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("admin", help="operate the payment core's store")
    add_store_arguments(parser)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    terminal = actions.add_parser("terminal-add", help="provision a register; its secret goes to a 0600 file")
    terminal.add_argument("--store", required=True, help="store (merchant) name")
    terminal.add_argument("--name", default="register-1")
    terminal.add_argument("--secret-file", type=Path, required=True)
    terminal.set_defaults(func=_terminal_add, creates=True)

    account = actions.add_parser("account-add", help="create a customer account (password from $POSSIM_PASSWORD)")
    account.add_argument("--email", required=True)
    account.add_argument("--name", default=None)
    account.set_defaults(func=_account_add, creates=True)

    for status in ("freeze", "unfreeze"):
        freeze = actions.add_parser(f"account-{status}", help=f"{status} an account")
        freeze.add_argument("account_id", type=int)
        freeze.set_defaults(func=_account_status, status="frozen" if status == "freeze" else "active")

    revoke = actions.add_parser("device-revoke", help="revoke a device: its codes stop working at once")
    revoke.add_argument("device_id", type=int)
    revoke.set_defaults(func=_device_revoke)

    audit = actions.add_parser("audit", help="prove the books balance (exit 1 if they do not)")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(func=_audit)

    explain = actions.add_parser("explain", help="why the risk rules decided a payment or top-up as they did")
    explain.add_argument("txn_id", metavar="TXN_ID", help="a payment (pay_...) or top-up id")
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(func=_explain)

    show = actions.add_parser(
        "status", help="where the data lives, the key's fingerprint and whether it is the database's, counts"
    )
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_status)
    admin_report.register_actions(actions)
    admin_incident.add_actions(actions)  # key-add, pause, resume, block, force-reset, ...


def _run(args: argparse.Namespace, work: Any) -> int:
    try:
        core = open_core(args, create=getattr(args, "creates", False))
    except (StoreError, SQLAlchemyError, ValueError, OSError) as error:
        return open_failure("admin", error)
    try:
        result: int = work(core)
        return result
    except ProtocolError as error:
        print(f"possim admin: {error.code.value}: {error.message}", file=sys.stderr)
        return 1
    finally:
        core.close()


def _terminal_add(args: argparse.Namespace) -> int:
    def work(core: Core) -> int:
        made = terminals.provision_terminal(core, args.store, args.name, _actor())
        path: Path = args.secret_file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(made.secret.hex())
        print(json.dumps({"terminal_id": made.terminal.id, "store": args.store, "secret_file": str(path)}))
        return 0

    return _run(args, work)


def _account_add(args: argparse.Namespace) -> int:
    password = os.environ.get("POSSIM_PASSWORD") or getpass.getpass("password for the new account: ")

    def work(core: Core) -> int:
        account = accounts.create_account(core, args.email, password, args.name, actor=_actor())
        print(json.dumps({"account_id": account.id, "email": account.email}))
        return 0

    return _run(args, work)


def _account_status(args: argparse.Namespace) -> int:
    def work(core: Core) -> int:
        account = accounts.set_account_status(core, args.account_id, args.status, _actor())
        print(json.dumps({"account_id": account.id, "status": account.status}))
        return 0

    return _run(args, work)


def _device_revoke(args: argparse.Namespace) -> int:
    def work(core: Core) -> int:
        device = devices.revoke_device(core, args.device_id, _actor())
        print(json.dumps({"device_id": device.id, "status": device.status}))
        return 0

    return _run(args, work)


def _audit(args: argparse.Namespace) -> int:
    def work(core: Core) -> int:
        with core.transaction() as session:
            report = audit_books(session)
        summary = {
            "audit": "balanced" if report.balanced else "unbalanced",
            "journals": report.journals,
            "books": report.books,
            "problems": report.problems,
        }
        if args.json:
            print(json.dumps(summary))
        else:
            print(f"books {summary['audit']}: {report.journals} journals over {report.books} books")
            for problem in report.problems:
                print(f"  - {problem}")
        return 0 if report.balanced else 1

    return _run(args, work)


def _explain(args: argparse.Namespace) -> int:
    def work(core: Core) -> int:
        with core.transaction() as session:
            explained = explain_transaction(session, args.txn_id)
        if explained is None:
            print(f"possim admin: no payment or top-up {args.txn_id!r}", file=sys.stderr)
            return 1
        print(json.dumps(explained) if args.json else "\n".join(explain_lines(explained)))
        return 0

    return _run(args, work)


def _status(args: argparse.Namespace) -> int:
    """Exit 1 when the key is not the one the database was made with, else 0."""
    try:
        status = store_status(args)
    except (StoreError, SQLAlchemyError, OSError) as error:
        return open_failure("admin", error)
    if args.json:
        print(json.dumps(status))
    else:
        for label, value in _status_lines(status):
            print(f"{label:<16}{value}")
    return 1 if status["key_matches"] is False else 0


def _status_lines(status: dict[str, Any]) -> list[tuple[str, str]]:
    key = "$POSSIM_SERVER_KEY" if status["key_from"] == "env" else status["key_file"]
    key += f" (fingerprint {status['key_fingerprint']})" if status["key_exists"] else " (missing)"
    database = status["database"] + (f" (schema {status['db_schema']})" if status["db_schema"] else "")
    stored = status["database_key_fingerprint"]
    if not status["database_exists"]:
        database += " (missing)"
        matches = "no database yet"
    elif stored is None:
        matches = "not recorded yet (the next command that opens the database records it)"
    elif status["key_matches"] is None:
        matches = f"no key here; the database was made with fingerprint {stored}"
    elif status["key_matches"]:
        matches = f"yes (fingerprint {stored})"
    else:
        matches = f"NO: the database was made with fingerprint {stored}"
    lines = [
        ("data directory", f"{status['data_dir']} ({status['data_dir_from']})"),
        ("server key", key),
        ("database", database),
        ("key matches", matches),
    ]
    if status["database_exists"]:
        version = status["schema_version"]
        current = "current" if version == status["schema_head"] else f"this possim expects {status['schema_head']}"
        lines.append(("schema version", f"{version} ({current})"))
        lines.append(("counts", ", ".join(f"{name} {count}" for name, count in status["counts"].items())))
    return lines
