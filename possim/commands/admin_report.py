"""``possim admin victims | compensate | sweep | prune | report``: the incident controls, and the retention job.

- ``victims`` lists the suspected victims of account takeover with the evidence (``payment_core.victims``);
- ``compensate`` pays a victim back from the operator's loss book, once per compensation id;
- ``sweep`` closes every payment nobody confirmed in time;
- ``report`` sums an incident up from the audit trail and the ledger, with ``--plot`` a PNG of it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from payment_core.compensation import compensate
from payment_core.core import Core
from payment_core.incident_report import build_report, report_lines
from payment_core.retention import prune
from payment_core.sweep import sweep_unanswered
from payment_core.victims import find_victims, victim_lines
from possim.runtime import StoreError, open_core, open_failure
from protocol import ProtocolError


class BadInput(Exception):
    """A value the operator typed that cannot be used: one line to stderr, exit 2."""


def _actor() -> str:
    return f"admin:{getpass.getuser()}"


def register_actions(actions: Any) -> None:
    """Add the incident subcommands to ``possim admin``'s subparsers."""
    victims = actions.add_parser("victims", help="accounts whose money moved after signs of a takeover, with evidence")
    victims.add_argument("--since", metavar="ISO_TIME", help="payments from this time (UTC unless it says)")
    victims.add_argument("--until", metavar="ISO_TIME", help="payments before this time")
    victims.add_argument("--json", action="store_true")
    victims.set_defaults(func=_victims)

    pay = actions.add_parser("compensate", help="pay a victim back from the operator's loss book (once per id)")
    pay.add_argument("account_id", type=int)
    pay.add_argument("--amount", type=int, required=True, help="whole yen")
    pay.add_argument("--id", dest="compensation_id", required=True, help="the compensation id: a repeat pays nothing")
    pay.add_argument("--reason", default="", help="why, for the audit trail")
    pay.add_argument("--json", action="store_true")
    pay.set_defaults(func=_compensate)

    sweep = actions.add_parser("sweep", help="close payments nobody confirmed within the confirmation window")
    sweep.add_argument("--json", action="store_true")
    sweep.set_defaults(func=_sweep)

    prune = actions.add_parser("prune", help="forget the replay and guessing records no window reads any more")
    prune.add_argument("--json", action="store_true")
    prune.set_defaults(func=_prune)

    report = actions.add_parser("report", help="an incident's figures from the audit trail and the ledger")
    report.add_argument("--since", metavar="ISO_TIME", required=True, help="from this time (UTC unless it says)")
    report.add_argument("--until", metavar="ISO_TIME", help="before this time (default: now)")
    report.add_argument("--json", action="store_true")
    report.add_argument("--plot", type=Path, metavar="FILE.png", help="draw attempts, blocks and losses per hour")
    report.set_defaults(func=_report)


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{option}: not an ISO 8601 time: {value!r} (e.g. 2019-07-03T09:00)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _run(args: argparse.Namespace, work: Callable[[Core], int]) -> int:
    try:
        core = open_core(args)
    except (StoreError, SQLAlchemyError, ValueError, OSError) as error:
        return open_failure("admin", error)
    try:
        return work(core)
    except BadInput as error:
        print(f"possim admin {args.action}: {error}", file=sys.stderr)
        return 2
    except ProtocolError as error:
        print(f"possim admin {args.action}: {error.code.value}: {error.message}", file=sys.stderr)
        return 1
    finally:
        core.close()


def _victims(args: argparse.Namespace) -> int:
    def work(core: Core) -> int:
        since, until = parse_time(args.since, "--since"), parse_time(args.until, "--until")
        with core.read() as session:
            victims = find_victims(session, since, until)
        if args.json:
            print(json.dumps({"victims": [victim.as_json() for victim in victims]}))
        else:
            print("\n".join(victim_lines(victims)))
        return 0

    return _run(args, work)


def _compensate(args: argparse.Namespace) -> int:
    def work(core: Core) -> int:
        paid = compensate(core, args.account_id, args.amount, args.compensation_id, _actor(), args.reason)
        summary = {
            "compensation_id": paid.compensation_id,
            "account_id": paid.account_id,
            "amount": paid.amount,
            "at": paid.at.isoformat(),
            "replayed": paid.replayed,
        }
        if args.json:
            print(json.dumps(summary))
        else:
            done = "already paid" if paid.replayed else "paid"
            print(f"{paid.compensation_id}: {done} {paid.amount:,} yen to account {paid.account_id} ({summary['at']})")
        return 0

    return _run(args, work)


def _sweep(args: argparse.Namespace) -> int:
    def work(core: Core) -> int:
        closed = sweep_unanswered(core, actor=_actor())
        if args.json:
            print(json.dumps({"closed": closed}))
        else:
            print(f"closed {len(closed)} payments nobody confirmed in time")
        return 0

    return _run(args, work)


def _prune(args: argparse.Namespace) -> int:
    def work(core: Core) -> int:
        deleted = prune(core, actor=_actor())
        if args.json:
            print(json.dumps({"deleted": deleted}))
        else:
            rows = ", ".join(f"{table} {count:,}" for table, count in deleted.items() if count) or "nothing was due"
            print(f"pruned {sum(deleted.values()):,} rows: {rows}")
        return 0

    return _run(args, work)


def _report(args: argparse.Namespace) -> int:
    def work(core: Core) -> int:
        since = parse_time(args.since, "--since")
        until = parse_time(args.until, "--until") or core.now()
        assert since is not None  # required by the parser
        if until <= since:
            raise BadInput("--until must be after --since")
        if args.plot is not None and args.plot.suffix.lower() != ".png":
            raise BadInput(f"--plot: the chart is a PNG; name it FILE.png, not {args.plot.name!r}")
        with core.read() as session:
            report = build_report(session, since, until)
        if args.plot is not None:
            try:
                draw(report, args.plot)
            except OSError as error:
                raise BadInput(f"--plot: cannot write {args.plot}: {error.strerror}") from None
            report["plot"] = str(args.plot)
        print(json.dumps(report) if args.json else "\n".join(report_lines(report)))
        return 0

    return _run(args, work)


def draw(report: dict[str, Any], path: Path) -> None:
    """A PNG of sign-in attempts, failures and blocks (left axis) and yen lost (right axis) per hour."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = report["by_hour"]
    hours = [f"{datetime.fromisoformat(row['hour']):%m-%d %H:00}" for row in rows]  # one category an hour
    figure = Figure(figsize=(9, 4.5))
    FigureCanvasAgg(figure)
    counts = figure.add_subplot()
    counts.plot(hours, [row["attempts"] for row in rows], "o-", color="#3182bd", label="sign-in attempts")
    counts.plot(hours, [row["failed"] for row in rows], "o:", color="#6baed6", label="failed")
    counts.plot(hours, [row["blocks"] for row in rows], "s-", color="#e6550d", label="blocks and alerts")
    counts.set_ylabel("events per hour")
    counts.set_xlabel("hour (UTC)")
    losses = counts.twinx()
    losses.plot(hours, [row["yen_lost"] for row in rows], "^--", color="#a50f15", label="yen lost")
    losses.set_ylabel("yen lost per hour")
    lines, labels = counts.get_legend_handles_labels()
    more_lines, more_labels = losses.get_legend_handles_labels()
    counts.legend(lines + more_lines, labels + more_labels, loc="upper left")
    counts.set_title(f"Incident {report['since'][:16]} to {report['until'][:16]} (UTC)")
    figure.autofmt_xdate()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
