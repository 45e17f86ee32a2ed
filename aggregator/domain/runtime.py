"""What the running aggregator deals in: telemetry, departure constraints, site status, events.

These cross the wire (MQTT, SQL, later the API); each adapter translates them, the domain only
validates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from aggregator.domain._checks import (
    require_departure_need,
    require_finite,
    require_fraction,
    require_utc,
)
from aggregator.domain.assets import Charger, Site, SiteBattery, Vehicle
from aggregator.domain.errors import ValidationError
from aggregator.domain.signals import GridEvent


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One reading from a charger, as a site gateway reports it.

    ``power_kw`` is signed (positive = charging). ``soc`` is None when the charger cannot read
    the vehicle's battery. ``vehicle_id`` is None when the gateway cannot identify the vehicle.
    """

    site_id: str
    charger_id: str
    ts: datetime
    power_kw: float
    plugged: bool
    vehicle_id: str | None = None
    soc: float | None = None
    status: str = "ok"

    def __post_init__(self) -> None:
        entity = f"telemetry of charger {self.charger_id}"
        if not self.site_id:
            raise ValidationError(entity, "site_id", "must not be empty")
        if not self.charger_id:
            raise ValidationError("telemetry", "charger_id", "must not be empty")
        require_utc(entity, "ts", self.ts)
        require_finite(entity, "power_kw", self.power_kw)
        if self.soc is not None:
            require_fraction(entity, "soc", self.soc)


@dataclass(frozen=True, slots=True)
class DepartureConstraint:
    """What a fleet manager asks for a vehicle: leave at ``departure_at`` with this much charge.

    Exactly one of ``target_soc`` and ``energy_kwh`` is set; ``min_soc`` is the V2G floor.
    """

    vehicle_id: str
    departure_at: datetime
    target_soc: float | None = None
    energy_kwh: float | None = None
    min_soc: float = 0.0

    def __post_init__(self) -> None:
        entity = f"departure constraint of vehicle {self.vehicle_id}"
        if not self.vehicle_id:
            raise ValidationError("departure constraint", "vehicle_id", "must not be empty")
        require_utc(entity, "departure_at", self.departure_at)
        require_departure_need(entity, self.target_soc, self.energy_kwh, self.min_soc)


@dataclass(frozen=True, slots=True)
class SiteStatus:
    """Whether a site's gateway is connected (its retained status / Last Will)."""

    site_id: str
    online: bool
    ts: datetime

    def __post_init__(self) -> None:
        require_utc(f"status of site {self.site_id}", "ts", self.ts)


EventStatus = Literal["active", "cancelled", "completed"]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A grid event as received, with its modification number and lifecycle status."""

    event: GridEvent
    modification_number: int = 0
    status: EventStatus = "active"
    received_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.modification_number < 0:
            raise ValidationError(
                f"event {self.event.event_id}", "modification_number", "must be >= 0"
            )
        if self.received_at is not None:
            require_utc(f"event {self.event.event_id}", "received_at", self.received_at)


@dataclass(frozen=True)
class PlanRecord:
    """A plan as stored: its id, when it was made, and whether a newer plan replaced it."""

    plan_id: str
    created_at: datetime
    solver_path: str
    solver_status: str
    objective: float
    shortfall_kwh: float
    superseded: bool = False


@dataclass(frozen=True)
class Fleet:
    """The static assets: what exists, not what happens (no time series, no sessions)."""

    sites: tuple[Site, ...]
    chargers: tuple[Charger, ...]
    vehicles: tuple[Vehicle, ...]
    batteries: tuple[SiteBattery, ...] = ()

    def charger(self, charger_id: str) -> Charger | None:
        return next((c for c in self.chargers if c.charger_id == charger_id), None)
