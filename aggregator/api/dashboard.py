"""The operations dashboard: one page (``/dashboard``) and the snapshot it polls.

``GET /api/v1/dashboard`` answers everything the page draws in one JSON document, cut to
what the caller may see (``services/access.py``):

* sites (operator, trader): online flag, site power from telemetry over the last
  ``history_minutes`` against the import limit, the current plan's site power ahead, and per
  charger the last setpoint and its age;
* vehicles (operator: all, fleet manager: its fleets' only): every plugged-in session with its
  SoC now, target, departure and whether the plan gets it there;
* grid events (operator, trader): utility events that are active or still to come, with our
  opt-in/out, and local (scenario) events.

The page itself is static (``aggregator/api/static/``), shipped with the package; it loads
nothing from anywhere else (its Content-Security-Policy says so).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib.resources import files
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from aggregator.api.auth import Ctx, needs_any
from aggregator.api.common import not_found, store
from aggregator.api.context import ApiContext
from aggregator.api.schemas import ERRORS
from aggregator.domain import Account, Setpoint, Site, Telemetry, TimeGrid
from aggregator.services.access import allowed, sees_vehicle
from aggregator.services.control import CurrentPlan, LiveSession

router = APIRouter(tags=["dashboard"])

Signed = Annotated[Account, Depends(needs_any)]

# A charger's reading counts towards site power this long (as in the VEN's reports).
READING_MAX_AGE = timedelta(minutes=5)
# Most points per site history: the bucket widens with the window.
MAX_POINTS = 240
MIN_BUCKET = timedelta(seconds=10)
# Setpoints are looked up this far back; older ones are reported as "none within".
SETPOINT_LOOKBACK = timedelta(hours=1)
# A plan that leaves a vehicle more than this short is a shortfall. [kWh]
SHORTFALL_TOLERANCE_KWH = 0.05
# How often the page asks again: a long history window is a bigger query, asked less often.
POLL_SECONDS = 3.0
POLL_SECONDS_LONG = 10.0

Section = Literal["sites", "vehicles", "events", "plan"]


# ---------------------------------------------------------------------- answer


class PlanInfo(BaseModel):
    plan_id: str
    created_at: datetime
    solver_path: str
    solver_status: str
    sessions: int
    total_shortfall_kwh: float


class ChargerState(BaseModel):
    charger_id: str
    max_charge_kw: float
    max_discharge_kw: float
    power_kw: float | None = Field(None, description="latest telemetry")
    plugged: bool | None = None
    last_telemetry_at: datetime | None = None
    setpoint_kw: float | None = Field(None, description="latest setpoint sent")
    setpoint_at: datetime | None = None
    setpoint_valid_until: datetime | None = None
    setpoint_age_s: float | None = None
    setpoint_expired: bool | None = None


class SiteState(BaseModel):
    site_id: str
    import_limit_kw: float
    export_limit_kw: float
    online: bool
    last_telemetry_at: datetime | None
    setpoint_age_s: float | None = Field(
        None, description="age of the newest setpoint sent to any of its chargers"
    )
    history_t: list[datetime] = Field(description="ends of the history buckets, then now")
    history_kw: list[float | None] = Field(
        description="site power: chargers' latest telemetry + forecast base load - PV; "
        "null where no charger reported within 5 minutes"
    )
    chargers_kw: list[float | None] = Field(description="the chargers' part of history_kw")
    plan_t: list[datetime] = Field(description="slot starts of the current plan")
    plan_kw: list[float] = Field(description="planned net site power per slot")
    plan_end: datetime | None = None
    chargers: list[ChargerState]


VehicleStatus = Literal["on track", "shortfall", "not planned", "overdue"]


class VehicleState(BaseModel):
    vehicle_id: str
    fleet_id: str | None
    session_id: str
    site_id: str
    charger_id: str
    battery_kwh: float
    arrival: datetime
    departure: datetime
    soc: float = Field(description="now, from telemetry (or integrated power)")
    target_soc: float | None = Field(
        None, description="asked for, or what an energy_kwh need comes to at departure"
    )
    energy_kwh: float | None = None
    min_soc: float
    power_kw: float = Field(description="latest telemetry")
    last_reading_at: datetime
    expected_soc_at_departure: float | None = None
    shortfall_kwh: float | None = None
    shortfall_reason: str | None = None
    status: VehicleStatus
    plan_t: list[datetime] = Field(default_factory=list, description="ends of planned slots")
    plan_soc: list[float] = Field(default_factory=list)


class EventLimit(BaseModel):
    start: datetime
    end: datetime
    cap_kw: float | None
    shed_kw: float | None


class EventPrice(BaseModel):
    start: datetime
    end: datetime
    price_per_mwh: float
    mode: str = Field(description="replace: the import price; add: on top of it")


class EventState(BaseModel):
    event_id: str
    source: Literal["utility", "local"]
    program: str | None = None
    status: str
    state: str
    opt: str | None = Field(None, description="optIn / optOut (utility events)")
    reason: str = ""
    start: datetime
    end: datetime
    phase: Literal["active", "upcoming"]
    site_ids: list[str]
    limits: list[EventLimit]
    prices: list[EventPrice] = Field(default_factory=list)


class AccountInfo(BaseModel):
    account_id: str
    role: str


class DashboardOut(BaseModel):
    now: datetime
    account: AccountInfo
    sections: list[Section]
    poll_seconds: float
    history_minutes: float
    setpoint_lifetime_s: float | None = None
    plan: PlanInfo | None = None
    sites: list[SiteState] = Field(default_factory=list)
    sites_offline: list[str] = Field(default_factory=list)
    vehicles: list[VehicleState] = Field(default_factory=list)
    events: list[EventState] = Field(default_factory=list)
    counters: dict[str, int] = Field(default_factory=dict)


# ---------------------------------------------------------------------- pure parts


def bucket_ends(since: datetime, now: datetime, points: int = MAX_POINTS) -> list[datetime]:
    """Ends of equal buckets after ``since`` up to ``now``, aligned to the bucket size (so
    they stay put between polls), with ``now`` itself last."""
    width = max(MIN_BUCKET, (now - since) / points)
    w = width.total_seconds()
    t = datetime.fromtimestamp(math.floor(since.timestamp() / w) * w + w, UTC)
    ends: list[datetime] = []
    while t < now:
        ends.append(t)
        t += width
    ends.append(now)
    return ends


def chargers_power(
    readings: Sequence[Telemetry], at: Sequence[datetime], max_age: timedelta = READING_MAX_AGE
) -> list[float | None]:
    """At each time of ``at`` (ascending): the sum of every charger's latest reading within
    ``max_age`` before it; None when no charger reported within ``max_age``.

    ``readings`` must be in time order (as ``Repository.telemetry`` returns them).
    """
    latest: dict[str, Telemetry] = {}
    out: list[float | None] = []
    i = 0
    for t in at:
        while i < len(readings) and readings[i].ts <= t:
            latest[readings[i].charger_id] = readings[i]
            i += 1
        fresh = [r.power_kw for r in latest.values() if r.ts >= t - max_age]
        out.append(float(sum(fresh)) if fresh else None)
    return out


def forecast_at(
    grid: TimeGrid, profile: tuple[tuple[float, ...], tuple[float, ...]], t: datetime
) -> float:
    """Base load minus PV at ``t`` from per-slot profiles on ``grid`` (0 where absent)."""
    base, pv = profile
    k = min(grid.n_slots - 1, max(0, math.floor(grid.position(t))))
    return (base[k] if base else 0.0) - (pv[k] if pv else 0.0)


def latest_setpoints(setpoints: Iterable[Setpoint]) -> dict[str, Setpoint]:
    """The newest setpoint (highest seq) per charger."""
    out: dict[str, Setpoint] = {}
    for sp in setpoints:
        held = out.get(sp.charger_id)
        if held is None or sp.seq > held.seq:
            out[sp.charger_id] = sp
    return out


def _age(now: datetime, at: datetime | None) -> float | None:
    return None if at is None else max(0.0, (now - at).total_seconds())


# ---------------------------------------------------------------------- sections


async def _sites(
    ctx: ApiContext, now: datetime, history: timedelta, ahead: timedelta
) -> list[SiteState]:
    controller = ctx.runtime.controller
    sites = list(controller.fleet.sites)
    since = now - history
    ends = bucket_ends(since, now)
    step = controller.settings.step
    n = max(1, math.ceil((now - since) / step) + 1)
    past = TimeGrid(since.replace(microsecond=0), step, n)
    profiles = await store(ctx.forecasts.site_profiles, past, [s.site_id for s in sites])
    # From one reading age before the window: the first buckets count what was fresh then.
    readings = await store(
        ctx.repo.telemetry, since - READING_MAX_AGE, now + timedelta(microseconds=1)
    )
    newest = {(t.site_id, t.charger_id): t for t in await store(ctx.repo.latest_telemetry)}
    sent = latest_setpoints(await store(ctx.repo.setpoints_since, now - SETPOINT_LOOKBACK))
    by_site: dict[str, list[Telemetry]] = {}
    for r in readings:
        by_site.setdefault(r.site_id, []).append(r)
    current = controller.current
    out = []
    for site in sites:
        evs = chargers_power(by_site.get(site.site_id, []), ends)
        profile = profiles.get(site.site_id, ((), ()))
        total = [
            None if p is None else p + forecast_at(past, profile, t)
            for p, t in zip(evs, ends, strict=True)
        ]
        plan_t, plan_kw, plan_end = _site_plan(current, site, since, now + ahead)
        chargers = []
        for c in controller.fleet.chargers:
            if c.site_id != site.site_id:
                continue
            reading = newest.get((site.site_id, c.charger_id))
            sp = sent.get(c.charger_id)
            chargers.append(
                ChargerState(
                    charger_id=c.charger_id,
                    max_charge_kw=c.max_charge_kw,
                    max_discharge_kw=c.max_discharge_kw,
                    power_kw=reading.power_kw if reading else None,
                    plugged=reading.plugged if reading else None,
                    last_telemetry_at=reading.ts if reading else None,
                    setpoint_kw=sp.power_kw if sp else None,
                    setpoint_at=sp.issued_at if sp else None,
                    setpoint_valid_until=sp.valid_until if sp else None,
                    setpoint_age_s=_age(now, sp.issued_at if sp else None),
                    setpoint_expired=(sp.valid_until <= now) if sp else None,
                )
            )
        seen = [c.last_telemetry_at for c in chargers if c.last_telemetry_at is not None]
        issued = [c.setpoint_at for c in chargers if c.setpoint_at is not None]
        out.append(
            SiteState(
                site_id=site.site_id,
                import_limit_kw=site.import_limit_kw,
                export_limit_kw=site.export_limit_kw,
                online=controller.site_online.get(site.site_id, False),
                last_telemetry_at=max(seen, default=None),
                setpoint_age_s=_age(now, max(issued, default=None)),
                history_t=ends,
                history_kw=total,
                chargers_kw=evs,
                plan_t=plan_t,
                plan_kw=plan_kw,
                plan_end=plan_end,
                chargers=chargers,
            )
        )
    return out


def _site_plan(
    current: CurrentPlan | None, site: Site, since: datetime, until: datetime
) -> tuple[list[datetime], list[float], datetime | None]:
    """The current plan's slots for ``site`` that overlap ``[since, until)``."""
    if current is None:
        return [], [], None
    grid = current.plan.grid
    series = current.plan.site_power_kw.get(site.site_id, ())
    starts, power = [], []
    for k, start in enumerate(grid.slot_starts()):
        if k >= len(series) or start >= until:
            break
        if start + grid.step > since:
            starts.append(start)
            power.append(float(series[k]))
    end = starts[-1] + grid.step if starts else None
    return starts, power, end


