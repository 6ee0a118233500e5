"""What each load read: ``day_load``; and the target never holds NaN or infinities.

Revision ID: t0005
Revises: t0004

``day_load`` records, per (turbine, UTC day), the source fingerprint the aggregates were computed
from, the samples it had, the non-finite samples the transform dropped, and up to when the windows
were complete. Written in the load's transaction, so it always describes the rows the target holds:
a later source fingerprint means the day is stale. ``data.value`` gets a CHECK for finite values.
"""

import sqlalchemy as sa
from alembic import op

revision = "t0005"
down_revision = "t0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``day_load``; refuse non-finite values in ``data`` (after removing any)."""
    op.create_table(
        "day_load",
        sa.Column("turbine", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("samples", sa.BigInteger(), nullable=False),
        sa.Column("non_finite", sa.BigInteger(), nullable=False),
        sa.Column("complete_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("turbine", "day", name="pk_day_load"),
    )
    # A value that is not a number never was an aggregate: earlier releases could write one from a
    # NaN sample. Its window is recomputed, without it, by the next load of its day.
    op.execute("DELETE FROM data WHERE value IN ('NaN', 'Infinity', '-Infinity')")
    op.create_check_constraint(
        "finite", "data", "value NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)"
    )


def downgrade() -> None:
    """Drop the check and the table."""
    op.drop_constraint("ck_data_finite", "data", type_="check")
    op.drop_table("day_load")
