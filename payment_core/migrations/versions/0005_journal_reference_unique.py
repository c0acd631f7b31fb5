"""journals: one journal per (kind, reference), so the ledger itself refuses a double posting

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("uq_journals_kind_reference", "journals", ["kind", "reference"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_journals_kind_reference", table_name="journals")
