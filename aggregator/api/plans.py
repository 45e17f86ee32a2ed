"""The current plan: per site, per vehicle; the flexibility envelope and the forecasts."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from aggregator.api.assets import visible_vehicle
from aggregator.api.auth import Ctx, needs
from aggregator.api.common import not_found, store, table
from aggregator.api.context import ApiContext
from aggregator.api.schemas import ERRORS, PlanSummary, SitePlan, SlotsOut, VehicleSchedule
from aggregator.domain import Account, TimeGrid
from aggregator.services.control import CurrentPlan

router = APIRouter(prefix="/api/v1", tags=["plans"], responses=ERRORS)

PlanReader = Annotated[Account, Depends(needs("plans:read"))]
VehicleReader = Annotated[Account, Depends(needs("vehicles:read"))]


def current(ctx: ApiContext) -> CurrentPlan:
    plan = ctx.runtime.controller.current
    if plan is None:
        raise HTTPException(503, "no plan yet: the first one is being made")
    return plan


@router.get("/plan", response_model=PlanSummary)
async def plan_summary(ctx: Ctx, _: PlanReader) -> PlanSummary:
    cur = current(ctx)
    p = cur.plan
    return PlanSummary(
        plan_id=cur.plan_id,
        created_at=cur.created_at,
        solver_path=p.solver_path,
        solver_status=p.solver_status,
        grid=SlotsOut(
            start=p.grid.start, step_s=p.grid.step.total_seconds(), n_slots=p.grid.n_slots
        ),
        sessions=len(p.schedules),
        total_shortfall_kwh=p.total_shortfall_kwh,
        cost={k: float(v) for k, v in asdict(p.cost).items()},
        site_power_kw={k: list(v) for k, v in p.site_power_kw.items()},
    )


class SlotRow(BaseModel):
    start: datetime
    power_kw: float
    battery_kw: float
    import_limit_kw: float


@router.get("/sites/{site_id}/plan", response_model=SitePlan)
async def site_plan(site_id: str, request: Request, ctx: Ctx, _: PlanReader) -> object:
    cur = current(ctx)
    site = next((s for s in ctx.runtime.controller.fleet.sites if s.site_id == site_id), None)
    if site is None:
        raise not_found(f"site {site_id}")
    p = cur.plan
    starts = list(p.grid.slot_starts())
    power = list(p.site_power_kw.get(site_id, (0.0,) * p.grid.n_slots))
    battery = list(p.site_battery_kw.get(site_id, (0.0,) * p.grid.n_slots))
    if "text/csv" in request.headers.get("accept", ""):
        rows = [
            SlotRow(start=t, power_kw=a, battery_kw=b, import_limit_kw=site.import_limit_kw)
            for t, a, b in zip(starts, power, battery, strict=True)
        ]
        return table(request, rows, list(SlotRow.model_fields))
    return SitePlan(
        site_id=site_id,
        plan_id=cur.plan_id,
        created_at=cur.created_at,
        solver_path=p.solver_path,
        import_limit_kw=site.import_limit_kw,
        export_limit_kw=site.export_limit_kw,
        slot_starts=starts,
        power_kw=power,
        battery_kw=battery,
    )


@router.get("/vehicles/{vehicle_id}/schedule", response_model=VehicleSchedule)
async def vehicle_schedule(vehicle_id: str, ctx: Ctx, account: VehicleReader) -> VehicleSchedule:
    await visible_vehicle(ctx, account, vehicle_id)
    cur = current(ctx)
    p = cur.plan
    out = VehicleSchedule(
        vehicle_id=vehicle_id,
        plan_id=cur.plan_id,
        created_at=cur.created_at,
        solver_path=p.solver_path,
    )
    sched = next((s for s in p.schedules if s.vehicle_id == vehicle_id), None)
    if sched is None:
        return out  # not plugged in: nothing planned
    outcome = next((o for o in p.outcomes if o.session_id == sched.session_id), None)
    live = next(
        (x for x in ctx.runtime.controller.sessions() if x.session.session_id == sched.session_id),
        None,
    )
    grid = p.grid
    out.session_id = sched.session_id
    out.charger_id = sched.charger_id
    out.site_id = sched.site_id
    out.slot_starts = [grid.slot_start(sched.first_slot + i) for i in range(len(sched.power_kw))]
    out.power_kw = list(sched.power_kw)
    out.soc = list(sched.soc)
    out.departure_at = live.session.departure if live is not None else None
    if outcome is not None:
        out.target_kwh = outcome.target_kwh
        out.expected_soc_at_departure = outcome.soc_at_departure
        out.shortfall_kwh = outcome.shortfall_kwh
        out.shortfall_reason = outcome.reason
    return out


# ---------------------------------------------------------------------- envelope, forecasts


class EnvelopeRow(BaseModel):
    start: datetime
    min_kw: float
    max_kw: float
    baseline_kw: float


@router.get("/envelope", response_model=list[EnvelopeRow])
async def envelope(request: Request, ctx: Ctx, _: PlanReader) -> object:
    """Per slot of the current plan: the least and most the fleet can take, and the plan."""
    if ctx.envelope is None:
        raise HTTPException(503, "no envelope calculator configured")
    cur = current(ctx)
    rows = ctx.envelope_cache.get(cur.plan_id)
    if rows is None:
        problem = ctx.runtime.controller.build_problem(cur.created_at)
        env = await asyncio.to_thread(ctx.envelope.envelope, problem)
        rows = [
            EnvelopeRow(start=t, min_kw=lo, max_kw=hi, baseline_kw=b)
            for t, lo, hi, b in zip(
                env.grid.slot_starts(), env.min_kw, env.max_kw, env.baseline_kw, strict=True
            )
        ]
        ctx.envelope_cache.clear()
        ctx.envelope_cache[cur.plan_id] = rows
    return table(request, rows, list(EnvelopeRow.model_fields))


class ForecastRow(BaseModel):
    start: datetime
    import_price_per_mwh: float
    export_price_per_mwh: float
    site_id: str | None = None
    base_load_kw: float | None = None
    pv_kw: float | None = None


@router.get("/forecasts", response_model=list[ForecastRow])
async def forecasts(
    request: Request,
    ctx: Ctx,
    _: PlanReader,
    hours: Annotated[float, Query(gt=0, le=168, description="how far ahead")] = 24.0,
) -> object:
    """Prices per slot over the next ``hours``, and each site's base load and PV forecast."""
    controller = ctx.runtime.controller
    step = controller.settings.step
    now = ctx.clock.now().replace(microsecond=0)
    grid = TimeGrid(now, step, max(1, round(hours * 3600 / step.total_seconds())))
    sites = [s.site_id for s in controller.fleet.sites]
    prices = await store(ctx.forecasts.prices, grid)
    profiles = await store(ctx.forecasts.site_profiles, grid, sites)
    rows = []
    for t, start in enumerate(grid.slot_starts()):
        imp, exp = prices.import_per_mwh[t], prices.export_per_mwh[t]
        listed: list[str | None] = list(sites) or [None]
        for site in listed:
            base, pv = profiles.get(site, ((), ())) if site else ((), ())
            rows.append(
                ForecastRow(
                    start=start,
                    import_price_per_mwh=imp,
                    export_price_per_mwh=exp,
                    site_id=site,
                    base_load_kw=base[t] if base else 0.0,
                    pv_kw=pv[t] if pv else 0.0,
                )
            )
    return table(request, rows, list(ForecastRow.model_fields))
