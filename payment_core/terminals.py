"""Stores and registers, provisioned by an admin. A terminal's secret is shown once, never stored."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sqlalchemy import select

from payment_core import audit
from payment_core.audit import AuditOutcome
from payment_core.core import Core
from payment_core.keys import new_salt, terminal_secret
from payment_core.ledger import merchant_book_name, open_book, till_book_name
from payment_core.models import Merchant, Terminal


@dataclass(frozen=True)
class Provisioned:
    terminal: Terminal
    secret: bytes = field(repr=False)  # shown to the admin once, never stored


def ensure_merchant(core: Core, name: str, actor: str) -> Merchant:
    now = core.now()
    with core.transaction() as session:
        merchant = session.scalars(select(Merchant).where(Merchant.name == name)).one_or_none()
        if merchant is None:
            merchant = Merchant(name=name, created_at=now)
            session.add(merchant)
            session.flush()
            open_book(session, "merchant", merchant_book_name(merchant.id), owner_id=merchant.id)
            audit.record(
                session,
                at=now,
                actor=actor,
                action="merchant.create",
                target=f"merchant:{merchant.id}",
                result=AuditOutcome.SUCCEEDED,
                name=name,
            )
        return merchant


def provision_terminal(core: Core, store: str, name: str, actor: str) -> Provisioned:
    merchant = ensure_merchant(core, store, actor)
    now = core.now()
    salt = new_salt()
    with core.transaction() as session:
        terminal = Terminal(
            id=f"term_{secrets.token_hex(8)}",
            merchant_id=merchant.id,
            name=name,
            secret_salt=salt,
            status="active",
            created_at=now,
        )
        session.add(terminal)
        open_book(session, "merchant", till_book_name(terminal.id), owner_id=merchant.id)
        audit.record(
            session,
            at=now,
            actor=actor,
            action="terminal.provision",
            target=terminal.id,
            result=AuditOutcome.SUCCEEDED,
            store=store,
        )
    return Provisioned(terminal, terminal_secret(core.config.server_key, terminal.id, salt))
