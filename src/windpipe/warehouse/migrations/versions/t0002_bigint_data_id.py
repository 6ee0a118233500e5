"""``data.id`` becomes bigint: every re-run of a day takes new ids, and int4 runs out.

Revision ID: t0002
Revises: t0001

One turbine's every-10-minutes refresh of today takes ~166 k ids a day; a fleet of 100 would
exhaust int4 in months. The column and its sequence are widened; values are unchanged. PostgreSQL
rewrites the table to do it, so a large target takes a while, once.
"""

import sqlalchemy as sa
from alembic import op

revision = "t0002"
down_revision = "t0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Widen ``data.id`` and its sequence to bigint."""
    op.alter_column("data", "id", type_=sa.BigInteger(), existing_nullable=False)
    op.execute("ALTER SEQUENCE data_id_seq AS bigint")


def downgrade() -> None:
    """Narrow ``data.id`` back to integer (fails if an id no longer fits)."""
    op.execute("ALTER SEQUENCE data_id_seq AS integer")
    op.alter_column("data", "id", type_=sa.Integer(), existing_nullable=False)
