"""Use case: record what the aggregator measures and decides as time-series points.

The measurements are the contract in docs/timeseries.md. The runtime hands the recorder what
it has just done (telemetry stored, setpoints delivered, a plan adopted, an event baseline
captured); the recorder turns it into points on its own thread and writes them to the
``TimeSeriesStore``, whose ``write`` only queues. Nothing here makes the control loop wait,
and a failure here is logged and counted, never raised into the loop.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby

from aggregator.domain import (
    EventBaseline,
    FleetProblem,
    GridEvent,
    Plan,
    Point,
    Prices,
    Setpoint,
    Site,
    Telemetry,
    TimeGrid,
)
from aggregator.ports import TimeSeriesStore

log = logging.getLogger(__name__)

# A charger's reading counts toward its site's power this long (the dashboard's rule).
READING_MAX_AGE = timedelta(minutes=5)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_s(t: datetime) -> float:
    return (t - _EPOCH).total_seconds()


# ---------------------------------------------------------------------- conversions


def telemetry_points(batch: Iterable[Telemetry]) -> list[Point]:
    out = []
    for t in batch:
        tags = {"site_id": t.site_id, "charger_id": t.charger_id}
        if t.vehicle_id:
            tags["vehicle_id"] = t.vehicle_id
        fields: dict[str, float | int] = {"power_kw": float(t.power_kw), "plugged": int(t.plugged)}
        if t.soc is not None:
            fields["soc"] = float(t.soc)
        out.append(Point("telemetry", t.ts, fields, tags))
    return out


def setpoint_points(setpoints: Iterable[Setpoint]) -> list[Point]:
    return [
        Point(
            "setpoint",
            s.issued_at,
            {
                "power_kw": float(s.power_kw),
                "seq": int(s.seq),
                "valid_until": epoch_s(s.valid_until),
                "plan_id": s.plan_id,
            },
            {"site_id": s.site_id, "charger_id": s.charger_id},
        )
        for s in setpoints
    ]


def plan_points(plan_id: str, plan: Plan, sites: Sequence[Site]) -> list[Point]:
    """Per site and slot: planned net power, the vehicles' part, the grid connection."""
    grid = plan.grid
    ev: dict[str, list[float]] = {}
    for sched in plan.schedules:
        series = ev.setdefault(sched.site_id, [0.0] * grid.n_slots)
        for i, p in enumerate(sched.power_kw):
            k = sched.first_slot + i
            if 0 <= k < grid.n_slots:
                series[k] += p
    out = []
    for site in sites:
        net = plan.site_power_kw.get(site.site_id)
        if net is None:
            continue
        vehicles = ev.get(site.site_id, [0.0] * grid.n_slots)
        tags = {"site_id": site.site_id, "plan_id": plan_id}
        for k, start in enumerate(grid.slot_starts()):
            if k >= len(net):
                break
            fields = {
                "power_kw": float(net[k]),
                "ev_power_kw": float(vehicles[k]),
                "import_limit_kw": float(site.import_limit_kw),
                "export_limit_kw": float(site.export_limit_kw),
            }
            out.append(Point("plan", start, fields, tags))
    return out


def price_points(grid: TimeGrid, prices: Prices) -> list[Point]:
    return [
        Point(
            "price",
            start,
            {"import_per_mwh": float(imp), "export_per_mwh": float(exp)},
        )
        for start, imp, exp in zip(
            grid.slot_starts(), prices.import_per_mwh, prices.export_per_mwh, strict=False
        )
    ]


def forecast_points(
    kind: str,
    target: str,
    grid: TimeGrid,
    values: Sequence[float],
    issued_at: datetime,
    quantile: str = "p50",
) -> list[Point]:
    """One forecast series on a grid (a point forecast is ``p50``); non-finite values skipped."""
    tags = {"kind": kind, "target": target, "quantile": quantile}
    issued = epoch_s(issued_at)
    return [
        Point("forecast", start, {"value": float(v), "issued_at": issued}, tags)
        for start, v in zip(grid.slot_starts(), values, strict=False)
        if math.isfinite(v)
    ]


def site_profile_points(problem: FleetProblem, issued_at: datetime) -> list[Point]:
    """The base load and PV forecasts a plan was made with, per site (empty = none)."""
    out = []
    for site in problem.sites:
        if site.base_load_kw:
            out += forecast_points(
                "base_load_kw", site.site_id, problem.grid, site.base_load_kw, issued_at
            )
        if site.pv_kw:
            out += forecast_points("pv_kw", site.site_id, problem.grid, site.pv_kw, issued_at)
    return out


def baseline_points(baseline: EventBaseline) -> list[Point]:
    out = []
    for site_id, series in sorted(baseline.site_power_kw.items()):
        tags = {"event_id": baseline.event_id, "site_id": site_id}
        for start, p in zip(baseline.grid.slot_starts(), series, strict=False):
            fields = {"power_kw": float(p), "modification_number": baseline.modification_number}
            out.append(Point("event_baseline", start, fields, tags))
    return out


def grid_event_points(event: GridEvent, all_sites: Sequence[str]) -> list[Point]:
    fields: dict[str, float] = {"end": epoch_s(event.end)}
    if event.cap_kw is not None:
        fields["cap_kw"] = float(event.cap_kw)
    if event.shed_kw is not None:
        fields["shed_kw"] = float(event.shed_kw)
    sites = sorted(event.site_ids) or sorted(all_sites)
    return [
        Point("grid_event", event.start, fields, {"event_id": event.event_id, "site_id": s})
        for s in sites
    ]


