"""The target's ``data.timestamp`` becomes ``timestamptz``: UTC instants, not naive UTC by habit.

Revision ID: t0004
Revises: t0003

The stored values were UTC window starts without a zone, so a reader whose session is in another
zone (Europe/Berlin on a DST day) saw them shifted or merged. Each value is kept as the same UTC
instant (``AT TIME ZONE 'UTC'``, whatever the session's TimeZone); the downgrade writes the
instants back as naive UTC.
"""

import sqlalchemy as sa
from alembic import op

revision = "t0004"
down_revision = "t0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Make the window starts UTC instants (``timestamptz``), values unchanged."""
    op.alter_column(
        "data",
        "timestamp",
        type_=sa.DateTime(timezone=True),
        existing_type=sa.DateTime(timezone=False),
        existing_nullable=False,
        postgresql_using="\"timestamp\" AT TIME ZONE 'UTC'",
    )


def downgrade() -> None:
    """Back to naive UTC window starts (``timestamp without time zone``)."""
    op.alter_column(
        "data",
        "timestamp",
        type_=sa.DateTime(timezone=False),
        existing_type=sa.DateTime(timezone=True),
        existing_nullable=False,
        postgresql_using="\"timestamp\" AT TIME ZONE 'UTC'",
    )
