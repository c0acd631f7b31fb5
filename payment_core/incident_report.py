"""The incident report: what an attack did over a time window, read from the audit trail and the ledger
(``possim admin report``).

Every figure is a count of stored facts, so a test can count them again directly:

- **sign-in attempts**: audit events ``signin.new_device`` and ``signin.known_device`` (one per password
  check, result ``succeeded`` or ``failed``; a right password without the second factor is ``failed``);
  **held before the password**: ``signin.attempt`` events, result ``throttled`` (backoff, or held while
  the list-attack alert is up) or ``blocked`` (an operator's block, the throttle's block of an address,
  a range's hold), counted together and apart. The ``signin_attempts`` table is pruned after its window,
  so it is never read here.
- **accounts attacked**: distinct existing accounts with a failed sign-in (target ``account:N``);
  failures for addresses with no account are counted apart.
- **taken over**, **victims**, **yen lost**: as ``payment_core.victims`` defines them (a device enrolled
  from an address range new to an account that already had a phone, then used; money moved through it;
  what the ledger took from the wallet less what refunds put back), for payments within the window.
- **yen compensated**: the wallet postings of ``compensation`` journals made within the window.
- **blocks**: ``signin.list_attack`` events (an address blocked, or the service-wide alert raised) and
  ``signin.range_burst`` events (a range held); **operator actions**: events whose action starts with
  ``admin.`` or ``incident.`` (kill switches, blocks and keys an operator used), each with when and who,
  except looks that change nothing (``admin.read``) and refused admin credentials (``admin.auth``),
  which are counted apart as ``admin_auth_refused``.
- **by store**: the victims' payments and yen lost per store; **by hour** (UTC): attempts, failures,
  holds, blocks, operator actions and yen lost per hour (``possim admin report --plot`` draws them).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from payment_core.compensation import compensated_by_account
from payment_core.models import AuditEvent
from payment_core.victims import find_victims, takeover_devices

SIGNIN_ACTIONS = ("signin.new_device", "signin.known_device")
HELD_ACTION = "signin.attempt"
BLOCK_ACTIONS = ("signin.list_attack", "signin.range_burst")
OPERATOR_PREFIXES = ("admin.", "incident.")
NOT_OPERATOR_ACTIONS = ("admin.read", "admin.auth")
HELD_RESULTS = ("throttled", "blocked")
UNKNOWN_ACCOUNT = "account:unknown"


def _hour(at: datetime) -> str:
    return at.replace(minute=0, second=0, microsecond=0).isoformat()


def _events(session: Session, since: datetime, until: datetime) -> list[AuditEvent]:
    wanted = or_(
        AuditEvent.action.in_((*SIGNIN_ACTIONS, HELD_ACTION, *BLOCK_ACTIONS)),
        *(AuditEvent.action.startswith(prefix, autoescape=True) for prefix in OPERATOR_PREFIXES),
    )
    query = (
        select(AuditEvent)
        .where(wanted, AuditEvent.at >= since, AuditEvent.at < until)
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    return list(session.scalars(query))


def build_report(session: Session, since: datetime, until: datetime) -> dict[str, Any]:
    """The report over [since, until) (aware UTC times)."""
    if until <= since:
        raise ValueError("the report's --until must be after its --since")
    hours: dict[str, Counter[str]] = defaultdict(Counter)
    signins: Counter[str] = Counter()
    attacked: set[str] = set()
    blocks: list[dict[str, Any]] = []
    operator: list[dict[str, Any]] = []
    for event in _events(session, since, until):
        hour = hours[_hour(event.at)]
        if event.action in SIGNIN_ACTIONS:
            signins["attempts"] += 1
            signins[event.result] += 1
            hour["attempts"] += 1
            if event.result == "failed":
                hour["failed"] += 1
                if event.target == UNKNOWN_ACCOUNT:
                    signins["failed_unknown_account"] += 1
                else:
                    attacked.add(event.target)
        elif event.action == HELD_ACTION:
            if event.result in HELD_RESULTS:
                signins["held_before_password"] += 1
                signins[f"held_{event.result}"] += 1
                hour["held"] += 1
        elif event.action in BLOCK_ACTIONS:
            blocks.append(_event_view(event))
            hour["blocks"] += 1
        elif event.action == "admin.auth":
            signins["admin_auth_refused"] += 1
        elif event.action not in NOT_OPERATOR_ACTIONS:
            operator.append(_event_view(event))
            hour["operator_actions"] += 1
    victims = find_victims(session, since, until)
    stores: dict[str, Counter[str]] = defaultdict(Counter)
    for victim in victims:
        for payment in victim.payments:
            stores[payment["store"]]["payments"] += 1
            stores[payment["store"]]["yen_lost"] += payment["lost"]
            hours[_hour(datetime.fromisoformat(payment["at"]))]["yen_lost"] += payment["lost"]
    taken_over = {device.account_id for device in takeover_devices(session, since, until).values()}
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "signins": {
            "attempts": signins["attempts"],
            "succeeded": signins["succeeded"],
            "failed": signins["failed"],
            "failed_unknown_account": signins["failed_unknown_account"],
            "held_before_password": signins["held_before_password"],
            "held_throttled": signins["held_throttled"],
            "held_blocked": signins["held_blocked"],
        },
        "admin_auth_refused": signins["admin_auth_refused"],
        "accounts_attacked": len(attacked),
        "accounts_taken_over": len(taken_over),
        "victims": len(victims),
        "yen_lost": sum(victim.yen_lost for victim in victims),
        "yen_compensated": sum(compensated_by_account(session, since, until).values()),
        "victim_accounts": [victim.account_id for victim in victims],
        "blocks": blocks,
        "blocks_by_result": dict(Counter(block["result"] for block in blocks)),
        "operator_actions": operator,
        "operator_actions_by_action": dict(Counter(action["action"] for action in operator)),
        "by_store": {name: dict(figures) for name, figures in sorted(stores.items())},
        "by_hour": [
            {
                "hour": hour,
                **{
                    key: figures[key]
                    for key in ("attempts", "failed", "held", "blocks", "operator_actions", "yen_lost")
                },
            }
            for hour, figures in _every_hour(hours)
        ],
    }


def _every_hour(hours: dict[str, Counter[str]]) -> list[tuple[str, Counter[str]]]:
    """The hours from the first to the last with anything in them, the quiet ones too (zeros)."""
    if not hours:
        return []
    first, last = (datetime.fromisoformat(hour) for hour in (min(hours), max(hours)))
    count = int((last - first).total_seconds() // 3600) + 1
    return [(hour, hours.get(hour, Counter())) for hour in (_hour(first + timedelta(hours=n)) for n in range(count))]


def _event_view(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "result": event.result,
    }


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report in words, for the terminal."""
    signins = report["signins"]
    lines = [
        f"incident report {report['since']} to {report['until']}",
        f"sign-in attempts   {signins['attempts']:,} ({signins['failed']:,} failed, "
        f"{signins['failed_unknown_account']:,} of them for no account; "
        f"{signins['held_before_password']:,} more held before the password: "
        f"{signins['held_throttled']:,} slowed, {signins['held_blocked']:,} blocked)",
        f"accounts attacked  {report['accounts_attacked']:,}",
        f"taken over         {report['accounts_taken_over']:,}",
        f"victims            {report['victims']:,}",
        f"yen lost           {report['yen_lost']:,}",
        f"yen compensated    {report['yen_compensated']:,}",
        f"blocks and alerts  {len(report['blocks']):,}",
    ]
    lines.extend(f"  {b['at']} {b['result']} {b['target']}" for b in report["blocks"])
    lines.append(f"operator actions   {len(report['operator_actions']):,}")
    lines.extend(
        f"  {a['at']} {a['action']} {a['target']} by {a['actor']} ({a['result']})" for a in report["operator_actions"]
    )
    if report["by_store"]:
        lines.append("by store")
        lines.extend(
            f"  {name}: {figures['payments']} payments, {figures['yen_lost']:,} yen lost"
            for name, figures in report["by_store"].items()
        )
    if report["by_hour"]:
        lines.append("by hour (UTC)      attempts  failed  held  blocks  operator  yen lost")
        lines.extend(
            f"  {row['hour'][:13]}:00  {row['attempts']:>8}  {row['failed']:>6}  {row['held']:>4}  {row['blocks']:>6}"
            f"  {row['operator_actions']:>8}  {row['yen_lost']:>8,}"
            for row in report["by_hour"]
        )
    return lines
