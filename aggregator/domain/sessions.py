"""Charging sessions: one vehicle plugged into one charger from arrival to departure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aggregator.domain._checks import (
    require_departure_need,
    require_fraction,
    require_utc,
)
from aggregator.domain.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Session:
    """A plugged-in period with its departure constraint.

    The departure need is either ``target_soc`` (fraction of the battery) or ``energy_kwh``
    (energy to add from arrival, as in the ACN data); exactly one is set. ``min_soc`` is a floor
    the SoC never goes below while plugged in (V2G must respect it).
    """

    session_id: str
    vehicle_id: str
    charger_id: str
    arrival: datetime
    departure: datetime
    arrival_soc: float
    target_soc: float | None = None
    energy_kwh: float | None = None
    min_soc: float = 0.0

    def __post_init__(self) -> None:
        entity = f"session {self.session_id}"
        if not self.session_id:
            raise ValidationError("session", "session_id", "must not be empty")
        require_utc(entity, "arrival", self.arrival)
        require_utc(entity, "departure", self.departure)
        if self.departure <= self.arrival:
            raise ValidationError(entity, "departure", "must be after arrival")
        require_fraction(entity, "arrival_soc", self.arrival_soc)
        require_departure_need(entity, self.target_soc, self.energy_kwh, self.min_soc)

    def target_energy_kwh(self, battery_kwh: float) -> float:
        """Energy in the battery wanted at departure, capped at the battery. [kWh]"""
        if self.target_soc is not None:
            return self.target_soc * battery_kwh
        assert self.energy_kwh is not None
        return min(battery_kwh, self.arrival_soc * battery_kwh + self.energy_kwh)