@dataclass(frozen=True)
class _SiteInfo:
    grid: TimeGrid
    base_load_kw: tuple[float, ...]
    pv_kw: tuple[float, ...]
    import_limit_kw: float

    def offset_kw(self, t: datetime) -> float:
        """Forecast base load minus PV at ``t`` (the nearest slot of the plan's grid)."""
        k = min(self.grid.n_slots - 1, max(0, math.floor(self.grid.position(t))))
        base = self.base_load_kw[k] if k < len(self.base_load_kw) else 0.0
        pv = self.pv_kw[k] if k < len(self.pv_kw) else 0.0
        return base - pv


class SitePower:
    """Site power from charger telemetry: at each reading time of a site, the sum of each of
    its chargers' latest reading no older than ``READING_MAX_AGE``; plus the forecast base
    load minus PV of the latest plan for ``power_kw``. Readings of one time split over two
    batches give a second, fuller point for that time (the last one for a time counts)."""

    def __init__(self) -> None:
        self._latest: dict[str, dict[str, Telemetry]] = {}
        self._last_ts: dict[str, datetime] = {}
        self.sites: dict[str, _SiteInfo] = {}

    def use_plan(self, problem: FleetProblem) -> None:
        self.sites = {
            s.site_id: _SiteInfo(problem.grid, s.base_load_kw, s.pv_kw, s.import_limit_kw)
            for s in problem.sites
        }

    def points(self, batch: Sequence[Telemetry]) -> list[Point]:
        out = []
        for ts, group in groupby(sorted(batch, key=lambda r: r.ts), key=lambda r: r.ts):
            touched = set()
            for t in group:
                site = self._latest.setdefault(t.site_id, {})
                held = site.get(t.charger_id)
                if held is not None and t.ts < held.ts:
                    continue  # late: never rewinds the site's power
                site[t.charger_id] = t
                last = self._last_ts.get(t.site_id)
                if last is None or ts >= last:
                    touched.add(t.site_id)
            for site_id in sorted(touched):
                fresh = [
                    r for r in self._latest[site_id].values() if ts - READING_MAX_AGE <= r.ts <= ts
                ]
                ev = float(sum(r.power_kw for r in fresh))
                fields: dict[str, float | int] = {"ev_power_kw": ev, "chargers": len(fresh)}
                info = self.sites.get(site_id)
                fields["power_kw"] = ev + (info.offset_kw(ts) if info is not None else 0.0)
                if info is not None:
                    fields["import_limit_kw"] = float(info.import_limit_kw)
                out.append(Point("site_power", ts, fields, {"site_id": site_id}))
                self._last_ts[site_id] = ts
        # Forget readings too old to count for any later time.
        for site_id, chargers in self._latest.items():
            last = self._last_ts.get(site_id)
            if last is not None:
                for c in [c for c, r in chargers.items() if r.ts < last - READING_MAX_AGE]:
                    del chargers[c]
        return out


# ---------------------------------------------------------------------- the recorder


class TimeSeriesRecorder:
    """Turns runtime facts into points off the caller's thread (one worker, in order)."""

    def __init__(self, store: TimeSeriesStore) -> None:
        self.store = store
        self.site_power = SitePower()
        self._events: dict[str, GridEvent] = {}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="timeseries-record")
        self._lock = threading.Lock()
        self._closed = False
        self.failures = 0  # conversions that raised (logged)

    # What the runtime calls: each returns at once.
    def telemetry(self, batch: Sequence[Telemetry]) -> None:
        self._submit(self._telemetry, tuple(batch))

    def setpoints(self, setpoints: Sequence[Setpoint]) -> None:
        self._submit(lambda: self.store.write(setpoint_points(setpoints)))

    def plan(self, plan_id: str, plan: Plan, problem: FleetProblem, made_at: datetime) -> None:
        self._submit(self._plan, plan_id, plan, problem, made_at)

    def baseline(self, baseline: EventBaseline) -> None:
        self._submit(lambda: self.store.write(baseline_points(baseline)))

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish the conversions queued, then close the store (it sends what it can).
        Blocks: not on the event loop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._worker.shutdown(wait=True)
        self.store.close()

    # ------------------------------------------------------------------ on the worker
    def _submit(self, fn: Callable[..., None], *args: object) -> None:
        with self._lock:
            if self._closed:
                return
            self._worker.submit(self._guarded, fn, *args)

    def _guarded(self, fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except Exception:
            self.failures += 1
            log.exception("time series: recording failed; the control loop goes on")

    def _telemetry(self, batch: tuple[Telemetry, ...]) -> None:
        self.store.write(telemetry_points(batch) + self.site_power.points(batch))

    def _plan(self, plan_id: str, plan: Plan, problem: FleetProblem, made_at: datetime) -> None:
        self.site_power.use_plan(problem)
        points = plan_points(plan_id, plan, problem.sites)
        points += price_points(problem.grid, problem.prices)
        points += site_profile_points(problem, made_at)
        site_ids = [s.site_id for s in problem.sites]
        for event in problem.events:
            if self._events.get(event.event_id) != event:
                self._events[event.event_id] = event
                points += grid_event_points(event, site_ids)
        self.store.write(points)
