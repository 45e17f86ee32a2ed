"""The planner's answer, and the setpoints derived from it.

Sign convention (DESIGN.md): positive power is import/charging, negative is export/discharge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from aggregator.domain._checks import require_finite, require_utc
from aggregator.domain.errors import ValidationError
from aggregator.domain.timegrid import TimeGrid

SolverPath = Literal["lp", "heuristic"]


@dataclass(frozen=True, slots=True)
class SessionSchedule:
    """Power and SoC of one session over its plugged-in slots.

    ``power_kw[i]`` and ``soc[i]`` belong to slot ``first_slot + i``; ``soc`` is the state of
    charge at the end of that slot.
    """

    session_id: str
    vehicle_id: str
    charger_id: str
    site_id: str
    first_slot: int
    power_kw: tuple[float, ...]
    soc: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    """What a session gets by its departure (or by the end of the horizon, if later).

    ``target_kwh`` is the energy wanted *in the battery* then; ``delivered_kwh`` is the energy
    *added* since arrival (or the horizon start); ``shortfall_kwh`` is how far the battery ends
    below ``target_kwh``.
    """

    session_id: str
    vehicle_id: str
    target_kwh: float
    delivered_kwh: float
    soc_at_departure: float
    shortfall_kwh: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class EventResult:
    """How the plan meets one grid event: the cap per event slot and the planned import."""

    event_id: str
    slots: tuple[int, ...]
    cap_kw: tuple[float, ...]
    planned_import_kw: tuple[float, ...]
    baseline_import_kw: tuple[float, ...] | None
    violation_kwh: float


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Objective parts over the horizon. [currency]"""

    import_cost: float
    export_revenue: float
    degradation_cost: float
    shortfall_penalty: float
    event_penalty: float
    site_limit_penalty: float

    @property
    def energy_cost(self) -> float:
        """What the plan really costs: import - export + degradation, without penalties."""
        return self.import_cost - self.export_revenue + self.degradation_cost

    @property
    def total(self) -> float:
        return (
            self.energy_cost + self.shortfall_penalty + self.event_penalty + self.site_limit_penalty
        )


@dataclass(frozen=True)
class Plan:
    """Power for every session and slot, with totals, costs and how it was made.

    ``site_power_kw`` is the net power at each site's meter per slot: base load - PV + EVs +
    site battery (positive = import). ``site_battery_kw`` is the stationary battery's share.
    """

    grid: TimeGrid
    schedules: tuple[SessionSchedule, ...]
    site_power_kw: Mapping[str, tuple[float, ...]]
    site_battery_kw: Mapping[str, tuple[float, ...]]
    outcomes: tuple[SessionOutcome, ...]
    events: tuple[EventResult, ...]
    cost: CostBreakdown
    solver_path: SolverPath
    solver_status: str
    timings_s: Mapping[str, float] = field(default_factory=dict)

    @property
    def total_shortfall_kwh(self) -> float:
        return sum(o.shortfall_kwh for o in self.outcomes)


@dataclass(frozen=True, slots=True)
class Setpoint:
    """Power a charger should follow until ``valid_until``, then fall back to its safe limit."""

    charger_id: str
    site_id: str
    power_kw: float
    issued_at: datetime
    valid_until: datetime
    plan_id: str
    seq: int

    def __post_init__(self) -> None:
        entity = f"setpoint for charger {self.charger_id}"
        require_finite(entity, "power_kw", self.power_kw)
        require_utc(entity, "issued_at", self.issued_at)
        require_utc(entity, "valid_until", self.valid_until)
        if self.valid_until <= self.issued_at:
            raise ValidationError(entity, "valid_until", "must be after issued_at")


@dataclass(frozen=True, slots=True)
class FlexibilityEnvelope:
    """Per slot, the least and most aggregate fleet power that keeps every departure target.

    ``baseline_kw`` is the uncontrolled (charge-as-soon-as-plugged) profile. All values are EV
    power only [kW], without base load or PV.
    """

    grid: TimeGrid
    min_kw: tuple[float, ...]
    max_kw: tuple[float, ...]
    baseline_kw: tuple[float, ...]
