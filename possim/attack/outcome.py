"""What an attack replay cost, counted directly from the core's database once its server has stopped: the
ledger for money, the devices for takeovers, the audit for when the core first saw the attack. The
incident report (``payment_core.incident_report``) over the same window must say the same
(``tests/test_attack.py``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from payment_core.incident_report import build_report

_STAMP = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime on SQLite
_LOOT = (
    " FROM payments p JOIN journals j ON j.kind = 'payment' AND j.reference = p.id"
    " JOIN postings po ON po.journal_id = j.id JOIN ledger_accounts l ON l.id = po.ledger_account_id"
    " WHERE l.kind = 'wallet' AND p.device_id IN :devices AND p.created_at >= :s AND p.created_at < :u"
)
_QUERIES = {
    "accounts_taken_over": "SELECT count(DISTINCT account_id) FROM devices WHERE id IN :devices",
    "victims": "SELECT count(DISTINCT p.account_id)" + _LOOT,
    "taken": "SELECT coalesce(-sum(po.amount), 0)" + _LOOT,
    "refunded": "SELECT coalesce(sum(po.amount), 0) FROM refunds r JOIN journals j ON j.kind = 'refund'"
    " AND j.reference = r.id JOIN postings po ON po.journal_id = j.id JOIN ledger_accounts l"
    " ON l.id = po.ledger_account_id JOIN payments p ON p.id = r.payment_id"
    " WHERE l.kind = 'wallet' AND p.device_id IN :devices AND p.created_at >= :s AND p.created_at < :u",
    "last_loss": "SELECT max(p.created_at)" + _LOOT,
    "payments_declined_by_risk": "SELECT count(*) FROM payments WHERE decline_code = 'risk_declined'"
    " AND created_at >= :s AND created_at < :u",
    "sign_ins_reaching_a_password": "SELECT count(*) FROM audit_events"
    " WHERE action IN ('signin.new_device', 'signin.known_device') AND at >= :s AND at < :u",
    "card_topups_after_pause": "SELECT count(*) FROM topups WHERE method = 'card' AND status = 'succeeded'"
    " AND created_at >= (SELECT min(at) FROM audit_events WHERE action = 'incident.pause' AND at >= :s)"
    " AND created_at < :u",
    "first_seen": "SELECT min(at) FROM audit_events"
    " WHERE action IN ('signin.list_attack', 'signin.range_burst') AND at >= :s AND at < :u",
    "reset_codes_mailed_elsewhere": "SELECT count(*) FROM audit_events WHERE action = 'password.reset_request'"
    " AND detail LIKE '%\"sent_to_another_address\": true%' AND at >= :s AND at < :u",
}


def _found(db: Path, queries: dict[str, str], params: dict[str, Any]) -> dict[str, Any]:
    """Each query's one value; a list parameter (``IN :name``) is expanded."""
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return {name: _one(conn, sql, params) for name, sql in queries.items()}
    finally:
        engine.dispose()


def _one(conn: Connection, sql: str, params: dict[str, Any]) -> Any:
    statement = text(sql)
    for name, value in params.items():
        if isinstance(value, list) and f":{name}" in sql:
            statement = statement.bindparams(bindparam(name, expanding=True))
    return conn.execute(statement, params).scalar()


def _window(since: datetime, until: datetime) -> dict[str, str]:
    return {"s": since.replace(tzinfo=None).strftime(_STAMP), "u": until.replace(tzinfo=None).strftime(_STAMP)}


def count(db: Path, attacker_devices: list[int], since: datetime, until: datetime) -> dict[str, Any]:
    """Direct counts over [since, until) for the attacker's devices (aware UTC times)."""
    found = _found(db, _QUERIES, _window(since, until) | {"devices": attacker_devices})
    engine = create_engine(f"sqlite:///{db}")
    try:
        with Session(engine) as session:
            report = build_report(session, since, until)
    finally:
        engine.dispose()
    figures: dict[str, Any] = {
        name: int(found[name] or 0)
        for name in (
            "accounts_taken_over",
            "victims",
            "payments_declined_by_risk",
            "sign_ins_reaching_a_password",
            "card_topups_after_pause",
            "reset_codes_mailed_elsewhere",
        )
    }
    figures["yen_lost"] = int(found["taken"] or 0) - int(found["refunded"] or 0)
    return figures | _timing(found, since) | {"report": report}


def _timing(found: dict[str, Any], since: datetime) -> dict[str, float | None]:
    """When the core first flagged the attack (None: never) and when losses stopped (0.0: none began)."""
    last_loss = found["last_loss"]
    return {
        "detected_at_s": _seconds(found["first_seen"], since),
        "contained_at_s": _seconds(last_loss, since) if last_loss is not None else 0.0,
    }


def _seconds(stamp: Any, since: datetime) -> float | None:
    if stamp is None:
        return None
    moment = stamp if isinstance(stamp, datetime) else datetime.strptime(str(stamp), _STAMP)
    return round((moment - since.replace(tzinfo=None)).total_seconds(), 1)


_CARD_QUERIES = {
    "cards_linked": "SELECT count(*) FROM linked_cards WHERE account_id IN :mules",
    "yen_lost": "SELECT coalesce(sum(amount), 0) FROM topups WHERE method = 'card' AND status = 'succeeded'"
    " AND account_id IN :mules AND created_at >= :s AND created_at < :u",
    "last_loss": "SELECT max(created_at) FROM topups WHERE method = 'card' AND status = 'succeeded'"
    " AND account_id IN :mules AND created_at >= :s AND created_at < :u",
    "payments_declined_by_risk": _QUERIES["payments_declined_by_risk"],
    "cards_blocked": "SELECT count(*) FROM audit_events WHERE action = 'card.testing' AND at >= :s AND at < :u",
    "first_seen": "SELECT min(at) FROM audit_events WHERE action = 'card.testing' AND at >= :s AND at < :u",
}


def count_card_testing(db: Path, mule_accounts: list[int], since: datetime, until: datetime) -> dict[str, Any]:
    """Direct counts of a card-testing run: the cards the attacker's own accounts linked, the money their
    top-ups took from those cards, when the core first saw a card being tested."""
    found = _found(db, _CARD_QUERIES, _window(since, until) | {"mules": mule_accounts})
    figures: dict[str, Any] = {
        name: int(found[name] or 0)
        for name in (
            "cards_linked",
            "yen_lost",
            "payments_declined_by_risk",
            "cards_blocked",
        )
    }
    return figures | _timing(found, since)
