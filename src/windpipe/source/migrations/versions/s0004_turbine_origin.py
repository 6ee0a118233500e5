"""Each turbine's origin: synthetic (made by ``windpipe seed``) or imported (real data).

Revision ID: s0004
Revises: s0003

``turbine_origin`` lets the seed and the live feed tell the turbines they may generate from those
that hold real data: ``windpipe seed`` records ``synthetic`` for every turbine it writes, and
``windpipe import`` records ``imported`` for every turbine it writes (an import into a synthetic
turbine makes it imported: from then on the seed and the feed leave it alone). A turbine with
samples and no row here was written before this revision or by another program; the live feed
leaves it alone unless the configuration marks it ``synthetic = true``.
"""

import sqlalchemy as sa
from alembic import op

revision = "s0004"
down_revision = "s0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table."""
    op.create_table(
        "turbine_origin",
        sa.Column("turbine", sa.Text(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column(
            "changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("origin IN ('synthetic', 'imported')", name="ck_turbine_origin_origin"),
        sa.PrimaryKeyConstraint("turbine", name="pk_turbine_origin"),
    )


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("turbine_origin")
