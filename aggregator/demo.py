"""``aggregator demo``: the whole loop on one machine, no external service.

An embedded MQTT broker, a SQLite store, the control loop, and the site simulator playing a
scenario's sessions on an accelerated clock. A stand-in fleet manager registers each vehicle's
next departure constraint before it arrives (what the API will do). The scenario's grid events
come from a local openleadr VTN (``aggregator/demo_vtn.py``, plain HTTP, unsigned: demo only)
to the service's real VEN, which decides and stores them like a utility's. A live table shows
each site's power against its limit, whether plugged-in vehicles are on track, and each
utility event with the VEN's answer.

openleadr dates events by the wall clock (``demo_vtn``), so a scenario with events whose start
is in the real past is replayed whole days later, on the first day where its simulated clock
is not behind the wall clock; times of day, and so prices and profiles, stay as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from aggregator.app import Service, create_operator, start_service
from aggregator.demo_vtn import DemoVtn, demo_mapping
from aggregator.domain import (
    DepartureConstraint,
    FleetProblem,
    GridEvent,
    Plan,
    Session,
    SettlementRecord,
)
from aggregator.ports import Repository
from aggregator.scenario import load_scenario
from aggregator.settings import (
    ApiConfig,
    MqttConfig,
    OpenAdrConfig,
    PlanningConfig,
    RuntimeSettings,
)
from aggregator.simulation.clock import ScaledClock
from aggregator.simulation.runner import SiteSimulator
from connectors.mqtt.broker import free_port
from connectors.mqtt.client import MqttSettings

DEMO_VEN = "demo-fleet-ven"
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class EventEffect:
    """What an event did to the plan: the affected sites' planned import over the event in
    the last plan without it and the first plan with it (max for a cap, mean for a shed). [kW]
    """

    limit: str  # "cap 5 kW" or "shed 20 kW"
    sites: tuple[str, ...]
    before_kw: float | None
    after_kw: float | None


@dataclass
class DemoResult:
    sessions: int = 0
    reached: int = 0
    peak_over_limit_kw: dict[str, float] = field(default_factory=dict)
    setpoints: int = 0
    plans: int = 0
    rejected: int = 0
    missed: list[str] = field(default_factory=list)
    start: datetime | None = None  # the simulated window (after any replay shift)
    end: datetime | None = None
    replayed_days: int = 0  # whole days the scenario was moved forward (see the module doc)
    # Utility events as the VEN stored them: (event id, optIn/optOut, reason).
    events: list[tuple[str, str, str]] = field(default_factory=list)
    vtn_answers: dict[str, str] = field(default_factory=dict)  # what the VTN heard, per event
    events_sent_at: dict[str, datetime] = field(default_factory=dict)  # simulated time
    events_not_sent: list[str] = field(default_factory=list)  # due after the run ended
    event_effects: dict[str, EventEffect] = field(default_factory=dict)
    # Per settled event: one line (delivered, committed, compliance, baseline).
    settlements: dict[str, str] = field(default_factory=dict)
    dashboard: str | None = None  # where the API and dashboard were served


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``port`` can be listened on now (the demo's API prefers a stable port)."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def replay_days(start: datetime, now: datetime) -> int:
    """Whole days to move a scenario starting at ``start`` so it starts at or after ``now``."""
    return max(0, math.ceil((now - start) / _DAY))


def shifted(problem: FleetProblem, delta: timedelta) -> FleetProblem:
    """``problem`` with every time moved by ``delta`` (series stay slot-indexed)."""
    if not delta:
        return problem
    return replace(
        problem,
        grid=replace(problem.grid, start=problem.grid.start + delta),
        sessions=tuple(
            replace(s, arrival=s.arrival + delta, departure=s.departure + delta)
            for s in problem.sessions
        ),
        events=tuple(replace(e, start=e.start + delta, end=e.end + delta) for e in problem.events),
    )


def _describe(event: GridEvent) -> str:
    if event.cap_kw is not None:
        return f"cap {event.cap_kw:g} kW"
    return f"shed {event.shed_kw:g} kW"


def planned_import_kw(
    plan: Plan, sites: tuple[str, ...], start: datetime, end: datetime, how: str
) -> float | None:
    """The sites' planned net import over the plan slots overlapping ``[start, end)``: the
    ``max`` or the ``mean`` over those slots; None if the plan covers none of them. [kW]"""
    grid = plan.grid
    totals = [
        sum(plan.site_power_kw.get(site, ())[i] for site in sites if site in plan.site_power_kw)
        for i, t in enumerate(grid.slot_starts())
        if t < end and t + grid.step > start
    ]
    if not totals:
        return None
    return max(totals) if how == "max" else sum(totals) / len(totals)


class EffectWatch:
    """Follows the controller's plans; per sent event, the last plan without it and the first
    with it (its limits are grid events ``{event_id}/...`` in ``plan.events``)."""

    def __init__(self, problem: FleetProblem) -> None:
        self.problem = problem
        self.before: dict[str, Plan] = {}
        self.after: dict[str, Plan] = {}

    def observe(self, plan: Plan | None, sent: list[str]) -> None:
        if plan is None:
            return
        in_plan = {r.event_id.split("/", 1)[0] for r in plan.events}
        for event_id in sent:
            if event_id in self.after:
                continue
            if event_id in in_plan:
                self.after[event_id] = plan
            else:
                self.before[event_id] = plan

    def effect(self, event: GridEvent) -> EventEffect:
        sites = self.problem.event_sites(event)
        how = "max" if event.cap_kw is not None else "mean"

        def measure(plan: Plan | None) -> float | None:
            if plan is None:
                return None
            return planned_import_kw(plan, sites, event.start, event.end, how)

        return EventEffect(
            _describe(event),
            sites,
            measure(self.before.get(event.event_id)),
            measure(self.after.get(event.event_id)),
        )


def next_constraints(problem: FleetProblem, now: datetime) -> dict[str, DepartureConstraint]:
    """Per vehicle, the departure constraint of its next (or current) session."""
    out: dict[str, DepartureConstraint] = {}
    for s in sorted(problem.sessions, key=lambda s: s.arrival):
        if s.departure <= now or s.vehicle_id in out:
            continue
        out[s.vehicle_id] = _constraint(s)
    return out


def _constraint(s: Session) -> DepartureConstraint:
    return DepartureConstraint(
        s.vehicle_id,
        s.departure,
        target_soc=s.target_soc,
        energy_kwh=s.energy_kwh,
        min_soc=s.min_soc,
    )


def sync_constraints(repo: Repository, problem: FleetProblem, now: datetime) -> None:
    stored = {c.vehicle_id: c for c in repo.constraints()}
    for vehicle_id, c in next_constraints(problem, now).items():
        if stored.get(vehicle_id) != c:
            repo.save_constraint(c)


def render(
    service: Service,
    sim: SiteSimulator,
    problem: FleetProblem,
    now: datetime,
    vtn: DemoVtn | None = None,
) -> Group:
    ctl = service.controller
    sites = Table(title=f"sites at {now:%Y-%m-%d %H:%M} UTC", title_justify="left")
    for col in ("site", "power kW", "limit kW", "online"):
        sites.add_column(col, justify="right")
    power = sim.site_power_kw(now)
    for site in problem.sites:
        p = power.get(site.site_id, 0.0)
        style = "red" if p > site.import_limit_kw + 1e-6 else ""
        online = "yes" if ctl.site_online.get(site.site_id) else "no"
        sites.add_row(
            site.site_id,
            f"[{style}]{p:.1f}[/]" if style else f"{p:.1f}",
            f"{site.import_limit_kw:.0f}",
            online,
        )
    vehicles = Table(title="plugged-in vehicles", title_justify="left")
    for col in ("vehicle", "charger", "SoC", "departs", "on track"):
        vehicles.add_column(col, justify="right")
    outcomes = {}
    if ctl.current is not None:
        outcomes = {o.session_id: o for o in ctl.current.plan.outcomes}
    for live in sorted(ctl.sessions(), key=lambda x: x.session.charger_id):
        s, o = live.session, outcomes.get(live.session.session_id)
        battery = next((v.battery_kwh for v in problem.vehicles if v.vehicle_id == s.vehicle_id), 0)
        soc = f"{live.energy_kwh / battery:.0%}" if battery else "?"
        track = (
            "?"
            if o is None
            else ("yes" if o.shortfall_kwh == 0 else f"short {o.shortfall_kwh:.1f} kWh")
        )
        vehicles.add_row(s.vehicle_id, s.charger_id, soc, f"{s.departure:%H:%M}", track)
    c = ctl.counters
    stats = (
        f"plans {c['plans_lp'] + c['plans_heuristic']} (lp {c['plans_lp']}), "
        f"setpoints {c['setpoints_sent']}, telemetry {c['telemetry_ingested']}, "
        f"rejected {c['telemetry_rejected']}"
    )
    if vtn is None:
        return Group(sites, vehicles, stats)
    return Group(sites, vehicles, events_table(service, vtn), stats)


def events_table(service: Service, vtn: DemoVtn) -> Table:
    """Each utility event: when, what, when the VTN sent it, and what the VEN decided, why."""
    table = Table(title="utility events (OpenADR, from the demo VTN)", title_justify="left")
    longest = max((len(e.event_id) for e in vtn.events), default=5)
    table.add_column("event", no_wrap=True, min_width=longest)
    for col in ("UTC", "limit", "sent", "VEN"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("reason")
    stored = (
        {r.event.event_id: r for r in service.events.store.all()}
        if service.events is not None
        else {}
    )
    for sent in sorted(vtn.sent.values(), key=lambda x: x.event.start):
        e, record = sent.event, stored.get(sent.event.event_id)
        table.add_row(
            e.event_id,
            f"{e.start:%H:%M}-{e.end:%H:%M}",
            _describe(e),
            f"{sent.sent_at:%H:%M}",
            record.opt if record is not None else "...",
            escape(f"{record.reason} ({record.state})") if record is not None else "",
        )
    for e in vtn.pending:
        due = e.start - vtn.notice
        table.add_row(
            e.event_id, f"{e.start:%H:%M}-{e.end:%H:%M}", _describe(e), f"at {due:%H:%M}", "", ""
        )
    return table


async def run_demo(
    scenario_path: Path,
    *,
    speed: float,
    hours: float | None,
    db: Path,
    console: Console,
    live: bool = True,
    mqtt: MqttConfig | None = None,
    planning: PlanningConfig | None = None,
    notice: timedelta = timedelta(hours=2),
    api_port: int = 8080,
) -> DemoResult:
    """Run the demo over ``hours`` simulated hours (None: the scenario's whole horizon).

    ``notice``: how long (simulated) before an event starts the demo VTN sends it.
    """
    problem = load_scenario(scenario_path)
    dated = problem.grid.start
    days = replay_days(dated, datetime.now(UTC)) if problem.events else 0
    problem = shifted(problem, timedelta(days=days))
    clock = ScaledClock(problem.grid.start, speed)
    end = problem.grid.end if hours is None else problem.grid.start + timedelta(hours=hours)
    db.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):  # a demo starts from a clean store
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    # A protocol built for real time keeps some wall-clock room at any speed: dispatch at
    # most every 0.5 s and setpoints valid at least 2 s of wall time (at 900x a 3-minute
    # lifetime is 0.2 s, less than the embedded broker's latency under load).
    dispatch_s = max(60.0, 0.5 * speed)
    planning = planning or PlanningConfig(
        step_minutes=int(problem.grid.step.total_seconds() // 60),
        replan_minutes=15,
        dispatch_seconds=dispatch_s,
        setpoint_lifetime_seconds=max(3 * dispatch_s, 2.0 * speed),
        time_limit_s=20,
    )
    # The utility: the scenario's events go out over OpenADR, not into the store.
    vtn = DemoVtn(problem.events, ven_name=DEMO_VEN, port=free_port(), now=clock.now, notice=notice)
    settings = RuntimeSettings(
        database_url=f"sqlite:///{db}",
        mqtt=mqtt or MqttConfig(embedded_port=free_port()),
        planning=planning,
        api=ApiConfig(port=api_port if port_free(api_port) else 0),
        openadr=OpenAdrConfig(
            vtn_url=vtn.url,
            ven_name=DEMO_VEN,
            disable_signature=True,
            policy="feasible",
            poll_interval_s=vtn.poll_s,
            mapping=demo_mapping([s.site_id for s in problem.sites]),
        ),
    )
    await vtn.start()
    try:
        service = await start_service(
            settings, clock=clock, scenario=replace(problem, events=()), speed=speed
        )
    except BaseException:
        await vtn.stop()
        raise
    repo = service.repo
    sync_constraints(repo, problem, clock.now())
    dashboard = ""
    if service.api is not None:
        token = await asyncio.to_thread(create_operator, settings.database_url, "demo")
        dashboard = (
            f"  dashboard    {service.api.url}/dashboard  (API {service.api.url}/docs)\n"
            f"               operator API key for this run: {token}\n"
        )
    sim = SiteSimulator(
        problem,
        MqttSettings(
            url=service.mqtt_url,
            prefix=settings.mqtt.prefix,
            client_id="demo-sites",
            protocol="3.1.1" if service.broker is not None else settings.mqtt.protocol,
        ),
        clock,
        telemetry_period_s=60.0,
    )
    await sim.start()
    replay = (
        f"  replay       scenario dated {dated:%Y-%m-%d}, run {days} days later\n"
        "               (openleadr dates events by the wall clock)\n"
        if days
        else ""
    )
    console.print(
        f"demo: {scenario_path.name} from {problem.grid.start:%Y-%m-%d %H:%M} to "
        f"{end:%Y-%m-%d %H:%M} UTC at {speed:g}x\n"
        f"{replay}"
        f"  MQTT broker  {service.mqtt_url}  (topics {settings.mqtt.prefix}/sites/#)\n"
        f"  store        {db}  (SQLite: sessions, plans, setpoints, telemetry, events)\n"
        f"{dashboard}"
        f"  OpenADR VTN  {vtn.url}  (openleadr)\n"
        "               DEMO ONLY: plain HTTP without TLS, messages unsigned\n"
        f"               {len(problem.events)} events, each sent {_hours(notice)} before it "
        "starts",
        highlight=False,
    )
    watch = EffectWatch(problem)
    display = Live(console=console, auto_refresh=False) if live else contextlib.nullcontext()
    tick = 0
    try:
        with display as view:
            while clock.now() < end:
                now = clock.now()
                watch.observe(
                    service.controller.current.plan if service.controller.current else None,
                    list(vtn.sent),
                )
                if tick % 5 == 0:
                    sync_constraints(repo, problem, now)
                    if isinstance(view, Live):
                        view.update(render(service, sim, problem, now, vtn), refresh=True)
                tick += 1
                await asyncio.sleep(0.2)
    finally:
        await sim.stop()
        try:
            result = summarise(sim, problem, service, vtn, watch)  # reads the store: before stop
        finally:
            await service.stop()
            await vtn.stop()
    console.print()
    result.start, result.end, result.replayed_days = problem.grid.start, end, days
    return result


def _hours(d: timedelta) -> str:
    return f"{d.total_seconds() / 3600:g} h"


def summarise(
    sim: SiteSimulator,
    problem: FleetProblem,
    service: Service,
    vtn: DemoVtn | None = None,
    watch: EffectWatch | None = None,
) -> DemoResult:
    report = sim.report()
    result = DemoResult(
        sessions=len(report),
        reached=sum(1 for r in report if r.reached),
        setpoints=service.controller.counters["setpoints_sent"],
        plans=service.controller.counters["plans_lp"]
        + service.controller.counters["plans_heuristic"],
        rejected=service.controller.counters["telemetry_rejected"],
    )
    for r in report:
        if not r.reached:
            result.missed.append(
                f"{r.session_id} ({r.vehicle_id}) left {r.shortfall_kwh:.2f} kWh short of "
                f"its {r.target_kwh:.1f} kWh target"
            )
    for site in problem.sites:
        peak = max((p for _, p in sim.power_history(site.site_id)), default=0.0)
        result.peak_over_limit_kw[site.site_id] = peak - site.import_limit_kw
    if service.events is not None:
        result.events = [(r.event.event_id, r.opt, r.reason) for r in service.events.store.all()]
    if vtn is not None:
        result.vtn_answers = {i: s.answer for i, s in vtn.sent.items() if s.answer is not None}
        result.events_sent_at = {i: s.sent_at for i, s in vtn.sent.items()}
        result.events_not_sent = [e.event_id for e in vtn.pending]
        if watch is not None:
            result.event_effects = {i: watch.effect(s.event) for i, s in vtn.sent.items()}
    if service.settlements is not None:
        for held in service.settlements.store.settlements():
            result.settlements[held.event_id] = settlement_line(held)
    if service.api is not None:
        result.dashboard = service.api.url
    return result


def settlement_line(held: SettlementRecord) -> str:
    s = held.settlement
    if s is None:
        return f"not settled: {held.reason}"
    caps = "" if s.caps_met is None else (", caps met" if s.caps_met else ", a cap was broken")
    note = f" ({held.reason})" if held.reason else ""
    base = sum(i.baseline_kw for i in s.intervals) / max(1, len(s.intervals))
    met = sum(i.metered_kw for i in s.intervals) / max(1, len(s.intervals))
    nothing = (
        " — the plan without the event already stayed within it" if s.committed_kwh <= 0 else ""
    )
    return (
        f"baseline {base:.1f} kW, metered {met:.1f} kW; delivered {s.delivered_kwh:.1f} of "
        f"{s.committed_kwh:.1f} kWh committed{nothing}; compliance {s.compliance_pct:.0f} % "
        f"against the {s.baseline} baseline{caps}{note}"
    )
