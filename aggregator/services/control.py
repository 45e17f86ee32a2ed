"""Use case: keep a running fleet on plan (model-predictive control).

The controller owns the live state: open sessions (opened and closed by telemetry), departure
constraints and grid events (from the store), site status, the current plan. The runtime calls
it from one asyncio thread: ``ingest`` for each telemetry message, ``build_problem`` and
``adopt`` around a solve that runs in a worker, ``dispatch`` to derive setpoints. Everything
that must survive a restart is written to the repository before the call returns.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from aggregator.domain import (
    DepartureConstraint,
    Fleet,
    FleetProblem,
    GridEvent,
    Plan,
    Session,
    Setpoint,
    SiteStatus,
    Telemetry,
    TimeGrid,
    Vehicle,
)
from aggregator.domain.problem import apply_site_limits, site_limit_kind
from aggregator.ports import Clock, ForecastSource, Repository, SetpointSink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControlSettings:
    step: timedelta = timedelta(minutes=15)
    horizon: timedelta = timedelta(hours=24)
    dispatch_period: timedelta = timedelta(seconds=60)
    # Setpoints outlive a few missed dispatches, never a dead aggregator (default 3 periods).
    setpoint_lifetime: timedelta | None = None
    default_stay: timedelta = timedelta(hours=8)
    default_target_soc: float = 0.8
    # When telemetry carries no SoC and the vehicle is unknown, assume this at plug-in.
    default_arrival_soc: float = 0.5
    default_battery_kwh: float = 60.0
    max_clock_skew: timedelta = timedelta(minutes=5)
    # Plans aim this far above each departure target (fraction of the battery): dispatch
    # latency and metering error must not leave a vehicle just under what was asked.
    target_margin_soc: float = 0.005
    # Readings held in memory while the store is unreachable.
    max_pending_telemetry: int = 200_000

    @property
    def lifetime(self) -> timedelta:
        return self.setpoint_lifetime or 3 * self.dispatch_period


@dataclass
class LiveSession:
    """An open session and what we know of its battery now."""

    session: Session
    site_id: str
    energy_kwh: float  # latest estimate of the energy in the battery
    last_ts: datetime
    last_power_kw: float = 0.0


@dataclass
class CurrentPlan:
    plan_id: str
    created_at: datetime
    plan: Plan
    # Per charger: first slot, planned (average) power per slot, and the share of each slot
    # the vehicle is plugged in (power while plugged in = average / share).
    power_by_charger: dict[str, tuple[int, tuple[float, ...], tuple[float, ...]]] = field(
        default_factory=dict
    )
    # When each charger's session is planned to be done: its setpoints expire then.
    end_by_charger: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestResult:
    accepted: bool
    replan_reason: str | None = None
    reason: str | None = None


class FleetController:
    def __init__(
        self,
        repo: Repository,
        forecasts: ForecastSource,
        clock: Clock,
        settings: ControlSettings | None = None,
    ) -> None:
        self.repo = repo
        self.forecasts = forecasts
        self.clock = clock
        self.settings = settings or ControlSettings()
        self.fleet: Fleet = repo.load_fleet()
        self._index_fleet()
        self.live: dict[str, LiveSession] = {}
        for s in repo.open_sessions():
            battery = self._vehicle_for(s.vehicle_id, s.charger_id).battery_kwh
            self.live[s.charger_id] = LiveSession(
                s, self._charger_site.get(s.charger_id, ""), s.arrival_soc * battery, s.arrival
            )
        self.site_online: dict[str, bool] = {s.site_id: True for s in self.fleet.sites}
        self.current: CurrentPlan | None = None  # after a restart, nothing until re-planned
        self._seq = repo.last_setpoint_seq()
        self._last_power: dict[str, float] = {}
        self._pending_telemetry: list[Telemetry] = []
        self.counters: Counter[str] = Counter()

    def _index_fleet(self) -> None:
        self._chargers = {c.charger_id: c for c in self.fleet.chargers}
        self._charger_site = {c.charger_id: c.site_id for c in self.fleet.chargers}
        self._vehicles = {v.vehicle_id: v for v in self.fleet.vehicles}

    def reload_fleet(self) -> None:
        """Pick up asset changes made through the store (API): sites, chargers, vehicles."""
        self.fleet = self.repo.load_fleet()
        self._index_fleet()
        for site in self.fleet.sites:
            self.site_online.setdefault(site.site_id, True)
        for gone in set(self.site_online) - {s.site_id for s in self.fleet.sites}:
            del self.site_online[gone]

    # ------------------------------------------------------------------ telemetry
    def ingest(self, topic: str, t: Telemetry) -> IngestResult:
        """Apply one telemetry reading; rejected readings change nothing."""
        now = self.clock.now()
        site = self._charger_site.get(t.charger_id)
        reason = None
        if site is None:
            reason = f"unknown charger {t.charger_id!r}"
        elif site != t.site_id:
            reason = f"charger {t.charger_id!r} belongs to site {site!r}, not {t.site_id!r}"
        elif t.ts > now + self.settings.max_clock_skew:
            reason = f"timestamp {t.ts.isoformat()} is in the future (now {now.isoformat()})"
        if reason is not None:
            return self.reject(topic, reason)
        self.counters["telemetry_ingested"] += 1
        self._pending_telemetry.append(t)
        live = self.live.get(t.charger_id)
        if live is not None and t.ts < live.last_ts:
            return IngestResult(True)  # late duplicate: stored, but never rewinds state
        if t.plugged:
            if live is not None and t.vehicle_id and t.vehicle_id != live.session.vehicle_id:
                self._close(live, t.ts)
                live = None
            if live is None:
                self._open(t)
                return IngestResult(True, replan_reason=f"arrival at {t.charger_id}")
            self._update_energy(live, t)
            return IngestResult(True)
        if live is not None:
            self._close(live, t.ts)
            return IngestResult(True, replan_reason=f"departure from {t.charger_id}")
        return IngestResult(True)

    def reject(self, topic: str, reason: str) -> IngestResult:
        self.counters["telemetry_rejected"] += 1
        self.counters[f"rejected: {reason.split(' ')[0]}"] += 1
        log.warning("telemetry rejected on %s: %s", topic, reason)
        return IngestResult(False, reason=reason)

    def take_telemetry(self) -> list[Telemetry]:
        """Readings accepted since the last call, for the store (written in batches)."""
        batch, self._pending_telemetry = self._pending_telemetry, []
        return batch

    def return_telemetry(self, batch: list[Telemetry]) -> None:
        """Put back readings the store could not take; the oldest go first past the bound."""
        pending = batch + self._pending_telemetry
        excess = len(pending) - self.settings.max_pending_telemetry
        if excess > 0:
            self.counters["telemetry_dropped"] += excess
            log.error("telemetry buffer full: dropped the %d oldest readings", excess)
            pending = pending[excess:]
        self._pending_telemetry = pending

    def site_status(self, status: SiteStatus) -> str | None:
        """Record a site going on- or offline; returns a re-plan reason when it changed."""
        if status.site_id not in self.site_online:
            return None
        changed = self.site_online[status.site_id] != status.online
        self.site_online[status.site_id] = status.online
        word = "online" if status.online else "offline"
        return f"site {status.site_id} {word}" if changed else None

    def _vehicle_for(self, vehicle_id: str, charger_id: str) -> Vehicle:
        known = self._vehicles.get(vehicle_id)
        if known is not None:
            return known
        charger = self._chargers.get(charger_id)
        return Vehicle(
            vehicle_id,
            battery_kwh=self.settings.default_battery_kwh,
            max_charge_kw=charger.max_charge_kw if charger else 0.0,
        )

    def _open(self, t: Telemetry) -> None:
        vehicle_id = t.vehicle_id or f"unknown@{t.charger_id}"
        vehicle = self._vehicle_for(vehicle_id, t.charger_id)
        soc = t.soc if t.soc is not None else self.settings.default_arrival_soc
        constraint = next((c for c in self.repo.constraints() if c.vehicle_id == vehicle_id), None)
        departure, target_soc, energy, min_soc = self._need(constraint, t.ts, soc)
        session = Session(
            session_id=f"{t.charger_id}-{t.ts.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}",
            vehicle_id=vehicle_id,
            charger_id=t.charger_id,
            arrival=t.ts,
            departure=departure,
            arrival_soc=soc,
            target_soc=target_soc,
            energy_kwh=energy,
            min_soc=min_soc,
        )
        self.repo.save_session(session)
        self.live[t.charger_id] = LiveSession(
            session, t.site_id, soc * vehicle.battery_kwh, t.ts, t.power_kw
        )
        log.info("session %s opened (vehicle %s)", session.session_id, vehicle_id)

    def _need(
        self, c: DepartureConstraint | None, arrival: datetime, soc: float
    ) -> tuple[datetime, float | None, float | None, float]:
        if c is not None and c.departure_at > arrival:
            min_soc = c.min_soc if c.target_soc is None else min(c.min_soc, c.target_soc)
            return c.departure_at, c.target_soc, c.energy_kwh, min_soc
        return (
            arrival + self.settings.default_stay,
            max(soc, self.settings.default_target_soc),
            None,
            0.0,
        )

    def _close(self, live: LiveSession, when: datetime) -> None:
        self.repo.close_session(live.session.session_id, when)
        del self.live[live.session.charger_id]
        log.info("session %s closed", live.session.session_id)

    def _update_energy(self, live: LiveSession, t: Telemetry) -> None:
        vehicle = self._vehicle_for(live.session.vehicle_id, live.session.charger_id)
        if t.soc is not None:
            live.energy_kwh = t.soc * vehicle.battery_kwh
        else:
            # No SoC from this charger: integrate the power it reported since the last reading.
            hours = (t.ts - live.last_ts).total_seconds() / 3600.0
            p = live.last_power_kw
            eff = vehicle.charge_efficiency if p >= 0 else 1.0 / vehicle.discharge_efficiency
            live.energy_kwh = min(vehicle.battery_kwh, max(0.0, live.energy_kwh + p * hours * eff))
        live.last_ts, live.last_power_kw = t.ts, t.power_kw

    # ------------------------------------------------------------------ planning
    def reload_constraints(self) -> None:
        """Pick up constraint changes made through the store (API, CLI) for open sessions."""
        by_vehicle = {c.vehicle_id: c for c in self.repo.constraints()}
        for live in self.live.values():
            s = live.session
            c = by_vehicle.get(s.vehicle_id)
            if c is None or c.departure_at <= s.arrival:
                continue
            departure, target_soc, energy, min_soc = self._need(c, s.arrival, s.arrival_soc)
            if (departure, target_soc, energy, min_soc) != (
                s.departure,
                s.target_soc,
                s.energy_kwh,
                s.min_soc,
            ):
                live.session = replace(
                    s,
                    departure=departure,
                    target_soc=target_soc,
                    energy_kwh=energy,
                    min_soc=min_soc,
                )
                self.repo.save_session(live.session)

    def build_problem(
        self,
        now: datetime | None = None,
        *,
        without: frozenset[str] = frozenset(),
        cover: tuple[datetime, datetime] | None = None,
    ) -> FleetProblem:
        """The planning problem as of now: a rolling horizon starting at this instant.

        ``without`` leaves those grid events out (an event's baseline is planned without
        it); ``cover`` stretches the grid back and forth to span that window (the grid then
        starts at the window's start if that is earlier, with no session before now).
        Stored site-limit events (``limit/import/...``, ``limit/export/...``: OSCP capacity)
        become the sites' per-slot import/export limits, not grid events.
        """
        now = (now or self.clock.now()).replace(microsecond=0)
        self.reload_constraints()
        s = self.settings
        start, end = now, now + s.horizon
        if cover is not None:
            start, end = min(start, cover[0]), max(end, cover[1])
        grid = TimeGrid(start, s.step, max(1, math.ceil((end - start) / s.step)))
        site_ids = [x.site_id for x in self.fleet.sites]
        profiles = self.forecasts.site_profiles(grid, site_ids)
        stored = self._events_on(grid)
        limits = [e for e in stored if site_limit_kind(e.event_id) is not None]
        sites = apply_site_limits(
            grid,
            [
                replace(
                    site,
                    base_load_kw=profiles.get(site.site_id, ((), ()))[0],
                    pv_kw=profiles.get(site.site_id, ((), ()))[1],
                )
                for site in self.fleet.sites
            ],
            limits,
        )
        sessions, vehicles = [], dict(self._vehicles)
        for live in self.live.values():
            if not self.site_online.get(live.site_id, False):
                continue  # its chargers run on their safe power until the site is back
            sessions.append(self._session_now(live, now, vehicles))
        events = tuple(
            e for e in stored if e.event_id not in without and site_limit_kind(e.event_id) is None
        )
        return FleetProblem(
            grid=grid,
            sites=sites,
            chargers=self.fleet.chargers,
            vehicles=tuple(vehicles.values()),
            sessions=tuple(sessions),
            prices=self.forecasts.prices(grid),
            events=events,
            batteries=self.fleet.batteries,
        )

    def _session_now(
        self, live: LiveSession, now: datetime, vehicles: dict[str, Vehicle]
    ) -> Session:
        s = live.session
        vehicle = self._vehicle_for(s.vehicle_id, s.charger_id)
        vehicles.setdefault(vehicle.vehicle_id, vehicle)
        soc = min(1.0, max(0.0, live.energy_kwh / vehicle.battery_kwh))
        # Plan to be done one dispatch period early (the last setpoint reaches the charger that
        # much late), or by the departure itself when that is closer than a period. A vehicle
        # leaving within the first slot gets a partial slot: dispatch sends average / share.
        # Overdue but still plugged in: finish as soon as possible.
        departure = s.departure - self.settings.dispatch_period
        if departure <= now:
            departure = s.departure if s.departure > now else now + self.settings.step
        margin = self.settings.target_margin_soc
        energy, target_soc = None, None
        if s.energy_kwh is not None:
            wanted = (s.arrival_soc + margin) * vehicle.battery_kwh + s.energy_kwh
            energy = max(0.0, wanted - live.energy_kwh)
        if s.target_soc is not None:
            target_soc = min(1.0, s.target_soc + margin)
        min_soc = min(s.min_soc, s.target_soc) if s.target_soc is not None else s.min_soc
        return Session(
            session_id=s.session_id,
            vehicle_id=s.vehicle_id,
            charger_id=s.charger_id,
            arrival=now,
            departure=departure,
            arrival_soc=soc,
            target_soc=target_soc,
            energy_kwh=energy,
            min_soc=min_soc,
        )

    def _events_on(self, grid: TimeGrid) -> list[GridEvent]:
        known = {x.site_id for x in self.fleet.sites}
        out = []
        for record in self.repo.events():
            e = record.event
            if record.status != "active" or e.end <= grid.start or e.start >= grid.end:
                continue
            sites = e.site_ids & known
            if e.site_ids and not sites:
                continue
            out.append(replace(e, site_ids=frozenset(sites)))
        return out

    def adopt(self, plan: Plan, created_at: datetime, problem: FleetProblem) -> CurrentPlan:
        """Make ``plan`` (made for ``problem``) current: stored first, older plans superseded."""
        plan_id = f"{created_at.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.repo.save_plan(plan_id, created_at, plan)
        sessions = {s.session_id: s for s in problem.sessions}
        power, ends = {}, {}
        for sched in plan.schedules:
            s = sessions[sched.session_id]
            pos_a, pos_d = plan.grid.position(s.arrival), plan.grid.position(s.departure)
            shares = tuple(
                min(i + 1.0, pos_d) - max(float(i), pos_a)
                for i in range(sched.first_slot, sched.first_slot + len(sched.power_kw))
            )
            power[sched.charger_id] = (sched.first_slot, sched.power_kw, shares)
            ends[sched.charger_id] = s.departure
        self.current = CurrentPlan(plan_id, created_at, plan, power, ends)
        self.counters[f"plans_{plan.solver_path}"] += 1
        return self.current

    # ------------------------------------------------------------------ dispatch
    def dispatch(self, now: datetime | None = None) -> list[Setpoint]:
        """Setpoints for every charger of every online site, from the current plan.

        The caller records them in the store before publishing (``deliver``), so numbering
        survives a restart and every setpoint sent can be traced to its plan.
        """
        if self.current is None:
            return []
        now = now or self.clock.now()
        grid = self.current.plan.grid
        if now >= grid.end:
            return []
        slot = max(0, int(grid.position(now) // 1))
        valid_until = now + self.settings.lifetime
        powers: list[tuple[str, str, float]] = []
        for charger in self.fleet.chargers:
            if not self.site_online.get(charger.site_id, False):
                continue
            power = 0.0
            sched = self.current.power_by_charger.get(charger.charger_id)
            live = self.live.get(charger.charger_id)
            end = self.current.end_by_charger.get(charger.charger_id)
            if sched is not None and live is not None and (end is None or now < end):
                first, values, shares = sched
                if first <= slot < first + len(values):
                    # The vehicle leaves inside this slot: it must draw the slot's energy while
                    # it is still there (the plan's site limit holds for this, see the LP).
                    power = values[slot - first] / max(shares[slot - first], 1e-9)
            # Rounded toward zero: the sum of rounded setpoints must not creep past a limit.
            power = math.trunc(power * 1e4) / 1e4
            powers.append((charger.charger_id, charger.site_id, power))
        # Reductions first: while a dispatch is on its way, a charger told to go up before
        # another is told to go down could take the site over its limit.
        powers.sort(key=lambda x: x[2] - self._last_power.get(x[0], 0.0))
        out = []
        for charger_id, site_id, power in powers:
            self._seq += 1
            self._last_power[charger_id] = power
            # A session planned to be done before the setpoint would expire: the charger must
            # not go on at this power past that (the next plan takes over from there).
            end = self.current.end_by_charger.get(charger_id)
            until = min(valid_until, end) if end is not None and end > now else valid_until
            out.append(
                Setpoint(
                    charger_id=charger_id,
                    site_id=site_id,
                    power_kw=power,
                    issued_at=now,
                    valid_until=until,
                    plan_id=self.current.plan_id,
                    seq=self._seq,
                )
            )
        self.counters["setpoints_sent"] += len(out)
        return out

    def deliver(self, setpoints: Sequence[Setpoint], sink: SetpointSink | None) -> None:
        """Record, then publish. Blocking: the runtime calls it from a worker thread."""
        if not setpoints:
            return
        self.repo.record_setpoints(setpoints)
        if sink is not None:
            sink.publish(setpoints)

    def sessions(self) -> Sequence[LiveSession]:
        return list(self.live.values())
