"""What the fleet is made of: sites, their stationary batteries, chargers and vehicles.

Power limits are magnitudes [kW] (>= 0); signs only appear on planned power (see DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.domain._checks import (
    require_efficiency,
    require_fraction,
    require_non_negative,
    require_series,
)
from aggregator.domain.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Site:
    """A grid connection with chargers behind it.

    ``base_load_kw`` and ``pv_kw`` are forecasts per slot of the planning grid (empty = zero).
    ``import_limit_kw_slots`` / ``export_limit_kw_slots`` are optional time-varying limits per
    slot of the planning grid (a DSO's capacity, say; empty = none): in each slot the limit
    that holds is the smaller of the static connection limit and the slot's value.
    """

    site_id: str
    import_limit_kw: float
    export_limit_kw: float = 0.0
    base_load_kw: tuple[float, ...] = ()
    pv_kw: tuple[float, ...] = ()
    import_limit_kw_slots: tuple[float, ...] = ()
    export_limit_kw_slots: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        entity = f"site {self.site_id}"
        if not self.site_id:
            raise ValidationError("site", "site_id", "must not be empty")
        require_non_negative(entity, "import_limit_kw", self.import_limit_kw)
        require_non_negative(entity, "export_limit_kw", self.export_limit_kw)
        require_series(entity, "base_load_kw", self.base_load_kw)
        require_series(entity, "pv_kw", self.pv_kw, non_negative=True)
        require_series(
            entity, "import_limit_kw_slots", self.import_limit_kw_slots, non_negative=True
        )
        require_series(
            entity, "export_limit_kw_slots", self.export_limit_kw_slots, non_negative=True
        )

    def import_limits_kw(self, n_slots: int) -> tuple[float, ...]:
        """The import limit that holds in each of ``n_slots`` slots. [kW]"""
        return _effective(self.import_limit_kw, self.import_limit_kw_slots, n_slots)

    def export_limits_kw(self, n_slots: int) -> tuple[float, ...]:
        """The export limit that holds in each of ``n_slots`` slots. [kW]"""
        return _effective(self.export_limit_kw, self.export_limit_kw_slots, n_slots)


def _effective(static: float, slots: tuple[float, ...], n: int) -> tuple[float, ...]:
    if not slots:
        return (static,) * n
    return tuple(min(static, v) for v in slots)


@dataclass(frozen=True, slots=True)
class SiteBattery:
    """A stationary battery behind a site's meter. It ends the horizon no emptier than it began."""

    site_id: str
    capacity_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    initial_soc: float = 0.5
    min_soc: float = 0.0

    def __post_init__(self) -> None:
        entity = f"battery of site {self.site_id}"
        require_non_negative(entity, "capacity_kwh", self.capacity_kwh)
        require_non_negative(entity, "max_charge_kw", self.max_charge_kw)
        require_non_negative(entity, "max_discharge_kw", self.max_discharge_kw)
        require_efficiency(entity, "charge_efficiency", self.charge_efficiency)
        require_efficiency(entity, "discharge_efficiency", self.discharge_efficiency)
        require_fraction(entity, "initial_soc", self.initial_soc)
        require_fraction(entity, "min_soc", self.min_soc)
        if self.min_soc > self.initial_soc:
            raise ValidationError(entity, "min_soc", "must be <= initial_soc")


@dataclass(frozen=True, slots=True)
class Charger:
    """A charge point at a site. ``max_discharge_kw == 0`` means unidirectional."""

    charger_id: str
    site_id: str
    max_charge_kw: float
    max_discharge_kw: float = 0.0

    def __post_init__(self) -> None:
        entity = f"charger {self.charger_id}"
        if not self.charger_id:
            raise ValidationError("charger", "charger_id", "must not be empty")
        require_non_negative(entity, "max_charge_kw", self.max_charge_kw)
        require_non_negative(entity, "max_discharge_kw", self.max_discharge_kw)

    @property
    def bidirectional(self) -> bool:
        return self.max_discharge_kw > 0


@dataclass(frozen=True, slots=True)
class Vehicle:
    """An EV. Efficiencies are grid-to-battery and battery-to-grid, each in (0, 1]."""

    vehicle_id: str
    battery_kwh: float
    max_charge_kw: float
    max_discharge_kw: float = 0.0
    v2g_allowed: bool = False
    charge_efficiency: float = 0.92
    discharge_efficiency: float = 0.92

    def __post_init__(self) -> None:
        entity = f"vehicle {self.vehicle_id}"
        if not self.vehicle_id:
            raise ValidationError("vehicle", "vehicle_id", "must not be empty")
        require_non_negative(entity, "battery_kwh", self.battery_kwh)
        if self.battery_kwh == 0:
            raise ValidationError(entity, "battery_kwh", "must be > 0")
        require_non_negative(entity, "max_charge_kw", self.max_charge_kw)
        require_non_negative(entity, "max_discharge_kw", self.max_discharge_kw)
        require_efficiency(entity, "charge_efficiency", self.charge_efficiency)
        require_efficiency(entity, "discharge_efficiency", self.discharge_efficiency)
