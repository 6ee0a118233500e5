"""Turbine events: what a turbine's controller or its operator said, from when to when.

Revision ID: s0005
Revises: s0004

``turbine_event`` holds one row per event: the turbine, when it began, when it ended (NULL while it
is ongoing), its code and the message that came with it. ``windpipe events import`` upserts by
``(turbine, start, code)`` (the primary key), so an export imported twice gives the same rows and
an ongoing event imported again with its end is closed. The API's ``GET /events`` reads it; the
window categories of IEC 61400-26-1 are derived from it (``catalog.window_categories``).
"""

import sqlalchemy as sa
from alembic import op

revision = "s0005"
down_revision = "s0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table."""
    op.create_table(
        "turbine_event",
        sa.Column("turbine", sa.Text(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.CheckConstraint('"end" IS NULL OR "end" > start', name="ck_turbine_event_end"),
        sa.PrimaryKeyConstraint("turbine", "start", "code", name="pk_turbine_event"),
    )


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("turbine_event")
