"""The running aggregator: one asyncio process, APScheduler jobs, solves off the event loop.

Telemetry arrives on the MQTT client's network thread and is handed to the event loop; the
controller is only ever touched from the loop. Re-plans run periodically and at once on a
trigger (arrival, departure, site on/offline, constraint or event change); a trigger during a
solve is coalesced into one more solve right after. Every plan is followed by a dispatch, and
dispatch also runs on its own period so setpoints are refreshed before they expire.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from aggregator.domain import DepartureConstraint, EventRecord, SiteStatus, Telemetry
from aggregator.ports import Clock, Planner, SetpointSink
from aggregator.services.control import FleetController
from aggregator.services.recording import TimeSeriesRecorder
from aggregator.services.settlement import EventSettlements

log = logging.getLogger(__name__)


class AggregatorRuntime:
    """Implements ``TelemetryHandler`` for the MQTT connector; drives the controller."""

    def __init__(
        self,
        controller: FleetController,
        planner: Planner,
        clock: Clock,
        *,
        replan_every: timedelta = timedelta(minutes=5),
        speed: float = 1.0,
        baseline_planner: Planner | None = None,
    ) -> None:
        self.controller = controller
        # Control-loop re-plans: a warm planner keeps its model between them (one per runtime).
        self.planner = planner
        # Event baselines (another problem each): a planner of their own, so they do not
        # replace the control loop's kept model; ``planner`` when not given (then a re-plan
        # and a baseline may call it at once: it must be safe for that, as both of ours are).
        self.baseline_planner = baseline_planner or planner
        self.clock = clock
        self.replan_every = replan_every
        self.speed = speed
        self.sink: SetpointSink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._replanning = False
        self._pending: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.plan_seconds: list[float] = []
        self.on_plan: Callable[[str], None] | None = None
        self._boundary_handle: asyncio.TimerHandle | None = None
        # Deliveries go out one at a time, in the order their seq numbers were given.
        self._delivering = asyncio.Lock()
        self._boundary_at: datetime | None = None
        # Re-plans go first: one at a time (``_replanning``), never behind an event baseline.
        # A baseline solve waits until no re-plan runs (it is not urgent), but a re-plan that
        # comes during a baseline solve runs beside it: the two use different planners, and
        # HiGHS releases the GIL. Baselines run one at a time (``_settling``).
        self._replan_idle = asyncio.Event()
        self._replan_idle.set()
        self.settlements: EventSettlements | None = None
        # Weekly departures: makes the constraints that are due, returns how many (a thread).
        self.recurring: Callable[[datetime], int] | None = None
        self._settling = False
        # Time series (docs/timeseries.md): handed what was done; never makes the loop wait.
        self.recorder: TimeSeriesRecorder | None = None

    # ---------------------------------------------------------- TelemetryHandler
    def _call(self, fn: Callable[..., object], *args: object) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def on_telemetry(self, topic: str, telemetry: Telemetry) -> None:
        self._call(self._ingest, topic, telemetry)

    def on_site_status(self, status: SiteStatus) -> None:
        self._call(self._site_status, status)

    def on_reject(self, topic: str, reason: str) -> None:
        self._call(self.controller.reject, topic, reason)

    def _ingest(self, topic: str, telemetry: Telemetry) -> None:
        try:
            result = self.controller.ingest(topic, telemetry)
        except Exception:  # a bad message must never stop the loop
            log.exception("telemetry on %s could not be applied", topic)
            self.controller.reject(topic, "internal error while applying")
            return
        if result.replan_reason:
            self.request_replan(result.replan_reason)

    def _site_status(self, status: SiteStatus) -> None:
        reason = self.controller.site_status(status)
        if reason:
            self.request_replan(reason)

    # ---------------------------------------------------------- commands (API, VEN)
    async def submit_constraint(self, constraint: DepartureConstraint) -> None:
        """Store a departure constraint (durable before returning) and re-plan at once."""
        await asyncio.to_thread(self.controller.repo.save_constraint, constraint)
        self.request_replan(f"constraint for {constraint.vehicle_id}")

    async def submit_event(self, record: EventRecord) -> None:
        """Store a grid event (durable before returning) and re-plan at once."""
        await asyncio.to_thread(self.controller.repo.save_event, record)
        self.request_replan(f"grid event {record.event.event_id} ({record.status})")

    # ---------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        wall = self.speed
        scheduler = AsyncIOScheduler(event_loop=self._loop, timezone="UTC")
        scheduler.add_job(
            self._periodic_replan,
            "interval",
            seconds=self.replan_every.total_seconds() / wall,
            id="replan",
        )
        scheduler.add_job(
            self.dispatch,
            "interval",
            seconds=self.controller.settings.dispatch_period.total_seconds() / wall,
            id="dispatch",
        )
        scheduler.add_job(self.flush_telemetry, "interval", seconds=1.0, id="flush")
        scheduler.add_job(
            self._settle_tick,
            "interval",
            seconds=self.controller.settings.dispatch_period.total_seconds() / wall,
            id="settle",
        )
        scheduler.start()
        self._scheduler = scheduler
        await self.replan("startup")

    async def stop(self) -> None:
        if self._boundary_handle is not None:
            self._boundary_handle.cancel()
            self._boundary_handle = None
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        for task in list(self._tasks):
            task.cancel()
        await self.flush_telemetry()
        self._loop = None

    # ---------------------------------------------------------- jobs
    async def _periodic_replan(self) -> None:
        if self.recurring is not None:
            try:
                made = await asyncio.to_thread(self.recurring, self.clock.now())
            except Exception:
                log.exception("weekly departures could not be applied; tried again next round")
            else:
                if made:
                    log.info("%d weekly departure(s) became the next departure constraint", made)
        self.request_replan("periodic")

    def request_replan(self, reason: str) -> None:
        if self._replanning:
            self._pending = reason
            return
        task = asyncio.get_running_loop().create_task(self.replan(reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def replan(self, reason: str) -> None:
        if self._replanning:
            self._pending = reason
            return
        self._replanning = True
        self._replan_idle.clear()
        try:
            while True:
                now = self.clock.now()
                problem = self.controller.build_problem(now)
                start = time.perf_counter()
                plan = await asyncio.to_thread(self.planner.plan, problem)
                self.plan_seconds.append(time.perf_counter() - start)
                current = self.controller.adopt(plan, now, problem)
                if self.recorder is not None:
                    self.recorder.plan(current.plan_id, plan, problem, now)
                log.info(
                    "plan %s (%s): %s/%s %s in %.2f s, %d sessions, shortfall %.1f kWh",
                    current.plan_id,
                    reason,
                    plan.solver_path,
                    plan.solver_status,
                    "warm" if plan.timings_s.get("warm") else "cold",
                    self.plan_seconds[-1],
                    len(plan.schedules),
                    plan.total_shortfall_kwh,
                )
                await self.dispatch()
                if self.on_plan is not None:
                    self.on_plan(reason)
                if self._pending is None:
                    break
                reason, self._pending = self._pending, None
        except Exception:
            log.exception("re-plan failed (%s); the current plan stays", reason)
        finally:
            self._replanning = False
            self._replan_idle.set()

    async def dispatch(self) -> None:
        setpoints = self.controller.dispatch()
        # Storing and handing 10,000 setpoints to paho takes ~1 s: not on the event loop.
        async with self._delivering:
            await asyncio.to_thread(self.controller.deliver, setpoints, self.sink)
        if self.recorder is not None and setpoints:
            self.recorder.setpoints(setpoints)
        self._dispatch_at_next_boundary()

    def _dispatch_at_next_boundary(self) -> None:
        """Also dispatch the moment the next slot starts: the plan's power steps there, and
        waiting for the periodic dispatch would run the old slot's power for up to a period."""
        current = self.controller.current
        if current is None or self._loop is None:
            return
        grid, now = current.plan.grid, self.clock.now()
        position = grid.position(now)
        nxt = math.floor(position) + 1
        if nxt >= grid.n_slots:
            return
        boundary = grid.start + grid.step * nxt
        if self._boundary_handle is not None:
            if self._boundary_at == boundary:
                return
            self._boundary_handle.cancel()
        delay = max(0.0, (boundary - now).total_seconds() / self.speed)
        self._boundary_at = boundary
        self._boundary_handle = self._loop.call_later(delay, self._boundary_dispatch)

    def _boundary_dispatch(self) -> None:
        self._boundary_handle = None
        self._boundary_at = None
        task = asyncio.get_running_loop().create_task(self.dispatch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle_tick(self) -> None:
        # A baseline solve can outlast the period: run it as a task, one round at a time.
        if self.settlements is None or self._settling:
            return
        task = asyncio.get_running_loop().create_task(self.settle_events())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle_events(self) -> None:
        """Capture the baselines that are due (a plan without the event), settle ended events."""
        if self.settlements is None or self._settling:
            return
        self._settling = True
        try:
            settlements, now = self.settlements, self.clock.now()
            for record in await asyncio.to_thread(settlements.baselines_due, now):
                e = record.event
                problem = self.controller.build_problem(
                    now, without=frozenset(g.event_id for g in e.limits), cover=(e.start, e.end)
                )
                await self._replan_idle.wait()
                plan = await asyncio.to_thread(self.baseline_planner.plan, problem)
                baseline = await asyncio.to_thread(settlements.save_baseline, record, plan, now)
                if self.recorder is not None:
                    self.recorder.baseline(baseline)
            for done in await asyncio.to_thread(settlements.settle_due):
                self.controller.counters[f"settlements_{done.status}"] += 1
        except Exception:
            log.exception("event baselines or settlements failed; tried again next round")
        finally:
            self._settling = False

    async def flush_telemetry(self) -> None:
        batch = self.controller.take_telemetry()
        if not batch:
            return
        try:
            await asyncio.to_thread(self.controller.repo.add_telemetry, batch)
        except Exception:
            # Keep accepted readings for the next flush while the store is away, within bounds.
            log.exception("storing %d telemetry readings failed; kept for retry", len(batch))
            self.controller.return_telemetry(batch)
        else:
            if self.recorder is not None:
                self.recorder.telemetry(batch)
