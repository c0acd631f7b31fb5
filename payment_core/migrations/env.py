"""Alembic environment: runs on the connection handed over by ``payment_core.db.migrate``."""

from __future__ import annotations

from alembic import context

from payment_core.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through payment_core.db.migrate(engine)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
