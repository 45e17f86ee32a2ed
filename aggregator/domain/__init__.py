"""Domain model: frozen dataclasses validated at construction. Standard library only."""

from aggregator.domain.accounts import (
    ROLES,
    Account,
    RecurringDeparture,
    Role,
    VehicleFleet,
    require_id,
)
from aggregator.domain.assets import Charger, Site, SiteBattery, Vehicle
from aggregator.domain.demand_response import (
    DrEvent,
    DrEventRecord,
    DrState,
    DrStatus,
    OptChoice,
    PriceSignal,
)
from aggregator.domain.errors import DomainError, ValidationError
from aggregator.domain.plan import (
    CostBreakdown,
    EventResult,
    FlexibilityEnvelope,
    Plan,
    SessionOutcome,
    SessionSchedule,
    Setpoint,
    SolverPath,
)
from aggregator.domain.problem import FleetProblem
from aggregator.domain.runtime import (
    DepartureConstraint,
    EventRecord,
    EventStatus,
    Fleet,
    PlanRecord,
    SiteStatus,
    Telemetry,
)
from aggregator.domain.sessions import Session
from aggregator.domain.settlement import (
    BaselineFigures,
    BaselineKind,
    EventBaseline,
    MeterBaseline,
    Settlement,
    SettlementInterval,
    SettlementRecord,
    SettlementStatus,
    SiteSettlement,
)
from aggregator.domain.signals import GridEvent, Prices
from aggregator.domain.timegrid import TimeGrid
from aggregator.domain.timeseries import FieldValue, Point

__all__ = [
    "ROLES",
    "Account",
    "BaselineFigures",
    "BaselineKind",
    "Charger",
    "CostBreakdown",
    "DepartureConstraint",
    "DomainError",
    "DrEvent",
    "DrEventRecord",
    "DrState",
    "DrStatus",
    "EventBaseline",
    "EventRecord",
    "EventResult",
    "EventStatus",
    "FieldValue",
    "Fleet",
    "FleetProblem",
    "FlexibilityEnvelope",
    "GridEvent",
    "MeterBaseline",
    "OptChoice",
    "Plan",
    "PlanRecord",
    "Point",
    "PriceSignal",
    "Prices",
    "RecurringDeparture",
    "Role",
    "Session",
    "SessionOutcome",
    "SessionSchedule",
    "Setpoint",
    "Settlement",
    "SettlementInterval",
    "SettlementRecord",
    "SettlementStatus",
    "Site",
    "SiteBattery",
    "SiteSettlement",
    "SiteStatus",
    "SolverPath",
    "Telemetry",
    "TimeGrid",
    "ValidationError",
    "Vehicle",
    "VehicleFleet",
    "require_id",
]
