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
from possim.runtime import add_store_arguments, open_core
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
    terminal.set_defaults(func=_terminal_add)

    account = actions.add_parser("account-add", help="create a customer account (password from $POSSIM_PASSWORD)")
    account.add_argument("--email", required=True)
    account.add_argument("--name", default=None)
    account.set_defaults(func=_account_add)

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


def _with_core(args: argparse.Namespace) -> Core | None:
    try:
        return open_core(args)
    except (SQLAlchemyError, ValueError, OSError) as error:
        print(f"possim admin: cannot open the store: {type(error).__name__}", file=sys.stderr)
        return None


def _run(args: argparse.Namespace, work: Any) -> int:
    core = _with_core(args)
    if core is None:
        return 2
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
