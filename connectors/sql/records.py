"""Domain objects <-> table rows. Pure: rows go out as dicts (for bulk statements) and come
back as ORM objects, or for the big tables as plain column values (much faster to load)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from sqlalchemy.orm import InstrumentedAttribute

from aggregator.domain import (
    Charger,
    DepartureConstraint,
    EventRecord,
    EventStatus,
    GridEvent,
    PlanRecord,
    Session,
    Setpoint,
    Site,
    SiteBattery,
    Telemetry,
    Vehicle,
)
from connectors.sql.schema import (
    Base,
    ChargerRow,
    ConstraintRow,
    EventRow,
    PlanRow,
    SessionRow,
    SetpointRow,
    SiteBatteryRow,
    SiteRow,
    TelemetryRow,
    VehicleRow,
)

Row = dict[str, Any]
_EVENT_STATUSES: tuple[EventStatus, ...] = ("active", "cancelled", "completed")


def _columns_of(model: type[Base], domain: type[Any]) -> tuple[InstrumentedAttribute[Any], ...]:
    """The model's columns named like the domain class's fields, so ``domain(**row)`` works."""
    return tuple(getattr(model, f.name) for f in fields(domain))


# Selected as plain values and turned into ``Setpoint(**row)`` / ``Telemetry(**row)``.
SETPOINT_COLUMNS = _columns_of(SetpointRow, Setpoint)
TELEMETRY_COLUMNS = _columns_of(TelemetryRow, Telemetry)


def site_row(s: Site) -> Row:
    return {
        "site_id": s.site_id,
        "import_limit_kw": s.import_limit_kw,
        "export_limit_kw": s.export_limit_kw,
        "base_load_kw": list(s.base_load_kw),
        "pv_kw": list(s.pv_kw),
    }


def site_from(r: SiteRow) -> Site:
    return Site(
        site_id=r.site_id,
        import_limit_kw=r.import_limit_kw,
        export_limit_kw=r.export_limit_kw,
        base_load_kw=tuple(float(v) for v in r.base_load_kw),
        pv_kw=tuple(float(v) for v in r.pv_kw),
    )


def battery_row(b: SiteBattery) -> Row:
    return {
        "site_id": b.site_id,
        "capacity_kwh": b.capacity_kwh,
        "max_charge_kw": b.max_charge_kw,
        "max_discharge_kw": b.max_discharge_kw,
        "charge_efficiency": b.charge_efficiency,
        "discharge_efficiency": b.discharge_efficiency,
        "initial_soc": b.initial_soc,
        "min_soc": b.min_soc,
    }


def battery_from(r: SiteBatteryRow) -> SiteBattery:
    return SiteBattery(
        site_id=r.site_id,
        capacity_kwh=r.capacity_kwh,
        max_charge_kw=r.max_charge_kw,
        max_discharge_kw=r.max_discharge_kw,
        charge_efficiency=r.charge_efficiency,
        discharge_efficiency=r.discharge_efficiency,
        initial_soc=r.initial_soc,
        min_soc=r.min_soc,
    )


def charger_row(c: Charger) -> Row:
    return {
        "charger_id": c.charger_id,
        "site_id": c.site_id,
        "max_charge_kw": c.max_charge_kw,
        "max_discharge_kw": c.max_discharge_kw,
    }


def charger_from(r: ChargerRow) -> Charger:
    return Charger(
        charger_id=r.charger_id,
        site_id=r.site_id,
        max_charge_kw=r.max_charge_kw,
        max_discharge_kw=r.max_discharge_kw,
    )


def vehicle_row(v: Vehicle) -> Row:
    return {
        "vehicle_id": v.vehicle_id,
        "battery_kwh": v.battery_kwh,
        "max_charge_kw": v.max_charge_kw,
        "max_discharge_kw": v.max_discharge_kw,
        "v2g_allowed": v.v2g_allowed,
        "charge_efficiency": v.charge_efficiency,
        "discharge_efficiency": v.discharge_efficiency,
    }


def vehicle_from(r: VehicleRow) -> Vehicle:
    return Vehicle(
        vehicle_id=r.vehicle_id,
        battery_kwh=r.battery_kwh,
        max_charge_kw=r.max_charge_kw,
        max_discharge_kw=r.max_discharge_kw,
        v2g_allowed=r.v2g_allowed,
        charge_efficiency=r.charge_efficiency,
        discharge_efficiency=r.discharge_efficiency,
    )


def constraint_row(c: DepartureConstraint) -> Row:
    return {
        "vehicle_id": c.vehicle_id,
        "departure_at": c.departure_at,
        "target_soc": c.target_soc,
        "energy_kwh": c.energy_kwh,
        "min_soc": c.min_soc,
    }


def constraint_from(r: ConstraintRow) -> DepartureConstraint:
    return DepartureConstraint(
        vehicle_id=r.vehicle_id,
        departure_at=r.departure_at,
        target_soc=r.target_soc,
        energy_kwh=r.energy_kwh,
        min_soc=r.min_soc,
    )


def session_row(s: Session) -> Row:
    """Every Session field; ``closed_at`` is the store's own and is not part of it."""
    return {
        "session_id": s.session_id,
        "vehicle_id": s.vehicle_id,
        "charger_id": s.charger_id,
        "arrival": s.arrival,
        "departure": s.departure,
        "arrival_soc": s.arrival_soc,
        "target_soc": s.target_soc,
        "energy_kwh": s.energy_kwh,
        "min_soc": s.min_soc,
    }


