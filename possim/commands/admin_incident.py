"""``possim admin`` incident controls (issue 13): admin API keys, kill switches, blocks, forced resets.

Every lever at once, where 7pay pulled them over four days and a month. Each prints one JSON line (or a
table with ``switches`` / ``blocks``) and is audited with ``admin:<user>`` as its actor; a refusal is one
line on stderr and exit 1. The same controls are on the admin API (``/v1/admin/...``, docs/API.md), for
keys made here.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from payment_core import admin_keys, incident
from payment_core.core import Core
from payment_core.forced_resets import force_resets
from possim.runtime import StoreError, open_core, open_failure
from protocol import ProtocolError


def _actor() -> str:
    return f"admin:{getpass.getuser()}"


def add_actions(actions: Any) -> None:
    """Add the incident actions to ``possim admin``'s subcommands."""
    key = actions.add_parser(
        "key-add", help="make an admin API key; its token goes to a 0600 file, only a hash is kept"
    )
    key.add_argument("--name", required=True, help="the operator's name (the audit's actor: admin:NAME)")
    key.add_argument("--scope", choices=admin_keys.SCOPES, default=admin_keys.READ)
    key.add_argument("--secret-file", type=Path, required=True)
    key.set_defaults(func=_key_add, creates=True)
    keys = actions.add_parser("key-list", help="list the admin API keys (never their tokens)")
    keys.set_defaults(func=_key_list)
    drop = actions.add_parser("key-revoke", help="revoke an admin API key by name")
    drop.add_argument("name")
    drop.set_defaults(func=_key_revoke)

    for verb, helped in (("pause", "turn on a kill switch"), ("resume", "turn a kill switch off again")):
        switch = actions.add_parser(verb, help=f"{helped}: {', '.join(incident.GROUPS)}")
        switch.add_argument("switch", choices=tuple(incident.GROUPS), metavar="SWITCH")
        if verb == "pause":
            switch.add_argument("--reason", default=None)
        switch.set_defaults(func=_switch, verb=verb)
    switches = actions.add_parser("switches", help="show every kill switch")
    switches.add_argument("--json", action="store_true")
    switches.set_defaults(func=_switches)

    for verb, helped in (
        ("block", "refuse sign-in, enrollment, sign-up and reset from"),
        ("unblock", "lift a block of"),
    ):
        barred = actions.add_parser(verb, help=f"{helped} an address range or a country")
        which = barred.add_mutually_exclusive_group(required=True)
        which.add_argument("--cidr", help="an address range, e.g. 127.144.0.0/12")
        which.add_argument("--country", help="a two-letter country code, e.g. CN")
        if verb == "block":
            barred.add_argument("--reason", default=None)
        barred.set_defaults(func=_block, verb=verb)
    blocks = actions.add_parser("blocks", help="show the operator's blocks and the throttle's address blocks")
    blocks.add_argument("--json", action="store_true")
    blocks.set_defaults(func=_blocks)
    lift = actions.add_parser("address-unblock", help="lift the throttle's automatic block of an address")
    lift.add_argument("address")
    lift.set_defaults(func=_address_unblock)
    alert = actions.add_parser("alert-lift", help="lift a risk alert: sign-ins from new places are no longer slowed")
    alert.add_argument("alert_id", type=int, metavar="ID", help="the alert's id, as GET /v1/admin/alerts lists it")
    alert.set_defaults(func=_alert_lift)

    reset = actions.add_parser("force-reset", help="force a password reset: sessions end, a reset code is mailed")
    who = reset.add_mutually_exclusive_group(required=True)
    who.add_argument("--account", type=int, action="append", dest="accounts", metavar="ACCOUNT_ID")
    who.add_argument("--all", action="store_true", help="every account")
    reset.add_argument("--revoke-devices", action="store_true", help="also revoke every device of those accounts")
    reset.set_defaults(func=_force_reset)


