"""The farm's daily figures: ``turbine_day_kpi`` and ``turbine_day_loss``.

Revision ID: t0008
Revises: t0007

Per turbine and UTC day, what ``windpipe kpis`` computes from the 10-minute aggregates and the
window categories (README, "Availability and energy"): energy, coverage, capacity factor, time in
operative and non-operative categories, both availabilities, lost production; and per category
present that day, its time and lost production.
"""

import sqlalchemy as sa
from alembic import op

revision = "t0008"
down_revision = "t0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``turbine_day_kpi`` and ``turbine_day_loss``."""
    number = sa.Float(precision=53)
    op.create_table(
        "turbine_day_kpi",
        sa.Column("turbine", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("windows_expected", sa.Integer(), nullable=False),
        sa.Column("windows_held", sa.Integer(), nullable=False),
        sa.Column("coverage", number, nullable=False),
        sa.Column("energy_kwh", number, nullable=False),
        sa.Column("rated_power_kw", number, nullable=True),
        sa.Column("capacity_factor", number, nullable=True),
        sa.Column("time_operative_s", number, nullable=False),
        sa.Column("time_non_operative_s", number, nullable=False),
        sa.Column("time_excluded_s", number, nullable=False),
        sa.Column("availability_time", number, nullable=True),
        sa.Column("lost_production_kwh", number, nullable=False),
        sa.Column("availability_energy", number, nullable=True),
        sa.Column("lost_unpriced_windows", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("turbine", "day", name="pk_turbine_day_kpi"),
    )
    op.create_table(
        "turbine_day_loss",
        sa.Column("turbine", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("time_s", number, nullable=False),
        sa.Column("lost_kwh", number, nullable=False),
        sa.PrimaryKeyConstraint("turbine", "day", "category", name="pk_turbine_day_loss"),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("turbine_day_loss")
    op.drop_table("turbine_day_kpi")