def session_from(r: SessionRow) -> Session:
    return Session(
        session_id=r.session_id,
        vehicle_id=r.vehicle_id,
        charger_id=r.charger_id,
        arrival=r.arrival,
        departure=r.departure,
        arrival_soc=r.arrival_soc,
        target_soc=r.target_soc,
        energy_kwh=r.energy_kwh,
        min_soc=r.min_soc,
    )


def event_row(rec: EventRecord) -> Row:
    e = rec.event
    return {
        "event_id": e.event_id,
        "start_at": e.start,
        "end_at": e.end,
        "site_ids": sorted(e.site_ids),
        "cap_kw": e.cap_kw,
        "shed_kw": e.shed_kw,
        "modification_number": rec.modification_number,
        "status": rec.status,
        "received_at": rec.received_at,
    }


def event_from(r: EventRow) -> EventRecord:
    if r.status not in _EVENT_STATUSES:
        raise ValueError(f"event {r.event_id} status: unknown value {r.status!r} in the store")
    return EventRecord(
        event=GridEvent(
            event_id=r.event_id,
            start=r.start_at,
            end=r.end_at,
            site_ids=frozenset(str(s) for s in r.site_ids),
            cap_kw=r.cap_kw,
            shed_kw=r.shed_kw,
        ),
        modification_number=r.modification_number,
        status=r.status,
        received_at=r.received_at,
    )


def plan_record_from(r: PlanRow) -> PlanRecord:
    return PlanRecord(
        plan_id=r.plan_id,
        created_at=r.created_at,
        solver_path=r.solver_path,
        solver_status=r.solver_status,
        objective=r.objective,
        shortfall_kwh=r.shortfall_kwh,
        superseded=r.superseded,
    )


def setpoint_row(s: Setpoint) -> Row:
    return {
        "seq": s.seq,
        "charger_id": s.charger_id,
        "site_id": s.site_id,
        "power_kw": s.power_kw,
        "issued_at": s.issued_at,
        "valid_until": s.valid_until,
        "plan_id": s.plan_id,
    }


def telemetry_row(t: Telemetry) -> Row:
    return {
        "site_id": t.site_id,
        "charger_id": t.charger_id,
        "ts": t.ts,
        "power_kw": t.power_kw,
        "plugged": t.plugged,
        "vehicle_id": t.vehicle_id,
        "soc": t.soc,
        "status": t.status,
    }
