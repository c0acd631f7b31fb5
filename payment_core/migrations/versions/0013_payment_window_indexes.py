"""the risk rules' velocity windows are counted from two covering indexes of payments, (account, time,
phone) and (store, time, register), instead of reading each payment of the window from the table (and,
per account, every payment it ever made); the single-column indexes they make redundant are dropped

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_index("ix_payments_account_id")
        batch_op.drop_index("ix_payments_merchant_id")
        batch_op.drop_index("ix_payments_merchant_created")
        batch_op.create_index("ix_payments_account_window", ["account_id", "created_at", "device_id"], unique=False)
        batch_op.create_index("ix_payments_merchant_window", ["merchant_id", "created_at", "terminal_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_index("ix_payments_merchant_window")
        batch_op.drop_index("ix_payments_account_window")
        batch_op.create_index("ix_payments_merchant_created", ["merchant_id", "created_at"], unique=False)
        batch_op.create_index("ix_payments_merchant_id", ["merchant_id"], unique=False)
        batch_op.create_index("ix_payments_account_id", ["account_id"], unique=False)
