"""cards linked to wallets, and the security codes tried while linking them

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linked_cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("card_key", sa.String(length=64), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("linked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "card_key", name="uq_linked_cards_account_card"),
    )
    with op.batch_alter_table("linked_cards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_linked_cards_account_id"), ["account_id"], unique=False)
    op.create_table(
        "card_code_tries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_key", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("right", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("card_code_tries", schema=None) as batch_op:
        batch_op.create_index("ix_card_code_tries_card_at", ["card_key", "at"], unique=False)
        batch_op.create_index("ix_card_code_tries_device_at", ["device_id", "at"], unique=False)
        batch_op.create_index("ix_card_code_tries_source_at", ["source", "at"], unique=False)


def downgrade() -> None:
    op.drop_table("card_code_tries")
    with op.batch_alter_table("linked_cards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_linked_cards_account_id"))
    op.drop_table("linked_cards")
