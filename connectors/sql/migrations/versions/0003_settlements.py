"""Event baselines (the plan without the event) and event settlements.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.String()
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "event_baselines",
        sa.Column("event_id", _ID, nullable=False),
        sa.Column("modification_number", sa.Integer(), nullable=False),
        sa.Column("captured_at", _TS, nullable=False),
        sa.Column("grid_start", _TS, nullable=False),
        sa.Column("step_s", sa.Integer(), nullable=False),
        sa.Column("n_slots", sa.Integer(), nullable=False),
        sa.Column("site_power_json", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_event_baselines"),
    )
    op.create_table(
        "event_settlements",
        sa.Column("event_id", _ID, nullable=False),
        sa.Column("modification_number", sa.Integer(), nullable=False),
        sa.Column("settled_at", _TS, nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("baseline", sa.String(), nullable=True),
        sa.Column("delivered_kwh", sa.Double(), nullable=True),
        sa.Column("committed_kwh", sa.Double(), nullable=True),
        sa.Column("compliance", sa.Double(), nullable=True),
        sa.Column("body_json", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_event_settlements"),
    )


def downgrade() -> None:
    op.drop_table("event_settlements")
    op.drop_table("event_baselines")
