"""Initial schema: fleet assets, departure constraints, sessions, grid events, plans,
setpoints and telemetry.

Revision ID: 0001
Revises:
Create Date: 2026-05-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in connectors/sql (a migration must not change when they do).
_ID = sa.String()
_FLOAT: sa.Double[float] = sa.Double()
_TS = sa.DateTime(timezone=True)
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("site_id", _ID, nullable=False),
        sa.Column("import_limit_kw", _FLOAT, nullable=False),
        sa.Column("export_limit_kw", _FLOAT, nullable=False),
        sa.Column("base_load_kw", sa.JSON(), nullable=False),
        sa.Column("pv_kw", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("site_id", name="pk_sites"),
    )
    op.create_table(
        "site_batteries",
        sa.Column("site_id", _ID, nullable=False),
        sa.Column("capacity_kwh", _FLOAT, nullable=False),
        sa.Column("max_charge_kw", _FLOAT, nullable=False),
        sa.Column("max_discharge_kw", _FLOAT, nullable=False),
        sa.Column("charge_efficiency", _FLOAT, nullable=False),
        sa.Column("discharge_efficiency", _FLOAT, nullable=False),
        sa.Column("initial_soc", _FLOAT, nullable=False),
        sa.Column("min_soc", _FLOAT, nullable=False),
        sa.PrimaryKeyConstraint("site_id", name="pk_site_batteries"),
    )
    op.create_table(
        "chargers",
        sa.Column("charger_id", _ID, nullable=False),
        sa.Column("site_id", _ID, nullable=False),
        sa.Column("max_charge_kw", _FLOAT, nullable=False),
        sa.Column("max_discharge_kw", _FLOAT, nullable=False),
        sa.PrimaryKeyConstraint("charger_id", name="pk_chargers"),
    )
    op.create_index("ix_chargers_site_id", "chargers", ["site_id"])
    op.create_table(
        "vehicles",
        sa.Column("vehicle_id", _ID, nullable=False),
        sa.Column("battery_kwh", _FLOAT, nullable=False),
        sa.Column("max_charge_kw", _FLOAT, nullable=False),
        sa.Column("max_discharge_kw", _FLOAT, nullable=False),
        sa.Column("v2g_allowed", sa.Boolean(), nullable=False),
        sa.Column("charge_efficiency", _FLOAT, nullable=False),
        sa.Column("discharge_efficiency", _FLOAT, nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", name="pk_vehicles"),
    )
    op.create_table(
        "departure_constraints",
        sa.Column("vehicle_id", _ID, nullable=False),
        sa.Column("departure_at", _TS, nullable=False),
        sa.Column("target_soc", _FLOAT, nullable=True),
        sa.Column("energy_kwh", _FLOAT, nullable=True),
        sa.Column("min_soc", _FLOAT, nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", name="pk_departure_constraints"),
    )
    op.create_table(
        "sessions",
        sa.Column("session_id", _ID, nullable=False),
        sa.Column("vehicle_id", _ID, nullable=False),
        sa.Column("charger_id", _ID, nullable=False),
        sa.Column("arrival", _TS, nullable=False),
        sa.Column("departure", _TS, nullable=False),
        sa.Column("arrival_soc", _FLOAT, nullable=False),
        sa.Column("target_soc", _FLOAT, nullable=True),
        sa.Column("energy_kwh", _FLOAT, nullable=True),
        sa.Column("min_soc", _FLOAT, nullable=False),
        sa.Column("closed_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("session_id", name="pk_sessions"),
    )
    op.create_index("ix_sessions_closed_at", "sessions", ["closed_at"])
    op.create_table(
        "grid_events",
        sa.Column("event_id", _ID, nullable=False),
        sa.Column("start_at", _TS, nullable=False),
        sa.Column("end_at", _TS, nullable=False),
        sa.Column("site_ids", sa.JSON(), nullable=False),
        sa.Column("cap_kw", _FLOAT, nullable=True),
        sa.Column("shed_kw", _FLOAT, nullable=True),
        sa.Column("modification_number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("received_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_grid_events"),
    )
    op.create_table(
        "plans",
        sa.Column("plan_id", _ID, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("solver_path", sa.String(), nullable=False),
        sa.Column("solver_status", sa.String(), nullable=False),
        sa.Column("objective", sa.Double(), nullable=False),
        sa.Column("shortfall_kwh", sa.Double(), nullable=False),
        sa.Column("superseded", sa.Boolean(), nullable=False),
        sa.Column("plan_json", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", name="pk_plans"),
    )
    op.create_index("ix_plans_created_at", "plans", ["created_at"])
    op.create_table(
        "setpoints",
        sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("charger_id", _ID, nullable=False),
        sa.Column("site_id", _ID, nullable=False),
        sa.Column("power_kw", _FLOAT, nullable=False),
        sa.Column("issued_at", _TS, nullable=False),
        sa.Column("valid_until", _TS, nullable=False),
        sa.Column("plan_id", _ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_setpoints"),
    )
    op.create_index("ix_setpoints_seq", "setpoints", ["seq"])
    op.create_index("ix_setpoints_issued_at", "setpoints", ["issued_at"])
    op.create_table(
        "telemetry",
        sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("site_id", _ID, nullable=False),
        sa.Column("charger_id", _ID, nullable=False),
        sa.Column("ts", _TS, nullable=False),
        sa.Column("power_kw", _FLOAT, nullable=False),
        sa.Column("plugged", sa.Boolean(), nullable=False),
        sa.Column("vehicle_id", _ID, nullable=True),
        sa.Column("soc", _FLOAT, nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_telemetry"),
    )
    op.create_index("ix_telemetry_ts", "telemetry", ["ts"])
    op.create_index("ix_telemetry_site_id_ts", "telemetry", ["site_id", "ts"])


def downgrade() -> None:
    op.drop_index("ix_telemetry_site_id_ts", table_name="telemetry")
    op.drop_index("ix_telemetry_ts", table_name="telemetry")
    op.drop_table("telemetry")
    op.drop_index("ix_setpoints_issued_at", table_name="setpoints")
    op.drop_index("ix_setpoints_seq", table_name="setpoints")
    op.drop_table("setpoints")
    op.drop_index("ix_plans_created_at", table_name="plans")
    op.drop_table("plans")
    op.drop_table("grid_events")
    op.drop_index("ix_sessions_closed_at", table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("departure_constraints")
    op.drop_table("vehicles")
    op.drop_index("ix_chargers_site_id", table_name="chargers")
    op.drop_table("chargers")
    op.drop_table("site_batteries")
    op.drop_table("sites")
