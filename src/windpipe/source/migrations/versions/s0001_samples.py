"""The source table of the brief: one row per sample, keyed by its UTC timestamp.

Revision ID: s0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "s0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``data(timestamp timestamptz primary key, wind_speed, power, temperature)``."""
    op.create_table(
        "data",
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("wind_speed", sa.Float(precision=53), nullable=True),
        sa.Column("power", sa.Float(precision=53), nullable=True),
        sa.Column("ambient_temperature", sa.Float(precision=53), nullable=True),
        sa.PrimaryKeyConstraint("timestamp", name="pk_data"),
    )


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("data")
