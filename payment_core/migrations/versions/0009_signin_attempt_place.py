"""sign-in attempts keep the address range they came from, so a slow burst from one range is seen

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signin_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("place", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_signin_attempts_place_at", ["place", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signin_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_signin_attempts_place_at")
        batch_op.drop_column("place")
