"""``possim outbox``: the simulated mail and SMS the core sent (verification codes, new-device notices).

The outbox is the simulated user's mailbox: a verification code is read here, as from a real mail.
A message is printed with its control characters escaped (``\x1b``, ``\u202e``; a body keeps its line
breaks and tabs), in the text form and in ``--json`` alike, so what a sender typed never reaches the terminal
as an escape sequence.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from payment_core import outbox
from payment_core.core import Core
from possim.runtime import StoreError, add_store_arguments, open_core, open_failure

_CODE = re.compile(r"verification code is (\d{6})")
# What a terminal may act on or that makes text read other than it is: C0, DEL and C1 controls, line and
# paragraph separators, the bidirectional controls. JSON escapes C0 itself; the rest are escaped here.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_NOT_RAW_IN_JSON = re.compile(f"[\x7f-\x9f\u2028\u2029{_BIDI}]")
_BIDI_CONTROLS = re.compile(f"[{_BIDI}]")


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_lines: bool = False) -> str:
    """``text`` with every control character escaped (line breaks and tabs kept when ``keep_lines``)."""
    kept = "\n\t" if keep_lines else ""
    return "".join(
        char
        if char in kept or not (unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or _BIDI_CONTROLS.match(char))
        else _escaped(char)
        for char in text
    )


def json_line(view: dict[str, Any]) -> str:
    """One JSON object on one line, readable non-ASCII text kept, no control character raw."""
    line = json.dumps(view, ensure_ascii=False)  # C0 controls (ESC, NUL, line breaks) come out as \u00XX
    return _NOT_RAW_IN_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", line)


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
            print(json_line(view))
            continue
        to, subject = printable(str(view["to"])), printable(str(view["subject"]))
        print(f"--- {view['created']}  {view['channel']} to {to}: {subject}")
        print(printable(str(view["body"]).rstrip(), keep_lines=True))
    if not found and not args.json:
        print("(the outbox is empty)", file=sys.stderr)
    return 0
