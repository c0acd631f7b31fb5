"""wallet: phone, TOTP and e-mail verification on accounts; notifications; outbox; bank clearing book

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("email_verified_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("totp_salt", sa.LargeBinary(length=32), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("totp_failures", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("totp_locked_until", sa.DateTime(), nullable=True))

    op.create_table(
        "email_verifications",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_account_created", ["account_id", "created_at"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("to", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_to"), ["to"], unique=False)

    # Like the first clearing books: there from the start, so the first bank top-up never races to open it.
    ledger_accounts = sa.table(
        "ledger_accounts",
        sa.column("kind", sa.String),
        sa.column("name", sa.String),
        sa.column("balance", sa.BigInteger),
        sa.column("allow_negative", sa.Integer),
    )
    op.bulk_insert(
        ledger_accounts, [{"kind": "bank_clearing", "name": "bank_clearing", "balance": 0, "allow_negative": 1}]
    )


def downgrade() -> None:
    op.execute("DELETE FROM ledger_accounts WHERE name = 'bank_clearing' AND balance = 0")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_to"))
        batch_op.drop_index(batch_op.f("ix_outbox_created_at"))
    op.drop_table("outbox")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_account_created")
    op.drop_table("notifications")
    op.drop_table("email_verifications")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("totp_locked_until")
        batch_op.drop_column("totp_failures")
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_salt")
        batch_op.drop_column("email_verified_at")
        batch_op.drop_column("phone")
