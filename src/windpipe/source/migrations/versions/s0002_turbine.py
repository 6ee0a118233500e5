"""The source becomes a fleet: every sample belongs to a turbine.

Revision ID: s0002
Revises: s0001

The rows of the single-turbine table move to the default turbine id (``WTG01``); the primary
key becomes ``(turbine, timestamp)``, which is also the index a turbine's range scan uses.
"""

import sqlalchemy as sa
from alembic import op

revision = "s0002"
down_revision = "s0001"
branch_labels = None
depends_on = None

#: catalog.DEFAULT_TURBINE_ID when this migration was written (a migration never changes).
DEFAULT_TURBINE_ID = "WTG01"


def upgrade() -> None:
    """Add ``turbine`` (existing rows: the default turbine) and key the table by it."""
    op.add_column(
        "data",
        sa.Column("turbine", sa.Text(), nullable=False, server_default=DEFAULT_TURBINE_ID),
    )
    op.alter_column("data", "turbine", server_default=None)
    op.drop_constraint("pk_data", "data", type_="primary")
    op.create_primary_key("pk_data", "data", ["turbine", "timestamp"])


def downgrade() -> None:
    """Back to one turbine: refused if the table holds another turbine's rows."""
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM data WHERE turbine <> 'WTG01') THEN "
        "RAISE EXCEPTION 'the source holds several turbines'; END IF; END $$"
    )
    op.drop_constraint("pk_data", "data", type_="primary")
    op.create_primary_key("pk_data", "data", ["timestamp"])
    op.drop_column("data", "turbine")