def _vehicle(
    live: LiveSession,
    fleet_id: str | None,
    battery_kwh: float,
    current: CurrentPlan | None,
    now: datetime,
) -> VehicleState:
    s = live.session
    soc = min(1.0, max(0.0, live.energy_kwh / battery_kwh))
    target = s.target_soc
    if target is None and s.energy_kwh is not None:
        target = min(1.0, s.arrival_soc + s.energy_kwh / battery_kwh)
    out = VehicleState(
        vehicle_id=s.vehicle_id,
        fleet_id=fleet_id,
        session_id=s.session_id,
        site_id=live.site_id,
        charger_id=s.charger_id,
        battery_kwh=battery_kwh,
        arrival=s.arrival,
        departure=s.departure,
        soc=soc,
        target_soc=target,
        energy_kwh=s.energy_kwh,
        min_soc=s.min_soc,
        power_kw=live.last_power_kw,
        last_reading_at=live.last_ts,
        status="not planned",
    )
    plan = current.plan if current is not None else None
    sched = (
        next((x for x in plan.schedules if x.session_id == s.session_id), None) if plan else None
    )
    outcome = (
        next((o for o in plan.outcomes if o.session_id == s.session_id), None) if plan else None
    )
    if plan is not None and sched is not None:
        grid = plan.grid
        out.plan_t = [
            grid.start + grid.step * (sched.first_slot + i + 1) for i in range(len(sched.soc))
        ]
        out.plan_soc = [float(x) for x in sched.soc]
    if outcome is not None:
        out.expected_soc_at_departure = outcome.soc_at_departure
        out.shortfall_kwh = outcome.shortfall_kwh
        out.shortfall_reason = outcome.reason
        out.status = "shortfall" if outcome.shortfall_kwh > SHORTFALL_TOLERANCE_KWH else "on track"
    if s.departure <= now:
        out.status = "overdue"
    return out


