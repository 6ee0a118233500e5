"""``day_load`` counts the windows left out for holding too few samples (``min_coverage``).

Revision ID: t0007
Revises: t0006

A window holding fewer samples than ``[etl] min_coverage`` of the expected count is not written;
how many were left out per (turbine, day) is recorded with the load, for the Dagster check that
reports them. Days loaded before this revision left none out: 0.
"""

import sqlalchemy as sa
from alembic import op

revision = "t0007"
down_revision = "t0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``day_load.thin_windows``."""
    op.add_column(
        "day_load",
        sa.Column("thin_windows", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    """Drop ``day_load.thin_windows``."""
    op.drop_column("day_load", "thin_windows")
