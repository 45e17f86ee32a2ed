"""Demand-response events as received from a utility's VTN, with our opt decision.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.String()
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dr_events",
        sa.Column("event_id", _ID, nullable=False),
        sa.Column("modification_number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("opt", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("event_json", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_dr_events"),
    )


def downgrade() -> None:
    op.drop_table("dr_events")
