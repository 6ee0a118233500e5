"""Signals per turbine: ``signal`` gains ``turbine``, ``variable`` and ``aggregation``.

Revision ID: t0003
Revises: t0002

The brief's names stay (``wind_speed_mean``); a name is unique per turbine. Existing signals
belong to the default turbine (``WTG01``); their variable and aggregation are read off the name.
"""

import sqlalchemy as sa
from alembic import op

revision = "t0003"
down_revision = "t0002"
branch_labels = None
depends_on = None

DEFAULT_TURBINE_ID = "WTG01"


def upgrade() -> None:
    """Add the columns, fill them for the existing signals, make (turbine, name) unique."""
    op.add_column(
        "signal",
        sa.Column(
            "turbine", sa.String(length=64), nullable=False, server_default=DEFAULT_TURBINE_ID
        ),
    )
    op.alter_column("signal", "turbine", server_default=None)
    op.add_column("signal", sa.Column("variable", sa.String(length=63), nullable=True))
    op.add_column("signal", sa.Column("aggregation", sa.String(length=16), nullable=True))
    op.execute(
        "UPDATE signal SET variable = substring(name from '^(.*)_[^_]+$'), "
        "aggregation = substring(name from '_([^_]+)$')"
    )
    op.drop_constraint("uq_signal_name", "signal", type_="unique")
    op.create_unique_constraint("uq_signal_turbine_name", "signal", ["turbine", "name"])


def downgrade() -> None:
    """Back to one turbine's signals (refused if several turbines share a name)."""
    op.drop_constraint("uq_signal_turbine_name", "signal", type_="unique")
    op.create_unique_constraint("uq_signal_name", "signal", ["name"])
    op.drop_column("signal", "aggregation")
    op.drop_column("signal", "variable")
    op.drop_column("signal", "turbine")
