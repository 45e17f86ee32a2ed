"""``aggregator demo``: the whole loop on one machine, no external service.

An embedded MQTT broker, a SQLite store, the control loop, and the site simulator playing a
scenario's sessions on an accelerated clock. A stand-in fleet manager registers each vehicle's
next departure constraint before it arrives (what the API will do). A live table shows each
site's power against its limit and whether plugged-in vehicles are on track.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from aggregator.app import Service, start_service
from aggregator.domain import DepartureConstraint, FleetProblem, Session
from aggregator.ports import Repository
from aggregator.scenario import load_scenario
from aggregator.settings import MqttConfig, PlanningConfig, RuntimeSettings
from aggregator.simulation.clock import ScaledClock
from aggregator.simulation.runner import SiteSimulator
from connectors.mqtt.broker import free_port
from connectors.mqtt.client import MqttSettings


@dataclass
class DemoResult:
    sessions: int = 0
    reached: int = 0
    peak_over_limit_kw: dict[str, float] = field(default_factory=dict)
    setpoints: int = 0
    plans: int = 0
    rejected: int = 0
    missed: list[str] = field(default_factory=list)


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


def render(service: Service, sim: SiteSimulator, problem: FleetProblem, now: datetime) -> Group:
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
    return Group(sites, vehicles, stats)


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
) -> DemoResult:
    problem = load_scenario(scenario_path)
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
    settings = RuntimeSettings(
        database_url=f"sqlite:///{db}",
        mqtt=mqtt or MqttConfig(embedded_port=free_port()),
        planning=planning,
    )
    service = await start_service(settings, clock=clock, scenario=problem, speed=speed)
    repo = service.repo
    sync_constraints(repo, problem, clock.now())
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
    console.print(
        f"demo: {scenario_path.name} from {problem.grid.start:%Y-%m-%d %H:%M} to "
        f"{end:%Y-%m-%d %H:%M} UTC at {speed:g}x\n"
        f"  MQTT broker  {service.mqtt_url}  (topics {settings.mqtt.prefix}/sites/#)\n"
        f"  store        {db}  (SQLite: sessions, plans, setpoints, telemetry)",
        highlight=False,
    )
    display = Live(console=console, auto_refresh=False) if live else contextlib.nullcontext()
    try:
        with display as view:
            while clock.now() < end:
                now = clock.now()
                sync_constraints(repo, problem, now)
                if isinstance(view, Live):
                    view.update(render(service, sim, problem, now), refresh=True)
                await asyncio.sleep(1.0)
    finally:
        await sim.stop()
        await service.stop()
    console.print()
    return summarise(sim, problem, service)


def summarise(sim: SiteSimulator, problem: FleetProblem, service: Service) -> DemoResult:
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
    return result
