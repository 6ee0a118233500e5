"""``window_flag`` and ``flag_day``: the quality flags of each turbine's windows.

Revision ID: t0009
Revises: t0008

Flags (out of range, flatline, icing suspect, stopped with wind) mark windows; the aggregates in
``data`` are never changed or deleted. ``flag_day`` records which (turbine, UTC day)s have their
flags computed. It follows t0008, the daily figures' tables.
"""

import sqlalchemy as sa
from alembic import op

revision = "t0009"
down_revision = "t0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``window_flag`` and ``flag_day``."""
    op.create_table(
        "window_flag",
        sa.Column("turbine", sa.String(64), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flag", sa.String(32), nullable=False),
        sa.Column("signal", sa.String(255), nullable=False, server_default=sa.text("''")),
        sa.PrimaryKeyConstraint("turbine", "timestamp", "flag", "signal", name="pk_window_flag"),
    )
    op.create_table(
        "flag_day",
        sa.Column("turbine", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("turbine", "day", name="pk_flag_day"),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("flag_day")
    op.drop_table("window_flag")
