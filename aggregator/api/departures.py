"""Departure constraints, one-off and weekly, per vehicle; each accepted one re-plans.

``PUT /vehicles/{id}/departure`` is stored (durable) before the answer, then the fleet is
re-planned. A weekly rule (``.../departure/recurring``) sets the vehicle's constraint to its
next departure whenever the vehicle has none in the future (``services/departures.py``).
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from aggregator.api.assets import visible_vehicle
from aggregator.api.auth import Ctx, needs
from aggregator.api.common import not_found, store, table, unprocessable
from aggregator.api.schemas import (
    ERRORS,
    WEEKDAYS,
    Departure,
    DepartureBody,
    Recurring,
    RecurringBody,
)
from aggregator.domain import (
    Account,
    DepartureConstraint,
    RecurringDeparture,
    ValidationError,
    Vehicle,
)
from aggregator.services.access import sees_vehicle

router = APIRouter(prefix="/api/v1", tags=["departures"], responses=ERRORS)

Manager = Annotated[Account, Depends(needs("departures:write"))]


def _out(c: DepartureConstraint) -> Departure:
    return Departure(
        vehicle_id=c.vehicle_id,
        departure_at=c.departure_at,
        target_soc=c.target_soc,
        energy_kwh=c.energy_kwh,
        min_soc=c.min_soc,
    )


def _check_need(vehicle: Vehicle, target_soc: float | None, energy: float | None) -> None:
    if (target_soc is None) == (energy is None):
        raise unprocessable("target_soc", "give exactly one of target_soc, energy_kwh")
    if energy is not None and energy > vehicle.battery_kwh:
        raise unprocessable(
            "energy_kwh", f"{energy:g} kWh is more than the {vehicle.battery_kwh:g} kWh battery"
        )


@router.put("/vehicles/{vehicle_id}/departure", response_model=Departure)
async def set_departure(
    vehicle_id: str, body: DepartureBody, ctx: Ctx, account: Manager
) -> Departure:
    vehicle = await visible_vehicle(ctx, account, vehicle_id)
    _check_need(vehicle, body.target_soc, body.energy_kwh)
    if body.departure_at <= ctx.clock.now():
        raise unprocessable("departure_at", "is in the past")
    try:
        constraint = DepartureConstraint(
            vehicle_id,
            body.departure_at,
            target_soc=body.target_soc,
            energy_kwh=body.energy_kwh,
            min_soc=body.min_soc,
        )
    except ValidationError as exc:
        raise unprocessable(exc.field, exc.reason) from exc
    await ctx.runtime.submit_constraint(constraint)  # stored before it returns
    return _out(constraint)


@router.get("/vehicles/{vehicle_id}/departure", response_model=Departure)
async def get_departure(vehicle_id: str, ctx: Ctx, account: Manager) -> Departure:
    await visible_vehicle(ctx, account, vehicle_id)
    held = next((c for c in await store(ctx.repo.constraints) if c.vehicle_id == vehicle_id), None)
    if held is None:
        raise not_found(f"departure of vehicle {vehicle_id}")
    return _out(held)


@router.delete("/vehicles/{vehicle_id}/departure", status_code=204)
async def delete_departure(vehicle_id: str, ctx: Ctx, account: Manager) -> Response:
    await visible_vehicle(ctx, account, vehicle_id)
    if not await store(ctx.repo.delete_constraint, vehicle_id):
        raise not_found(f"departure of vehicle {vehicle_id}")
    ctx.runtime.request_replan(f"constraint of {vehicle_id} deleted")
    return Response(status_code=204)


@router.get("/departures", response_model=list[Departure])
async def list_departures(request: Request, ctx: Ctx, account: Manager) -> object:
    members = await store(ctx.accounts.vehicle_fleets)
    rows = [
        _out(c)
        for c in await store(ctx.repo.constraints)
        if sees_vehicle(account, members.get(c.vehicle_id))
    ]
    return table(request, rows, list(Departure.model_fields))


# ---------------------------------------------------------------------- weekly rules


def _recurring_out(rule: RecurringDeparture, now: datetime) -> Recurring:
    return Recurring(
        vehicle_id=rule.vehicle_id,
        weekdays=[WEEKDAYS[d] for d in sorted(rule.weekdays)],
        time=rule.at.strftime("%H:%M"),
        timezone=rule.timezone,
        target_soc=rule.target_soc,
        energy_kwh=rule.energy_kwh,
        min_soc=rule.min_soc,
        next_departure_at=rule.next_after(now),
    )


@router.put("/vehicles/{vehicle_id}/departure/recurring", response_model=Recurring)
async def set_recurring(
    vehicle_id: str, body: RecurringBody, ctx: Ctx, account: Manager
) -> Recurring:
    vehicle = await visible_vehicle(ctx, account, vehicle_id)
    _check_need(vehicle, body.target_soc, body.energy_kwh)
    try:
        rule = RecurringDeparture(
            vehicle_id,
            frozenset(WEEKDAYS.index(d) for d in body.weekdays),
            time.fromisoformat(body.time),
            body.timezone,
            target_soc=body.target_soc,
            energy_kwh=body.energy_kwh,
            min_soc=body.min_soc,
        )
    except ValidationError as exc:
        raise unprocessable(exc.field, exc.reason) from exc
    await store(ctx.accounts.save_recurring, rule)
    now = ctx.clock.now()
    # A new rule applies from now: the vehicle's next departure is the rule's.
    await ctx.runtime.submit_constraint(
        DepartureConstraint(
            vehicle_id,
            rule.next_after(now),
            target_soc=rule.target_soc,
            energy_kwh=rule.energy_kwh,
            min_soc=rule.min_soc,
        )
    )
    return _recurring_out(rule, now)


@router.get("/vehicles/{vehicle_id}/departure/recurring", response_model=Recurring)
async def get_recurring(vehicle_id: str, ctx: Ctx, account: Manager) -> Recurring:
    await visible_vehicle(ctx, account, vehicle_id)
    rules = await store(ctx.accounts.recurring)
    rule = next((r for r in rules if r.vehicle_id == vehicle_id), None)
    if rule is None:
        raise not_found(f"weekly departure of vehicle {vehicle_id}")
    return _recurring_out(rule, ctx.clock.now())


@router.delete("/vehicles/{vehicle_id}/departure/recurring", status_code=204)
async def delete_recurring(vehicle_id: str, ctx: Ctx, account: Manager) -> Response:
    await visible_vehicle(ctx, account, vehicle_id)
    if not await store(ctx.accounts.delete_recurring, vehicle_id):
        raise not_found(f"weekly departure of vehicle {vehicle_id}")
    return Response(status_code=204)
