"""Tables of the SQL store, as SQLAlchemy ORM classes (the migrations must match them).

Ids are the domain's own string ids. There are no foreign keys: the store records what the
aggregator accepted (a session may name a vehicle known only from telemetry); cross-entity
rules are the domain's (``FleetProblem``). Times are aware UTC (``UtcDateTime``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Double, Index, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from connectors.sql.types import UtcDateTime

# Deterministic constraint and index names, identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``; PostgreSQL gets a 64-bit key.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), float: Double()}  # noqa: RUF012


class SiteRow(Base):
    """A site's grid connection; forecasts per slot as JSON lists (empty = zero)."""

    __tablename__ = "sites"

    site_id: Mapped[str] = mapped_column(primary_key=True)
    import_limit_kw: Mapped[float]
    export_limit_kw: Mapped[float]
    base_load_kw: Mapped[list[float]] = mapped_column(JSON)
    pv_kw: Mapped[list[float]] = mapped_column(JSON)


class SiteBatteryRow(Base):
    """A stationary battery, at most one per site."""

    __tablename__ = "site_batteries"

    site_id: Mapped[str] = mapped_column(primary_key=True)
    capacity_kwh: Mapped[float]
    max_charge_kw: Mapped[float]
    max_discharge_kw: Mapped[float]
    charge_efficiency: Mapped[float]
    discharge_efficiency: Mapped[float]
    initial_soc: Mapped[float]
    min_soc: Mapped[float]


class ChargerRow(Base):
    __tablename__ = "chargers"

    charger_id: Mapped[str] = mapped_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(index=True)
    max_charge_kw: Mapped[float]
    max_discharge_kw: Mapped[float]


class VehicleRow(Base):
    __tablename__ = "vehicles"

    vehicle_id: Mapped[str] = mapped_column(primary_key=True)
    battery_kwh: Mapped[float]
    max_charge_kw: Mapped[float]
    max_discharge_kw: Mapped[float]
    v2g_allowed: Mapped[bool]
    charge_efficiency: Mapped[float]
    discharge_efficiency: Mapped[float]


class ConstraintRow(Base):
    """One departure constraint per vehicle: exactly one of target_soc, energy_kwh is set."""

    __tablename__ = "departure_constraints"

    vehicle_id: Mapped[str] = mapped_column(primary_key=True)
    departure_at: Mapped[datetime]
    target_soc: Mapped[float | None]
    energy_kwh: Mapped[float | None]
    min_soc: Mapped[float]


class SessionRow(Base):
    """A charging session; open while ``closed_at`` is null."""

    __tablename__ = "sessions"

    session_id: Mapped[str] = mapped_column(primary_key=True)
    vehicle_id: Mapped[str]
    charger_id: Mapped[str]
    arrival: Mapped[datetime]
    departure: Mapped[datetime]
    arrival_soc: Mapped[float]
    target_soc: Mapped[float | None]
    energy_kwh: Mapped[float | None]
    min_soc: Mapped[float]
    closed_at: Mapped[datetime | None] = mapped_column(index=True)


class EventRow(Base):
    """A grid event as last received; ``site_ids`` is a sorted JSON list (empty = all sites)."""

    __tablename__ = "grid_events"

    event_id: Mapped[str] = mapped_column(primary_key=True)
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    site_ids: Mapped[list[str]] = mapped_column(JSON)
    cap_kw: Mapped[float | None]
    shed_kw: Mapped[float | None]
    modification_number: Mapped[int]
    status: Mapped[str]
    received_at: Mapped[datetime | None]


class PlanRow(Base):
    """A plan's summary columns plus the whole plan as JSON (``plan_codec``)."""

    __tablename__ = "plans"

    plan_id: Mapped[str] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    solver_path: Mapped[str]
    solver_status: Mapped[str]
    objective: Mapped[float]
    shortfall_kwh: Mapped[float]
    superseded: Mapped[bool]
    plan_json: Mapped[dict[str, Any]] = mapped_column(JSON)


class SetpointRow(Base):
    """A setpoint as sent; ``seq`` numbering continues across restarts."""

    __tablename__ = "setpoints"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    charger_id: Mapped[str]
    site_id: Mapped[str]
    power_kw: Mapped[float]
    issued_at: Mapped[datetime] = mapped_column(index=True)
    valid_until: Mapped[datetime]
    plan_id: Mapped[str]


