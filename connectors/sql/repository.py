"""``SqlRepository``: the ``aggregator.ports.Repository`` on SQLite or PostgreSQL.

Every method is one transaction, committed before it returns ("accepted = durable"). Each call
opens its own ORM session on the engine's connection pool, so the repository may be shared by
the event loop thread and worker threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import defer, sessionmaker

from aggregator.domain import (
    DepartureConstraint,
    EventRecord,
    Fleet,
    Plan,
    PlanRecord,
    Session,
    Setpoint,
    Telemetry,
)
from connectors.sql import records
from connectors.sql.engine import create_store_engine, writer
from connectors.sql.migrate import upgrade_to_head
from connectors.sql.plan_codec import plan_from_json, plan_to_json
from connectors.sql.schema import (
    Base,
    ChargerRow,
    ConstraintRow,
    EventRow,
    PlanRow,
    SessionRow,
    SetpointRow,
    SiteBatteryRow,
    SiteRow,
    TelemetryRow,
    VehicleRow,
)

AssetKind = Literal["site", "charger", "vehicle", "battery"]


class SqlRepository:
    """Durable state in a SQL database (``sqlite:///file.db`` or ``postgresql+psycopg://...``).

    The schema must exist: use ``open_repository``, or call ``migrate()`` once.
    """

    def __init__(self, url: str) -> None:
        self._engine: Engine = create_store_engine(url)
        self._read = sessionmaker(self._engine, expire_on_commit=False)
        self._write = sessionmaker(writer(self._engine), expire_on_commit=False)
        # For the other stores on this database (connectors/sql/dr_events.py).
        self.reader = self._read
        self.writer = self._write

    def __repr__(self) -> str:
        return f"SqlRepository({self._engine.url.render_as_string(hide_password=True)!r})"

    @property
    def engine(self) -> Engine:
        return self._engine

    def migrate(self) -> None:
        """Bring the schema to the newest migration (safe to call on an up-to-date store)."""
        upgrade_to_head(self._engine)

    def ping(self) -> None:
        """A round trip to the database; raises when it does not answer."""
        with self._read.begin() as s:
            s.execute(text("SELECT 1"))

    def dispose(self) -> None:
        """Close every pooled connection; the repository reconnects if used again."""
        self._engine.dispose()

    # --- the fleet's static assets
    def save_fleet(self, fleet: Fleet) -> None:
        with self._write.begin() as s:
            upsert(s, SiteRow, [records.site_row(x) for x in fleet.sites], "site_id")
            upsert(s, SiteBatteryRow, [records.battery_row(x) for x in fleet.batteries], "site_id")
            upsert(s, ChargerRow, [records.charger_row(x) for x in fleet.chargers], "charger_id")
            upsert(s, VehicleRow, [records.vehicle_row(x) for x in fleet.vehicles], "vehicle_id")

    def load_fleet(self) -> Fleet:
        """Every stored asset, each kind ordered by id."""
        with self._read.begin() as s:
            return Fleet(
                sites=tuple(
                    records.site_from(r)
                    for r in s.scalars(select(SiteRow).order_by(SiteRow.site_id))
                ),
                chargers=tuple(
                    records.charger_from(r)
                    for r in s.scalars(select(ChargerRow).order_by(ChargerRow.charger_id))
                ),
                vehicles=tuple(
                    records.vehicle_from(r)
                    for r in s.scalars(select(VehicleRow).order_by(VehicleRow.vehicle_id))
                ),
                batteries=tuple(
                    records.battery_from(r)
                    for r in s.scalars(select(SiteBatteryRow).order_by(SiteBatteryRow.site_id))
                ),
            )

    def delete_asset(self, kind: AssetKind, asset_id: str) -> bool:
        """Delete a site (with its battery), a site's battery, a charger or a vehicle; True if
        it existed.

        A site with chargers, or a charger with an open session, is refused (``ValueError``):
        the caller deletes what depends on it first.
        """
        model = {
            "site": SiteRow,
            "charger": ChargerRow,
            "vehicle": VehicleRow,
            "battery": SiteBatteryRow,  # by site id
        }[kind]
        with self._write.begin() as s:
            if kind == "site":
                held = s.scalar(select(ChargerRow.charger_id).where(ChargerRow.site_id == asset_id))
                if held is not None:
                    raise ValueError(f"site {asset_id} still has charger {held}")
            if kind == "charger":
                busy = s.scalar(
                    select(SessionRow.session_id).where(
                        SessionRow.charger_id == asset_id, SessionRow.closed_at.is_(None)
                    )
                )
                if busy is not None:
                    raise ValueError(f"charger {asset_id} has open session {busy}")
            row = s.get(model, asset_id)
            if row is None:
                return False
            s.delete(row)
            if kind == "site":
                battery = s.get(SiteBatteryRow, asset_id)
                if battery is not None:
                    s.delete(battery)
            return True

    # --- departure constraints (one per vehicle)
    def save_constraint(self, constraint: DepartureConstraint) -> None:
        """Insert, or replace the vehicle's previous constraint."""
        with self._write.begin() as s:
            upsert(s, ConstraintRow, [records.constraint_row(constraint)], "vehicle_id")

    def delete_constraint(self, vehicle_id: str) -> bool:
        """True if the vehicle had a constraint."""
        with self._write.begin() as s:
            row = s.get(ConstraintRow, vehicle_id)
            if row is None:
                return False
            s.delete(row)
            return True

    def constraints(self) -> list[DepartureConstraint]:
        with self._read.begin() as s:
            rows = s.scalars(select(ConstraintRow).order_by(ConstraintRow.vehicle_id))
            return [records.constraint_from(r) for r in rows]

    # --- sessions
    def save_session(self, session: Session) -> None:
        """Insert or update by session_id; a closed session stays closed."""
        with self._write.begin() as s:
            upsert(s, SessionRow, [records.session_row(session)], "session_id")

    def close_session(self, session_id: str, closed_at: datetime) -> None:
        """Mark the session closed; closing it again keeps the first time. KeyError if unknown."""
        with self._write.begin() as s:
            row = s.get(SessionRow, session_id)
            if row is None:
                raise KeyError(f"session {session_id!r} is not in the store")
            if row.closed_at is None:
                row.closed_at = closed_at

    def open_sessions(self) -> list[Session]:
        """Sessions not closed, by arrival."""
        with self._read.begin() as s:
            rows = s.scalars(
                select(SessionRow)
                .where(SessionRow.closed_at.is_(None))
                .order_by(SessionRow.arrival, SessionRow.session_id)
            )
            return [records.session_from(r) for r in rows]

    # --- grid events
    def save_event(self, record: EventRecord) -> None:
        """Insert or replace by event id (modification number and status included)."""
        with self._write.begin() as s:
            upsert(s, EventRow, [records.event_row(record)], "event_id")

    def events(self) -> list[EventRecord]:
        """Every stored event, by start time."""
        with self._read.begin() as s:
            rows = s.scalars(select(EventRow).order_by(EventRow.start_at, EventRow.event_id))
            return [records.event_from(r) for r in rows]

    # --- plans and setpoints
    def save_plan(self, plan_id: str, created_at: datetime, plan: Plan) -> None:
        """Store a plan (replacing one with the same id); every other plan becomes superseded.

        ``objective`` is the plan's full objective (``cost.total``, penalties included).
        """
        row = {
            "plan_id": plan_id,
            "created_at": created_at,
            "solver_path": plan.solver_path,
            "solver_status": plan.solver_status,
            "objective": plan.cost.total,
            "shortfall_kwh": plan.total_shortfall_kwh,
            "superseded": False,
            "plan_json": plan_to_json(plan),
        }
        with self._write.begin() as s:
            if s.get_bind().dialect.name == "postgresql":
                # Two concurrent saves must not both stay current; reads are not blocked.
                s.execute(text("LOCK TABLE plans IN SHARE ROW EXCLUSIVE MODE"))
            s.execute(
                update(PlanRow)
                .where(PlanRow.superseded.is_(False), PlanRow.plan_id != plan_id)
                .values(superseded=True)
            )
            upsert(s, PlanRow, [row], "plan_id")

    def latest_plan(self) -> tuple[PlanRecord, Plan] | None:
        """The current (not superseded) plan and its record, or None before the first plan."""
        with self._read.begin() as s:
            row = s.scalars(
                select(PlanRow)
                .where(PlanRow.superseded.is_(False))
                .order_by(PlanRow.created_at.desc(), PlanRow.plan_id.desc())
                .limit(1)
            ).first()
            if row is None:
                return None
            return records.plan_record_from(row), plan_from_json(row.plan_json)

    def plans(self, limit: int = 20) -> list[PlanRecord]:
        """The newest ``limit`` plan records, newest first (without the plans themselves)."""
        with self._read.begin() as s:
            rows = s.scalars(
                select(PlanRow)
                .options(defer(PlanRow.plan_json))
                .order_by(PlanRow.created_at.desc(), PlanRow.plan_id.desc())
                .limit(limit)
            )
            return [records.plan_record_from(r) for r in rows]

    def record_setpoints(self, setpoints: Sequence[Setpoint]) -> None:
        _insert_many(self._write, SetpointRow, [records.setpoint_row(x) for x in setpoints])

    def last_setpoint_seq(self) -> int:
        """Highest ``seq`` ever recorded (0 if none)."""
        with self._read.begin() as s:
            return int(s.scalar(select(func.coalesce(func.max(SetpointRow.seq), 0))) or 0)

    def setpoints_since(self, since: datetime) -> list[Setpoint]:
        """Setpoints issued at or after ``since``, by seq."""
        with self._read.begin() as s:
            rows = s.execute(
                select(*records.SETPOINT_COLUMNS)
                .where(SetpointRow.issued_at >= since)
                .order_by(SetpointRow.seq, SetpointRow.id)
            )
            return [Setpoint(**row) for row in rows.mappings()]

    # --- telemetry
    def add_telemetry(self, items: Sequence[Telemetry]) -> None:
        """Store a batch of readings in one transaction (one bulk insert)."""
        _insert_many(self._write, TelemetryRow, [records.telemetry_row(x) for x in items])

    def telemetry(
        self, since: datetime, until: datetime, site_id: str | None = None
    ) -> list[Telemetry]:
        """Readings with ``since <= ts < until`` (of one site if given), by time."""
        query = select(*records.TELEMETRY_COLUMNS).where(
            TelemetryRow.ts >= since, TelemetryRow.ts < until
        )
        if site_id is not None:
            query = query.where(TelemetryRow.site_id == site_id)
        with self._read.begin() as s:
            rows = s.execute(query.order_by(TelemetryRow.ts, TelemetryRow.id))
            return [Telemetry(**row) for row in rows.mappings()]

    def latest_telemetry(self) -> list[Telemetry]:
        """The newest reading of every charger that ever reported, by charger."""
        newest = (
            select(func.max(TelemetryRow.id).label("id"))
            .group_by(TelemetryRow.site_id, TelemetryRow.charger_id)
            .subquery()
        )
        query = (
            select(*records.TELEMETRY_COLUMNS)
            .join(newest, TelemetryRow.id == newest.c.id)
            .order_by(TelemetryRow.site_id, TelemetryRow.charger_id)
        )
        with self._read.begin() as s:
            return [Telemetry(**row) for row in s.execute(query).mappings()]


def open_repository(url: str) -> SqlRepository:
    """A ``SqlRepository`` on ``url`` with its schema migrated to the newest revision."""
    repo = SqlRepository(url)
    try:
        repo.migrate()
    except BaseException:
        repo.dispose()
        raise
    return repo


def upsert(s: OrmSession, model: type[Base], rows: list[dict[str, Any]], key: str) -> None:
    """Insert rows, or update every given column of those whose ``key`` exists."""
    # One statement may not touch a row twice (PostgreSQL refuses): the last row per key wins.
    unique = list({row[key]: row for row in rows}.values())
    if not unique:
        return
    columns = [c for c in unique[0] if c != key]
    if s.get_bind().dialect.name == "postgresql":
        pg = pg_insert(model)
        pg_stmt = pg.on_conflict_do_update(
            index_elements=[key], set_={c: pg.excluded[c] for c in columns}
        )
        s.execute(pg_stmt, unique)
    else:
        lite = sqlite_insert(model)
        lite_stmt = lite.on_conflict_do_update(
            index_elements=[key], set_={c: lite.excluded[c] for c in columns}
        )
        s.execute(lite_stmt, unique)


def _insert_many(
    sessions: sessionmaker[OrmSession], model: type[Base], rows: list[dict[str, Any]]
) -> None:
    """One bulk INSERT (executemany) in its own committed transaction; nothing for no rows."""
    if not rows:
        return
    with sessions.begin() as s:
        s.execute(insert(model), rows)
