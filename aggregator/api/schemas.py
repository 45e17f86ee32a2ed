"""Request and response bodies of the HTTP API (units and signs as in the domain)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from aggregator.domain import Role

Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"),
]


class Strict(BaseModel):
    """Request bodies: unknown fields and loose types (``false`` for a number) are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


# ---------------------------------------------------------------------- assets


class BatteryBody(Strict):
    capacity_kwh: float = Field(ge=0)
    max_charge_kw: float = Field(ge=0)
    max_discharge_kw: float = Field(ge=0)
    charge_efficiency: float = Field(0.95, gt=0, le=1)
    discharge_efficiency: float = Field(0.95, gt=0, le=1)
    initial_soc: float = Field(0.5, ge=0, le=1)
    min_soc: float = Field(0.0, ge=0, le=1)


class SiteFields(Strict):
    import_limit_kw: float = Field(ge=0, description="grid connection, import [kW]")
    export_limit_kw: float = Field(0.0, ge=0, description="grid connection, export [kW]")
    battery: BatteryBody | None = None


class SiteBody(SiteFields):
    site_id: Id


class ChargerFields(Strict):
    site_id: Id
    max_charge_kw: float = Field(ge=0)
    max_discharge_kw: float = Field(0.0, ge=0, description="0 = unidirectional")


class ChargerBody(ChargerFields):
    charger_id: Id


class VehicleFields(Strict):
    battery_kwh: float = Field(gt=0)
    max_charge_kw: float = Field(ge=0)
    max_discharge_kw: float = Field(0.0, ge=0)
    v2g_allowed: bool = False
    charge_efficiency: float = Field(0.92, gt=0, le=1)
    discharge_efficiency: float = Field(0.92, gt=0, le=1)
    fleet_id: Id | None = Field(None, description="the fleet (tenant) it belongs to")


class VehicleBody(VehicleFields):
    vehicle_id: Id


class FleetFields(Strict):
    name: str = Field("", max_length=200)


class FleetBody(FleetFields):
    fleet_id: Id


# ---------------------------------------------------------------------- departures


class DepartureBody(Strict):
    departure_at: AwareDatetime = Field(strict=False, description="with an offset, e.g. Z")
    target_soc: float | None = Field(None, ge=0, le=1)
    energy_kwh: float | None = Field(None, ge=0, description="to add before departure [kWh]")
    min_soc: float = Field(0.0, ge=0, le=1, description="never below while plugged in")


class Departure(DepartureBody):
    vehicle_id: str


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class RecurringBody(Strict):
    weekdays: list[Weekday] = Field(min_length=1, max_length=7)
    time: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="local HH:MM")
    timezone: str = Field("UTC", max_length=64, description="IANA zone, e.g. Europe/Amsterdam")
    target_soc: float | None = Field(None, ge=0, le=1)
    energy_kwh: float | None = Field(None, ge=0)
    min_soc: float = Field(0.0, ge=0, le=1)


class Recurring(RecurringBody):
    vehicle_id: str
    next_departure_at: datetime


# ---------------------------------------------------------------------- accounts


class AccountBody(Strict):
    account_id: Id
    name: str = Field("", max_length=200)
    role: Role
    fleet_ids: list[Id] = Field(default_factory=list, max_length=1000)


class AccountOut(BaseModel):
    account_id: str
    name: str
    role: Role
    fleet_ids: list[str]
    created_at: datetime


class AccountCreated(AccountOut):
    token: str = Field(description="shown once: only its hash is stored")


# ---------------------------------------------------------------------- plans


class SlotsOut(BaseModel):
    start: datetime
    step_s: float
    n_slots: int


class VehicleSchedule(BaseModel):
    vehicle_id: str
    plan_id: str
    created_at: datetime
    solver_path: str
    session_id: str | None = None
    charger_id: str | None = None
    site_id: str | None = None
    slot_starts: list[datetime] = []
    power_kw: list[float] = []
    soc: list[float] = []
    departure_at: datetime | None = None
    target_kwh: float | None = None
    expected_soc_at_departure: float | None = None
    shortfall_kwh: float | None = None
    shortfall_reason: str | None = None


class SitePlan(BaseModel):
    site_id: str
    plan_id: str
    created_at: datetime
    solver_path: str
    import_limit_kw: float
    export_limit_kw: float
    slot_starts: list[datetime]
    power_kw: list[float]
    battery_kw: list[float]


class PlanSummary(BaseModel):
    plan_id: str
    created_at: datetime
    solver_path: str
    solver_status: str
    grid: SlotsOut
    sessions: int
    total_shortfall_kwh: float
    cost: dict[str, float]
    site_power_kw: dict[str, list[float]]


# ---------------------------------------------------------------------- errors


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    """``detail`` is a sentence, or for 422 FastAPI's list naming each field and reason."""

    detail: str | list[ErrorItem] | list[dict[str, object]]


def _err(text: str) -> dict[str, object]:
    return {"model": ErrorOut, "description": text}


ERRORS: dict[int | str, dict[str, object]] = {
    400: _err("the body could not be read (e.g. not UTF-8)"),
    401: _err("no bearer token, or an unknown one"),
    403: _err("the account's role may not do this"),
    404: _err("no such resource (or another fleet's)"),
    409: _err("conflicts with what is stored (exists, or is still in use)"),
    413: _err("request body too large"),
    422: _err("invalid input: the field and the reason"),
    503: _err("store unavailable, or no plan yet; retry"),
}
