"""Time-series points (docs/timeseries.md): the embedded default of the TimeSeriesStore.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in connectors/sql (a migration must not change when they do).
_TS = sa.DateTime(timezone=True)
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "timeseries_points",
        sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("measurement", sa.String(), nullable=False),
        sa.Column("ts", _TS, nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_timeseries_points"),
    )
    op.create_index(
        "ix_timeseries_points_measurement_ts", "timeseries_points", ["measurement", "ts"]
    )


def downgrade() -> None:
    op.drop_index("ix_timeseries_points_measurement_ts", table_name="timeseries_points")
    op.drop_table("timeseries_points")