async def _vehicles(ctx: ApiContext, account: Account, now: datetime) -> list[VehicleState]:
    controller = ctx.runtime.controller
    live = controller.sessions()
    if not live:
        return []
    members: Mapping[str, str] = await store(ctx.accounts.vehicle_fleets)
    batteries = {v.vehicle_id: v.battery_kwh for v in controller.fleet.vehicles}
    default = controller.settings.default_battery_kwh
    out = [
        _vehicle(
            x,
            members.get(x.session.vehicle_id),
            batteries.get(x.session.vehicle_id, default),
            controller.current,
            now,
        )
        for x in live
        if sees_vehicle(account, members.get(x.session.vehicle_id))
    ]
    return sorted(out, key=lambda v: (v.site_id, v.vehicle_id))


async def event_states(ctx: ApiContext, now: datetime) -> list[EventState]:
    out: list[EventState] = []
    utility: set[str] = set()
    if ctx.events is not None:
        for r in await store(ctx.events.all):
            e = r.event
            utility.add(e.event_id)
            if e.end <= now or r.state in ("cancelled", "completed"):
                continue
            out.append(
                EventState(
                    event_id=e.event_id,
                    source="utility",
                    program=e.program,
                    status=e.status,
                    state=r.state,
                    opt=r.opt,
                    reason=r.reason,
                    start=e.start,
                    end=e.end,
                    phase="active" if e.start <= now else "upcoming",
                    site_ids=sorted(e.site_ids),
                    limits=[
                        EventLimit(start=g.start, end=g.end, cap_kw=g.cap_kw, shed_kw=g.shed_kw)
                        for g in e.limits
                    ],
                    prices=[
                        EventPrice(
                            start=p.start, end=p.end, price_per_mwh=p.price_per_mwh, mode=p.mode
                        )
                        for p in e.prices
                    ],
                )
            )
    # Events the planner holds that no utility event made (scenario or operator events).
    for rec in await store(ctx.repo.events):
        g = rec.event
        if g.event_id.split("/", 1)[0] in utility or rec.status != "active" or g.end <= now:
            continue
        out.append(
            EventState(
                event_id=g.event_id,
                source="local",
                status=rec.status,
                state=rec.status,
                start=g.start,
                end=g.end,
                phase="active" if g.start <= now else "upcoming",
                site_ids=sorted(g.site_ids),
                limits=[EventLimit(start=g.start, end=g.end, cap_kw=g.cap_kw, shed_kw=g.shed_kw)],
            )
        )
    return sorted(out, key=lambda e: (e.start, e.event_id))


