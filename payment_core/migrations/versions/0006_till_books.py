"""ledger: a book for each register (till:<terminal id>, kind merchant, owned by its store)

Payments credit their register's book, so no ledger row is locked by every payment of a store. A store's
own book stays with what it already holds; a refund of an older payment takes from the book that payment
paid into.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "INSERT INTO ledger_accounts (kind, owner_id, name, balance, allow_negative) "
            "SELECT 'merchant', t.merchant_id, 'till:' || t.id, 0, 0 FROM terminals t "
            "WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts b WHERE b.name = 'till:' || t.id)"
        )
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM ledger_accounts WHERE name LIKE 'till:%' AND balance = 0"))
