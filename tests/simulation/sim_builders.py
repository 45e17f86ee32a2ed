"""Builders for simulator tests: one site, one charger per vehicle, minute-exact times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aggregator.domain import (
    Charger,
    FleetProblem,
    Prices,
    Session,
    Setpoint,
    Site,
    TimeGrid,
    Vehicle,
)

T0 = datetime(2025, 1, 6, tzinfo=UTC)
SITE = "site-0"


def at(minutes: float) -> datetime:
    """``minutes`` after ``T0``."""
    return T0 + timedelta(minutes=minutes)


def problem(
    *,
    battery_kwh: float = 60.0,
    arrival_soc: float = 0.2,
    target_soc: float = 0.8,
    arrival_min: float = 0.0,
    departure_min: float = 8 * 60,
    vehicle_max_kw: float = 10.0,
    vehicle_max_discharge_kw: float = 10.0,
    v2g: bool = False,
    charger_max_kw: float = 10.0,
    charger_max_discharge_kw: float = 0.0,
    charge_efficiency: float = 1.0,
    discharge_efficiency: float = 1.0,
    base_load_kw: tuple[float, ...] = (),
    pv_kw: tuple[float, ...] = (),
    n_slots: int = 8,
) -> FleetProblem:
    """One session ``s0`` of vehicle ``v0`` on charger ``c0`` of ``site-0``; hourly slots."""
    return FleetProblem(
        grid=TimeGrid(T0, timedelta(hours=1), n_slots),
        sites=(Site(SITE, 100.0, base_load_kw=base_load_kw, pv_kw=pv_kw),),
        chargers=(Charger("c0", SITE, charger_max_kw, charger_max_discharge_kw),),
        vehicles=(
            Vehicle(
                "v0",
                battery_kwh,
                vehicle_max_kw,
                vehicle_max_discharge_kw,
                v2g_allowed=v2g,
                charge_efficiency=charge_efficiency,
                discharge_efficiency=discharge_efficiency,
            ),
        ),
        sessions=(
            Session(
                "s0",
                "v0",
                "c0",
                arrival=at(arrival_min),
                departure=at(departure_min),
                arrival_soc=arrival_soc,
                target_soc=target_soc,
            ),
        ),
        prices=Prices.flat(50.0, n_slots),
    )


def setpoint(
    power_kw: float,
    *,
    seq: int = 1,
    valid_min: float = 60.0,
    issued_min: float = 0.0,
    charger_id: str = "c0",
    site_id: str = SITE,
) -> Setpoint:
    """A setpoint issued at ``issued_min`` and valid until ``valid_min`` (minutes after T0)."""
    return Setpoint(
        charger_id=charger_id,
        site_id=site_id,
        power_kw=power_kw,
        issued_at=at(issued_min),
        valid_until=at(valid_min),
        plan_id="plan-1",
        seq=seq,
    )
