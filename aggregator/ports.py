"""Ports: the small interfaces the use cases depend on. Adapters implement them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Literal, Protocol

from aggregator.domain import (
    Account,
    DepartureConstraint,
    DrEvent,
    DrEventRecord,
    EventBaseline,
    EventRecord,
    Fleet,
    FleetProblem,
    FlexibilityEnvelope,
    GridEvent,
    Plan,
    PlanRecord,
    Point,
    Prices,
    RecurringDeparture,
    Session,
    Setpoint,
    Settlement,
    SettlementRecord,
    SiteSettlement,
    SiteStatus,
    Telemetry,
    TimeGrid,
    VehicleFleet,
)


class Planner(Protocol):
    """Turns a planning problem into a plan. Never raises on a hard problem: it degrades."""

    def plan(self, problem: FleetProblem) -> Plan: ...


class EnvelopeCalculator(Protocol):
    """Computes the fleet's flexibility envelope for a problem."""

    def envelope(self, problem: FleetProblem) -> FlexibilityEnvelope: ...


class Clock(Protocol):
    """The time the aggregator runs on (wall clock in production, scaled in the demo)."""

    def now(self) -> datetime: ...


class ForecastSource(Protocol):
    """Prices and per-site base load / PV forecasts for a planning window."""

    def prices(self, grid: TimeGrid) -> Prices: ...

    def site_profiles(
        self, grid: TimeGrid, site_ids: Sequence[str]
    ) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
        """Per site: (base load kW per slot, PV kW per slot); empty tuples mean zero."""
        ...


class SetpointSink(Protocol):
    """Delivers setpoints to sites. Must not block: queue and return."""

    def publish(self, setpoints: Sequence[Setpoint]) -> None: ...


class TelemetryHandler(Protocol):
    """What a telemetry source calls for each message it receives (from any thread)."""

    def on_telemetry(self, topic: str, telemetry: Telemetry) -> None: ...

    def on_site_status(self, status: SiteStatus) -> None: ...

    def on_reject(self, topic: str, reason: str) -> None:
        """A message that could not be used: counted and logged, never applied."""
        ...


class Repository(Protocol):
    """Durable state: what must survive a restart."""

    # --- the fleet's static assets
    def save_fleet(self, fleet: Fleet) -> None:
        """Insert or update every asset given (by id); assets not given are left alone."""
        ...

    def load_fleet(self) -> Fleet: ...

    def delete_asset(
        self, kind: Literal["site", "charger", "vehicle", "battery"], asset_id: str
    ) -> bool:
        """True if it existed; ``ValueError`` while something depends on it."""
        ...

    # --- departure constraints (one per vehicle)
    def save_constraint(self, constraint: DepartureConstraint) -> None: ...

    def delete_constraint(self, vehicle_id: str) -> bool: ...

    def constraints(self) -> list[DepartureConstraint]: ...

    # --- sessions
    def save_session(self, session: Session) -> None:
        """Insert or update an open session (by session_id)."""
        ...

    def close_session(self, session_id: str, closed_at: datetime) -> None: ...

    def open_sessions(self) -> list[Session]: ...

    # --- grid events
    def save_event(self, record: EventRecord) -> None:
        """Insert or replace by event id."""
        ...

    def events(self) -> list[EventRecord]: ...

    # --- plans and setpoints
    def save_plan(self, plan_id: str, created_at: datetime, plan: Plan) -> None:
        """Store a plan; every earlier plan becomes superseded."""
        ...

    def latest_plan(self) -> tuple[PlanRecord, Plan] | None: ...

    def plans(self, limit: int = 20) -> list[PlanRecord]: ...

    def record_setpoints(self, setpoints: Sequence[Setpoint]) -> None: ...

    def last_setpoint_seq(self) -> int:
        """Highest ``seq`` ever recorded (0 if none), so numbering survives restarts."""
        ...

    def setpoints_since(self, since: datetime) -> list[Setpoint]: ...

    # --- telemetry
    def add_telemetry(self, items: Sequence[Telemetry]) -> None: ...

    def telemetry(
        self, since: datetime, until: datetime, site_id: str | None = None
    ) -> list[Telemetry]: ...

    def latest_telemetry(self) -> list[Telemetry]:
        """The newest reading of every charger that ever reported."""
        ...


