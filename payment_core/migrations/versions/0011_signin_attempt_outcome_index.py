"""sign-in attempts are indexed by outcome and time, so the failures of the last minute are counted
without reading every attempt of that minute (a list attack makes thousands)

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_signin_attempts_outcome_at", "signin_attempts", ["outcome", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_signin_attempts_outcome_at", table_name="signin_attempts")
