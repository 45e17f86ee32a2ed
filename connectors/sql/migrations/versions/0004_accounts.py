"""API accounts, fleets (tenants), recurring departures, idempotency keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.String()
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("token_sha256", sa.String(), nullable=False),
        sa.Column("fleet_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_accounts"),
        sa.UniqueConstraint("token_sha256", name="uq_accounts_token_sha256"),
    )
    op.create_table(
        "vehicle_fleets",
        sa.Column("fleet_id", _ID, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("fleet_id", name="pk_vehicle_fleets"),
    )
    op.create_table(
        "fleet_members",
        sa.Column("vehicle_id", _ID, nullable=False),
        sa.Column("fleet_id", _ID, nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", name="pk_fleet_members"),
    )
    op.create_index("ix_fleet_members_fleet_id", "fleet_members", ["fleet_id"])
    op.create_table(
        "recurring_departures",
        sa.Column("vehicle_id", _ID, nullable=False),
        sa.Column("weekdays", sa.JSON(), nullable=False),
        sa.Column("local_time", sa.String(), nullable=False),
        sa.Column("timezone", sa.String(), nullable=False),
        sa.Column("target_soc", sa.Double(), nullable=True),
        sa.Column("energy_kwh", sa.Double(), nullable=True),
        sa.Column("min_soc", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", name="pk_recurring_departures"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "key", name="pk_idempotency_keys"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("recurring_departures")
    op.drop_index("ix_fleet_members_fleet_id", table_name="fleet_members")
    op.drop_table("fleet_members")
    op.drop_table("vehicle_fleets")
    op.drop_table("accounts")
