"""``possim outbox``: the simulated mail and SMS the core sent (verification codes, new-device notices).

The outbox is the simulated user's mailbox: a verification code is read here, as from a real mail.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from payment_core import outbox
from payment_core.core import Core
from possim.runtime import StoreError, add_store_arguments, open_core, open_failure

_CODE = re.compile(r"verification code is (\d{6})")


def mailed_code(core: Core, address: str) -> str:
    """The code in the newest verification mail to ``address``: what the demo's user reads in the mail
    (sign-up mails are sent after the core's answer: this waits for that work first)."""
    core.drain()
    for message in outbox.messages(core, to=address):
        found = _CODE.search(message.body)
        if found:
            return found.group(1)
    raise LookupError(f"no verification mail to {address}")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("outbox", help="read the simulated mail and SMS")
    add_store_arguments(parser)
    parser.add_argument("--to", default=None, help="only the messages to this address or number")
    parser.add_argument("--json", action="store_true", help="one JSON object a line")
    parser.add_argument("--limit", type=int, default=20, help="the newest N messages (default 20)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        print("possim outbox: --limit must be at least 1", file=sys.stderr)
        return 2
    try:
        core = open_core(args)
    except (StoreError, SQLAlchemyError, ValueError, OSError) as error:
        return open_failure("outbox", error)
    try:
        found = outbox.messages(core, to=args.to, limit=args.limit)
    finally:
        core.close()
    for message in reversed(found):  # oldest first, like a terminal scrolling
        view = outbox.message_view(message)
        if args.json:
            print(json.dumps(view, ensure_ascii=False))
            continue
        print(f"--- {view['created']}  {view['channel']} to {view['to']}: {view['subject']}")
        print(str(view["body"]).rstrip())
    if not found and not args.json:
        print("(the outbox is empty)", file=sys.stderr)
    return 0