def _run(args: argparse.Namespace, work: Callable[[Core], int]) -> int:
    try:
        core = open_core(args, create=getattr(args, "creates", False))
    except (StoreError, SQLAlchemyError, ValueError, OSError) as error:
        return open_failure("admin", error)
    try:
        return work(core)
    except ProtocolError as error:
        print(f"possim admin: {error.code.value}: {error.message}", file=sys.stderr)
        return 1
    finally:
        core.close()


def _print(data: dict[str, Any]) -> int:
    print(json.dumps(data))
    return 0


def _key_add(args: argparse.Namespace) -> int:
    path: Path = args.secret_file

    def work(core: Core) -> int:
        made = admin_keys.create_key(core, args.name, args.scope, _actor())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(made.token)
        except OSError as error:
            admin_keys.revoke_key(core, made.key.name, _actor())  # no token anyone holds: no key
            print(f"possim admin: cannot write {path}: {error.strerror or error}", file=sys.stderr)
            return 1
        return _print(admin_keys.key_view(made.key) | {"secret_file": str(path)})

    return _run(args, work)


def _key_list(args: argparse.Namespace) -> int:
    return _run(args, lambda core: _print({"object": "list", "data": admin_keys.list_keys(core)}))


def _key_revoke(args: argparse.Namespace) -> int:
    return _run(args, lambda core: _print(admin_keys.key_view(admin_keys.revoke_key(core, args.name, _actor()))))


def _switch(args: argparse.Namespace) -> int:
    def work(core: Core) -> int:
        if args.verb == "pause":
            return _print({"paused": incident.pause(core, args.switch, _actor(), args.reason)})
        return _print({"resumed": incident.resume(core, args.switch, _actor())})

    return _run(args, work)


def _switches(args: argparse.Namespace) -> int:
    def work(core: Core) -> int:
        rows = incident.list_switches(core)
        if args.json:
            return _print({"object": "list", "data": rows})
        for row in rows:
            state = f"PAUSED since {row['since']} by {row['by']}" if row["paused"] else "running"
            reason = f" ({row['reason']})" if row.get("reason") else ""
            print(f"{row['name']:<12}{state}{reason}")
        return 0

    return _run(args, work)


def _block(args: argparse.Namespace) -> int:
    kind, value = ("cidr", args.cidr) if args.cidr is not None else ("country", args.country)

    def work(core: Core) -> int:
        spec = incident.block_spec(kind, value)
        if args.verb == "block":
            new = incident.block(core, spec, _actor(), args.reason)
            return _print({"kind": spec.kind, "value": spec.value, "blocked": True, "new": new})
        lifted = incident.unblock(core, spec, _actor())
        return _print({"kind": spec.kind, "value": spec.value, "blocked": False, "lifted": lifted})

    return _run(args, work)


def _blocks(args: argparse.Namespace) -> int:
    def work(core: Core) -> int:
        operator, throttle = incident.list_blocks(core), incident.list_address_blocks(core)
        if args.json:
            return _print({"object": "blocks", "operator": operator, "throttle": throttle})
        for row in operator:
            print(f"{row['kind']:<8}{row['value']:<20}since {row['since']} by {row['by']}")
        for row in throttle:
            print(f"address {row['address']:<20}until {row['until']} ({row['reason']}, {row['refused']} refused)")
        if not operator and not throttle:
            print("no blocks")
        return 0

    return _run(args, work)


def _address_unblock(args: argparse.Namespace) -> int:
    return _run(
        args,
        lambda core: _print(
            {"address": args.address, "lifted": incident.lift_address_block(core, args.address, _actor())}
        ),
    )


def _alert_lift(args: argparse.Namespace) -> int:
    return _run(args, lambda core: _print(incident.lift_alert(core, args.alert_id, _actor())))


def _force_reset(args: argparse.Namespace) -> int:
    def work(core: Core) -> int:
        ids = None if args.all else list(args.accounts)
        return _print(force_resets(core, ids, _actor(), revoke_devices=args.revoke_devices))

    return _run(args, work)
