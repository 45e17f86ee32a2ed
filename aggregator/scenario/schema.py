"""The YAML scenario format as pydantic models: shapes and types only.

Domain rules (limits >= 0, SoC within [0, 1], known ids, ...) are left to the domain classes so
they are stated once; these models only make sure every value has the right type and name.
Optional numbers default to ``None`` where the domain has its own default, so that default is
kept in one place.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    model_validator,
)


def _as_number(value: Any) -> float:
    # bool is an int in Python; `true` as a power is a typo, not 1 kW.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, got {value!r}")
    return float(value)


def _as_series(value: Any) -> float | tuple[float, ...]:
    """A number (the same every slot) or a list of numbers (one per slot)."""
    if isinstance(value, list | tuple):
        try:
            return tuple(_as_number(v) for v in value)
        except ValueError as err:
            raise ValueError(f"must be a list of numbers: {err}") from None
    try:
        return _as_number(value)
    except ValueError:
        raise ValueError(f"must be a number or a list of numbers, got {value!r}") from None


SlotSeries = Annotated[float | tuple[float, ...], PlainValidator(_as_series)]
"""Per-slot value: one number for every slot, or a list with one number per slot."""


class _Entry(BaseModel):
    # extra="forbid" turns a misspelt key into an error instead of a silently ignored default.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class BatteryIn(_Entry):
    capacity_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float | None = None
    discharge_efficiency: float | None = None
    initial_soc: float | None = None
    min_soc: float | None = None


class SiteIn(_Entry):
    id: str
    import_limit_kw: float
    export_limit_kw: float = 0.0
    base_load_kw: SlotSeries = 0.0
    pv_kw: SlotSeries = 0.0
    battery: BatteryIn | None = None


class ChargerIn(_Entry):
    id: str
    site: str
    max_charge_kw: float
    max_discharge_kw: float = 0.0


class VehicleIn(_Entry):
    id: str
    model: str | None = None
    battery_kwh: float | None = None
    max_charge_kw: float | None = None
    max_discharge_kw: float | None = None
    v2g: bool = False
    charge_efficiency: float | None = None
    discharge_efficiency: float | None = None


class SessionIn(_Entry):
    id: str
    vehicle: str
    charger: str
    arrival: AwareDatetime
    departure: AwareDatetime
    arrival_soc: float
    target_soc: float | None = None
    energy_kwh: float | None = None
    min_soc: float = 0.0


class CsvVehicleIn(_Entry):
    """The vehicle assumed behind every session of a sessions CSV (ACN data has none)."""

    battery_kwh: float = 75.0
    arrival_soc: float = 0.2
    min_soc: float = 0.0
    max_charge_kw: float | None = None
    max_discharge_kw: float = 0.0
    v2g: bool = False
    charge_efficiency: float | None = None
    discharge_efficiency: float | None = None


class SessionsCsvIn(_Entry):
    path: str
    site: str
    charger_max_kw: float | None = None
    vehicle: CsvVehicleIn = CsvVehicleIn()


class EventIn(_Entry):
    id: str
    start: AwareDatetime
    end: AwareDatetime
    sites: list[str] = Field(default_factory=list)
    cap_kw: float | None = None
    shed_kw: float | None = None


class PricesIn(_Entry):
    """Inline prices (``import``/``export``) or prices read from CSV files (``csv``)."""

    import_: SlotSeries | None = Field(default=None, alias="import")
    export: SlotSeries | None = None
    csv: str | None = None
    export_csv: str | None = None
    column: str = "price_eur_per_mwh"

    @model_validator(mode="after")
    def _one_source(self) -> PricesIn:
        if (self.import_ is None) == (self.csv is None):
            raise ValueError("give either import (inline prices) or csv (a price file)")
        if self.export is not None and self.csv is not None:
            raise ValueError("export goes with inline import; with csv use export_csv")
        if self.export_csv is not None and self.csv is None:
            raise ValueError("export_csv needs csv for the import prices")
        return self


class ScenarioIn(_Entry):
    name: str | None = None
    description: str | None = None
    start: AwareDatetime
    step_minutes: int = Field(gt=0)
    horizon_hours: float = Field(gt=0)
    prices: PricesIn
    vehicle_specs: str | None = None
    sites: list[SiteIn] = Field(min_length=1)
    chargers: list[ChargerIn] = Field(default_factory=list)
    vehicles: list[VehicleIn] = Field(default_factory=list)
    sessions: list[SessionIn] = Field(default_factory=list)
    sessions_csv: SessionsCsvIn | None = None
    events: list[EventIn] = Field(default_factory=list)
    degradation_cost_per_mwh: float = 0.0
