"""The target tables of the brief, exactly as the first release created them.

Revision ID: t0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "t0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``signal(id serial, name unique)`` and ``data(id serial, timestamp, ...)``."""
    op.create_table(
        "signal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signal"),
        sa.UniqueConstraint("name", name="uq_signal_name"),
    )
    op.create_table(
        "data",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=False), nullable=False),
        sa.Column("signal_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_data"),
        sa.UniqueConstraint("signal_id", "timestamp", name="uq_data_signal_id_timestamp"),
        sa.ForeignKeyConstraint(["signal_id"], ["signal.id"], name="fk_data_signal_id_signal"),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("data")
    op.drop_table("signal")