# ---------------------------------------------------------------------- routes

COUNTERS = (
    "plans_lp",
    "plans_heuristic",
    "setpoints_sent",
    "telemetry_ingested",
    "telemetry_rejected",
)


@router.get("/api/v1/dashboard", response_model=DashboardOut, responses=ERRORS)
async def dashboard(
    ctx: Ctx,
    account: Signed,
    history_minutes: Annotated[
        float, Query(gt=0, le=24 * 60, description="site power history to include [min]")
    ] = 120.0,
    ahead_hours: Annotated[
        float, Query(gt=0, le=48, description="plan ahead of now to include [h]")
    ] = 4.0,
) -> DashboardOut:
    """One snapshot for the dashboard, cut to what the caller may see.

    Operators see everything; traders sites, plan and events but no vehicles; a fleet
    manager only the plugged-in vehicles of its fleets (no site data, no events).
    """
    controller = ctx.runtime.controller
    now = ctx.clock.now()
    sees_sites = all(allowed(account, s) for s in ("assets:read", "telemetry:read", "plans:read"))
    out = DashboardOut(
        now=now,
        account=AccountInfo(account_id=account.account_id, role=account.role),
        sections=[],
        poll_seconds=POLL_SECONDS if history_minutes <= 120 else POLL_SECONDS_LONG,
        history_minutes=history_minutes,
    )
    if allowed(account, "plans:read"):
        out.sections.append("plan")
        cur = controller.current
        if cur is not None:
            out.plan = PlanInfo(
                plan_id=cur.plan_id,
                created_at=cur.created_at,
                solver_path=cur.plan.solver_path,
                solver_status=cur.plan.solver_status,
                sessions=len(cur.plan.schedules),
                total_shortfall_kwh=cur.plan.total_shortfall_kwh,
            )
    if sees_sites:
        out.sections.append("sites")
        out.setpoint_lifetime_s = controller.settings.lifetime.total_seconds()
        out.sites = await _sites(
            ctx, now, timedelta(minutes=history_minutes), timedelta(hours=ahead_hours)
        )
        out.sites_offline = [s.site_id for s in out.sites if not s.online]
        out.counters = {k: int(controller.counters.get(k, 0)) for k in COUNTERS}
    if allowed(account, "vehicles:read"):
        out.sections.append("vehicles")
        out.vehicles = await _vehicles(ctx, account, now)
    if allowed(account, "grid:read"):
        out.sections.append("events")
        out.events = await event_states(ctx, now)
    return out


# ---------------------------------------------------------------------- the page

# Everything the page loads comes from here; nothing from another origin.
_ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _static(name: str) -> bytes:
    return files("aggregator.api").joinpath("static", name).read_bytes()


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("dashboard", status_code=307)


@router.get("/dashboard", include_in_schema=False)
async def page() -> Response:
    return Response(_static("index.html"), media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/dashboard/{asset}", include_in_schema=False)
async def asset(asset: str) -> Response:
    media = _ASSETS.get(asset)
    if media is None:
        raise not_found(f"dashboard file {asset}")
    return Response(_static(asset), media_type=media, headers=_HEADERS)
