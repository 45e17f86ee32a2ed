"""Domain model: frozen dataclasses validated at construction. Standard library only."""

from aggregator.domain.assets import Charger, Site, SiteBattery, Vehicle
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
from aggregator.domain.sessions import Session
from aggregator.domain.signals import GridEvent, Prices
from aggregator.domain.timegrid import TimeGrid

__all__ = [
    "Charger",
    "CostBreakdown",
    "DomainError",
    "EventResult",
    "FleetProblem",
    "FlexibilityEnvelope",
    "GridEvent",
    "Plan",
    "Prices",
    "Session",
    "SessionOutcome",
    "SessionSchedule",
    "Setpoint",
    "Site",
    "SiteBattery",
    "SolverPath",
    "TimeGrid",
    "ValidationError",
    "Vehicle",
]