class TelemetryRow(Base):
    """One charger reading; queried by site and time range."""

    __tablename__ = "telemetry"
    __table_args__ = (Index("ix_telemetry_site_id_ts", "site_id", "ts"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    site_id: Mapped[str]
    charger_id: Mapped[str]
    ts: Mapped[datetime] = mapped_column(index=True)
    power_kw: Mapped[float]
    plugged: Mapped[bool]
    vehicle_id: Mapped[str | None]
    soc: Mapped[float | None]
    status: Mapped[str]


class DrEventRow(Base):
    """A utility's demand-response event as we hold it: latest version, our answer, state."""

    __tablename__ = "dr_events"

    event_id: Mapped[str] = mapped_column(primary_key=True)
    modification_number: Mapped[int]
    status: Mapped[str]
    state: Mapped[str]
    opt: Mapped[str]
    reason: Mapped[str]
    received_at: Mapped[datetime]
    event_json: Mapped[dict[str, Any]] = mapped_column(JSON)


class EventBaselineRow(Base):
    """The plan made without an event: site net power per slot of its grid (JSON lists)."""

    __tablename__ = "event_baselines"

    event_id: Mapped[str] = mapped_column(primary_key=True)
    modification_number: Mapped[int]
    captured_at: Mapped[datetime]
    grid_start: Mapped[datetime]
    step_s: Mapped[int]
    n_slots: Mapped[int]
    site_power_json: Mapped[dict[str, Any]] = mapped_column(JSON)


class EventSettlementRow(Base):
    """A settled (or not yet settleable) event; the totals as columns, the rest as JSON."""

    __tablename__ = "event_settlements"

    event_id: Mapped[str] = mapped_column(primary_key=True)
    modification_number: Mapped[int]
    settled_at: Mapped[datetime]
    status: Mapped[str]
    reason: Mapped[str]
    baseline: Mapped[str | None]
    delivered_kwh: Mapped[float | None]
    committed_kwh: Mapped[float | None]
    compliance: Mapped[float | None]
    body_json: Mapped[dict[str, Any]] = mapped_column(JSON)


class AccountRow(Base):
    """An API account; only the SHA-256 of its token is kept."""

    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]
    role: Mapped[str]
    token_sha256: Mapped[str] = mapped_column(unique=True)
    fleet_ids: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class VehicleFleetRow(Base):
    """A fleet (tenant): the vehicles one fleet manager is responsible for."""

    __tablename__ = "vehicle_fleets"

    fleet_id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]


class FleetMemberRow(Base):
    """Which fleet a vehicle belongs to (at most one)."""

    __tablename__ = "fleet_members"

    vehicle_id: Mapped[str] = mapped_column(primary_key=True)
    fleet_id: Mapped[str] = mapped_column(index=True)


class RecurringDepartureRow(Base):
    """A weekly departure per vehicle; ``weekdays`` a JSON list (0 = Monday)."""

    __tablename__ = "recurring_departures"

    vehicle_id: Mapped[str] = mapped_column(primary_key=True)
    weekdays: Mapped[list[int]] = mapped_column(JSON)
    local_time: Mapped[str]
    timezone: Mapped[str]
    target_soc: Mapped[float | None]
    energy_kwh: Mapped[float | None]
    min_soc: Mapped[float]


class IdempotencyRow(Base):
    """The response to a POST made with an ``Idempotency-Key``, replayed on a retry."""

    __tablename__ = "idempotency_keys"

    account_id: Mapped[str] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(primary_key=True)
    fingerprint: Mapped[str]
    status_code: Mapped[int]
    body: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime]


class TimeSeriesPointRow(Base):
    """A time-series point (docs/timeseries.md): one measurement at one time, tags and fields
    as JSON objects; read by measurement and time range, filtered by tags."""

    __tablename__ = "timeseries_points"
    __table_args__ = (Index("ix_timeseries_points_measurement_ts", "measurement", "ts"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    measurement: Mapped[str]
    ts: Mapped[datetime]
    tags: Mapped[dict[str, str]] = mapped_column(JSON)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