class DrEventStore(Protocol):
    """Utility events as received, with our decision (durable in production)."""

    def get(self, event_id: str) -> DrEventRecord | None: ...

    def save(self, record: DrEventRecord) -> None: ...

    def all(self) -> list[DrEventRecord]: ...


class FeasibilityCheck(Protocol):
    """Can the fleet meet these event limits with no departure shortfall? (fast: envelope)"""

    def check(self, limits: Sequence[GridEvent]) -> tuple[bool, str]: ...


class SettlementStore(Protocol):
    """Event baselines and settlements (durable: the utility pays on them)."""

    def save_baseline(self, baseline: EventBaseline) -> None:
        """Insert or replace the event's baseline."""
        ...

    def baseline(self, event_id: str) -> EventBaseline | None: ...

    def save_settlement(self, record: SettlementRecord) -> None:
        """Insert or replace the event's settlement."""
        ...

    def settlement(self, event_id: str) -> SettlementRecord | None: ...

    def settlements(self) -> list[SettlementRecord]: ...


class EventSettler(Protocol):
    """Settles an ended event from its baseline and the sites' telemetry (the maths)."""

    def settle(
        self,
        event: DrEvent,
        site_ids: Sequence[str],
        baseline: EventBaseline | None,
        readings: Sequence[Telemetry],
        history: Sequence[Telemetry] | None,
        event_days: frozenset[date],
    ) -> tuple[Settlement, tuple[SiteSettlement, ...], str]:
        """The settlement of ``site_ids`` together, each site's part, and a note (may be empty).

        ``readings`` cover the event (and a little around it), ``history`` the days before
        it for the meter baseline (None: not wanted); ``event_days`` are earlier event days.
        Raises ``ValidationError`` with the reason when the event cannot be settled.
        """
        ...


class AccountStore(Protocol):
    """API accounts (by token hash), fleets (tenants), recurring departures, idempotency."""

    def create_account(self, account: Account, token_sha256: str) -> None: ...

    def account_by_token(self, token_sha256: str) -> Account | None: ...

    def account(self, account_id: str) -> Account | None: ...

    def accounts(self) -> list[Account]: ...

    def delete_account(self, account_id: str) -> bool: ...

    def save_fleet(self, fleet: VehicleFleet) -> None: ...

    def fleet(self, fleet_id: str) -> VehicleFleet | None: ...

    def fleets(self) -> list[VehicleFleet]: ...

    def delete_fleet(self, fleet_id: str) -> bool: ...

    def set_vehicle_fleet(self, vehicle_id: str, fleet_id: str | None) -> None: ...

    def vehicle_fleets(self) -> dict[str, str]: ...

    def save_recurring(self, rule: RecurringDeparture) -> None: ...

    def recurring(self) -> list[RecurringDeparture]: ...

    def delete_recurring(self, vehicle_id: str) -> bool: ...

    def idempotent_response(self, account_id: str, key: str) -> tuple[str, int, Any] | None: ...

    def save_idempotent_response(
        self, account_id: str, key: str, fingerprint: str, status_code: int, body: Any, at: datetime
    ) -> None: ...


class TimeSeriesStore(Protocol):
    """Series for dashboards and notebooks (docs/timeseries.md): SQL or InfluxDB.

    ``write`` never blocks and never raises on an outage: points are queued, written in
    batches, and kept (bounded) while the backend is away; ``dropped`` counts points lost (a
    full buffer, points the backend refuses as invalid, writes after ``close``). ``query``
    returns a pandas DataFrame (typed ``Any`` here: ports import no third-party package)
    with a UTC DatetimeIndex named ``ts``, one column per field and tag.
    """

    def write(self, points: Sequence[Point]) -> None: ...

    def query(
        self,
        measurement: str,
        start: datetime,
        stop: datetime,
        tags: Mapping[str, str] | None = None,
    ) -> Any: ...

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Write what is queued now; True when nothing is left (blocks: not on the loop)."""
        ...

    def close(self) -> None: ...

    @property
    def dropped(self) -> int: ...
