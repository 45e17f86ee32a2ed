"""Benchmark event-to-setpoint latency (issue 9, item 4): grid event in -> plan -> MQTT out.

    python bench/latency.py                    # 1,000 vehicles, 20 events
    python bench/latency.py --vehicles 200 --repeats 5

The real service, composed by ``aggregator.app.start_service`` as ``aggregator run`` does:
SQLite store (a temporary file), the MQTT client against Mosquitto at ``127.0.0.1:1883`` when
it answers (a random topic prefix per run), else the embedded broker (amqtt) in this process;
the VEN configured with the ``feasible`` policy (each event's feasibility is checked with the
flexibility envelope before opting in) and SIMPLE levels mapped to fleet-wide caps;
settlement on (each opted-in event gets a baseline plan on the settle tick, with the cold
planner; it waits while a re-plan runs, and a re-plan that comes meanwhile runs beside it).
No VTN runs: the VEN keeps trying to register in the background, which does not touch event
handling.

The fleet is ``bench/fleets.synthetic_fleet(n)`` moved to start at the current quarter hour:
its sites, chargers and vehicles seed the store, its prices, base load and evening DR event
are the forecasts and stored events (``start_service(scenario=...)``, as the demo and tests
do). Every vehicle is plugged in now: each site reports ``online`` and each charger a
``plugged`` reading with the vehicle's SoC through the runtime's telemetry handler (what the
MQTT client calls); each vehicle's departure constraint (its dwell from the synthetic session,
its target SoC) is stored first. The benchmark waits for the plan of all sessions.

A plain paho client in a child process (as a site gateway is) subscribes (QoS 1) to every
charger's setpoint topic; times on both sides are ``time.monotonic()``. Then, ``repeats``
times: an OpenADR event (SIMPLE signal, level 1-3 in turn, 2 h from now, a new event id each
time) is rendered to an oadrDistributeEvent XML and parsed back with openleadr, and handed to
the VEN's event entry point (``Ven._handle_event``, what openleadr's client calls when the VTN
delivers an event): translate, decide (envelope feasibility), store, request a re-plan; the
runtime plans (warm where it can), stores the plan, dispatches every charger's setpoint
(stored, then handed to the MQTT client). Latency = the moment the subscriber has received the
last setpoint of the dispatch that followed the event's plan, minus the hand-over. Between
events the service is left idle (no re-plan or baseline running) for ``--gap`` seconds.

Results: p50/p95/max table on stdout and JSON in ``bench/results/latency.json``;
``measure(n_vehicles, repeats)`` returns the same dict (for ``bench/scale.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import multiprocessing
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from openleadr import objects
from openleadr.messaging import create_message, parse_message
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from fleets import synthetic_fleet  # noqa: E402

from aggregator.app import Service, start_service  # noqa: E402
from aggregator.domain import (  # noqa: E402
    DepartureConstraint,
    FleetProblem,
    Setpoint,
    SiteStatus,
    Telemetry,
    TimeGrid,
)
from aggregator.ports import SetpointSink  # noqa: E402
from aggregator.settings import (  # noqa: E402
    MqttConfig,
    OpenAdrConfig,
    PlanningConfig,
    RuntimeSettings,
)
from connectors.mqtt.broker import free_port  # noqa: E402

MOSQUITTO = ("127.0.0.1", 1883)
STEP = timedelta(minutes=15)
EVENT_SLOTS = 8  # 2 h
# Fleet-wide caps per SIMPLE level [kW per site]: binding at the evening peak, feasible.
LEVEL_CAP_KW_PER_SITE = {1: 175.0, 2: 150.0, 3: 125.0}
PROGRAM = "http://vtn.example/programs/bench"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mosquitto_answers() -> bool:
    import socket

    try:
        with socket.create_connection(MOSQUITTO, timeout=1.0):
            return True
    except OSError:
        return False


def fleet_now(n_vehicles: int, now: datetime) -> FleetProblem:
    """The synthetic fleet moved so that its grid starts at the quarter hour of ``now``."""
    fleet = synthetic_fleet(n_vehicles)
    start = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    delta = start - fleet.grid.start
    return replace(
        fleet,
        grid=TimeGrid(start, fleet.grid.step, fleet.grid.n_slots),
        sessions=tuple(
            replace(s, arrival=s.arrival + delta, departure=s.departure + delta)
            for s in fleet.sessions
        ),
        events=tuple(replace(e, start=e.start + delta, end=e.end + delta) for e in fleet.events),
    )


def oadr_cap_event(event_id: str, level: int, start: datetime) -> dict[str, Any]:
    """An event exactly as the VEN receives it: openleadr objects -> XML -> parsed dict."""
    intervals = [
        objects.Interval(dtstart=start + i * STEP, duration=STEP, signal_payload=float(level))
        for i in range(EVENT_SLOTS)
    ]
    event = objects.Event(
        event_descriptor=objects.EventDescriptor(
            event_id=event_id,
            modification_number=0,
            market_context=PROGRAM,
            event_status="active",
        ),
        event_signals=[
            objects.EventSignal(
                intervals=intervals,
                signal_name="SIMPLE",
                signal_type="level",
                signal_id="sig",
            )
        ],
        targets=[objects.Target(ven_id="bench-ven")],
    )
    data = asdict(event)
    data["event_descriptor"]["event_status"] = "active"
    xml = create_message("oadrDistributeEvent", request_id="r1", vtn_id="vtn", events=[data])
    _, payload = parse_message(xml)
    (parsed,) = payload["events"]
    assert isinstance(parsed, dict)
    return parsed


class StageTimer:
    """Wall time of the controller's stages, per call (observation only: calls pass through)."""

    STAGES = ("build_problem", "adopt", "dispatch", "deliver", "baseline solve")

    def __init__(self, controller: Any, baseline_planner: Any) -> None:
        self.calls: list[tuple[str, float, float]] = []
        for name in self.STAGES[:4]:
            setattr(controller, name, self._timed(name, getattr(controller, name)))
        # An event baseline solved meanwhile (settlement): beside the re-plan, not in its path.
        baseline_planner.plan = self._timed("baseline solve", baseline_planner.plan)

    def _timed(self, name: str, fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                self.calls.append((name, start, time.monotonic()))

        return call

    def between(self, t0: float, t1: float) -> dict[str, float]:
        """Seconds per stage within [t0, t1] (calls overlapping it, clipped to it)."""
        out = dict.fromkeys(self.STAGES, 0.0)
        for name, start, end in list(self.calls):
            out[name] += max(0.0, min(end, t1) - max(start, t0))
        return out


class RecordingSink:
    """The runtime's sink, passed through; remembers the seq numbers of the latest batch."""

    def __init__(self, inner: SetpointSink) -> None:
        self.inner = inner
        self.last: list[int] = []

    def publish(self, setpoints: Sequence[Setpoint]) -> None:
        self.last = [sp.seq for sp in setpoints]
        self.inner.publish(setpoints)


def _subscriber_main(data: Connection, ctrl: Connection, host: str, port: int, prefix: str) -> None:
    """Child process: a plain paho client on every setpoint topic; sends (seq, arrival) pairs.

    Arrival is ``time.monotonic()`` (CLOCK_MONOTONIC: one clock for every process here)."""
    batch: list[tuple[int, float]] = []
    lock = threading.Lock()
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"lat-{uuid.uuid4().hex[:8]}")

    def on_connect(c: mqtt.Client, *_: Any) -> None:
        c.subscribe(f"{prefix}/sites/+/chargers/+/setpoint", qos=1)

    def on_subscribe(*_: Any) -> None:
        subscribed.set()

    def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        t = time.monotonic()
        seq = int(json.loads(msg.payload)["seq"])
        with lock:
            batch.append((seq, t))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(host, port)
    client.loop_start()
    data.send("ready" if subscribed.wait(20.0) else "not subscribed")
    while not ctrl.poll(0.005):
        with lock:
            items, batch[:] = list(batch), []
        if items:
            data.send(items)
    client.disconnect()
    client.loop_stop()


class Subscriber:
    """The setpoint subscriber in its own process (a site gateway is not in our process):
    arrival time per seq, on ``time.monotonic()``."""

    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.arrived: dict[int, float] = {}
        self.lock = threading.Lock()
        ctx = multiprocessing.get_context("spawn")
        self._data, child_data = ctx.Pipe(duplex=False)
        child_ctrl, self._ctrl = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_subscriber_main,
            args=(child_data, child_ctrl, host, port, prefix),
            daemon=True,
        )

    def start(self) -> None:
        self._proc.start()
        if not self._data.poll(60.0) or self._data.recv() != "ready":
            raise RuntimeError("the setpoint subscriber could not subscribe")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                items = self._data.recv()
            except (EOFError, OSError):
                return
            with self.lock:
                for seq, t in items:
                    self.arrived.setdefault(seq, t)

    def last_arrival(self, seqs: Sequence[int]) -> float | None:
        with self.lock:
            if all(s in self.arrived for s in seqs):
                return max(self.arrived[s] for s in seqs)
        return None

    def stop(self) -> None:
        self._ctrl.send("stop")
        self._proc.join(10.0)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5.0)


async def until(cond: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        await asyncio.sleep(0.005)


async def load_fleet(service: Service, problem: FleetProblem, now: datetime, prefix: str) -> None:
    """Departure constraints stored, sites online, every vehicle plugged in: like the sites."""
    runtime, ctl = service.runtime, service.controller
    by_vehicle = {s.vehicle_id: s for s in problem.sessions}
    constraints = [
        DepartureConstraint(
            v.vehicle_id,
            now + (by_vehicle[v.vehicle_id].departure - by_vehicle[v.vehicle_id].arrival),
            target_soc=by_vehicle[v.vehicle_id].target_soc,
            min_soc=by_vehicle[v.vehicle_id].min_soc,
        )
        for v in problem.vehicles
    ]

    def save() -> None:
        for c in constraints:
            service.repo.save_constraint(c)

    await asyncio.to_thread(save)
    for site in problem.sites:
        runtime.on_site_status(SiteStatus(site.site_id, True, now))
    site_of = {c.charger_id: c.site_id for c in problem.chargers}
    for s in problem.sessions:
        site = site_of[s.charger_id]
        topic = f"{prefix}/sites/{site}/chargers/{s.charger_id}/telemetry"
        reading = Telemetry(site, s.charger_id, now, 0.0, True, s.vehicle_id, s.arrival_soc)
        runtime.on_telemetry(topic, reading)

    def planned_all() -> bool:
        current = ctl.current
        return (
            current is not None
            and len(current.plan.schedules) == len(problem.sessions)
            and not runtime._replanning
        )

    await until(planned_all, 300.0, "the plan of every session")


async def run(
    n_vehicles: int, repeats: int, gap_s: float, console: Console | None
) -> dict[str, Any]:
    say = console.print if console is not None else (lambda *_: None)
    # No VTN runs: the VEN's registration retries are expected noise.
    logging.getLogger("openleadr").setLevel(logging.CRITICAL)
    logging.getLogger("connectors.openadr").setLevel(logging.CRITICAL)
    now = datetime.now(UTC)
    problem = fleet_now(n_vehicles, now)
    n_sites = len(problem.sites)
    prefix = f"lat-{uuid.uuid4().hex[:8]}"
    if mosquitto_answers():
        mqtt_config = MqttConfig(url="mqtt://127.0.0.1:1883", prefix=prefix, client_id=prefix)
        broker = "Mosquitto 127.0.0.1:1883"
    else:
        mqtt_config = MqttConfig(embedded_port=free_port(), prefix=prefix)
        broker = "embedded amqtt"
    levels = {k: {"cap_kw": v * n_sites} for k, v in LEVEL_CAP_KW_PER_SITE.items()}
    with tempfile.TemporaryDirectory() as tmp:
        settings = RuntimeSettings(
            database_url=f"sqlite:///{Path(tmp) / 'latency.db'}",
            mqtt=mqtt_config,
            planning=PlanningConfig(time_limit_s=30.0),
            openadr=OpenAdrConfig(
                vtn_url=f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b",
                ven_name="bench-ven",
                policy="feasible",
                disable_signature=True,
                mapping={"programs": {"*": {"simple_levels": levels}}},
            ),
        )
        say(f"[dim]{n_vehicles} vehicles, {broker}: starting the service...[/dim]")
        service = await start_service(settings, scenario=problem)
        assert service.ven is not None
        runtime, ctl = service.runtime, service.controller
        stages = StageTimer(ctl, runtime.baseline_planner)
        sink = RecordingSink(service.connector)
        runtime.sink = sink
        host, port = service.mqtt_url.removeprefix("mqtt://").rsplit(":", 1)
        sub = Subscriber(host, int(port), prefix)
        sub.start()
        plans: list[tuple[str, str, list[int], dict[str, float]]] = []

        def on_plan(reason: str) -> None:
            assert ctl.current is not None
            plans.append((reason, ctl.current.plan_id, list(sink.last), ctl.current.plan.timings_s))

        runtime.on_plan = on_plan
        rows: list[dict[str, Any]] = []
        try:
            t = time.monotonic()
            await load_fleet(service, problem, now, prefix)
            say(f"[dim]fleet planned in {time.monotonic() - t:.1f} s; {repeats} events[/dim]")
            for i in range(repeats):
                await until(
                    lambda: not runtime._replanning and not runtime._settling,
                    300.0,
                    "an idle service",
                )
                await asyncio.sleep(gap_s)
                event_id = f"bench-{prefix}-{i:03d}"
                level = 1 + i % 3
                start = datetime.now(UTC).replace(second=0, microsecond=0)
                raw = oadr_cap_event(event_id, level, start)
                settling = runtime._settling
                n_plans = len(plans)
                t0 = time.monotonic()
                opt = await service.ven._handle_event(raw)
                t_decided = time.monotonic()

                def ours(n: int = n_plans, eid: str = event_id) -> bool:
                    return any(eid in p[0] for p in plans[n:])

                await until(ours, 120.0, f"the plan of {event_id}")
                _, plan_id, seqs, timings = next(p for p in plans[n_plans:] if event_id in p[0])

                def received(s: list[int] = seqs) -> bool:
                    return sub.last_arrival(s) is not None

                await until(received, 60.0, f"the setpoints of {event_id}")
                t_last = sub.last_arrival(seqs)
                assert t_last is not None
                plan_s = runtime.plan_seconds[-1]
                stage_s = stages.between(t0, t_last)
                row = {
                    "event_id": event_id,
                    "level": level,
                    "opt": opt,
                    "latency_s": t_last - t0,
                    "decide_s": t_decided - t0,
                    "plan_s": plan_s,
                    "warm": bool(timings.get("warm")),
                    "warm_kind": timings.get("warm_kind"),
                    "solve_s": timings.get("solve_s"),
                    "setpoints": len(seqs),
                    "stages_s": stage_s,
                    "baseline_running_at_handover": settling,
                    "plan_id": plan_id,
                }
                rows.append(row)
                say(
                    f"  {event_id[-3:]}: {row['latency_s']:.3f} s (decide {row['decide_s']:.3f}, "
                    f"plan {plan_s:.3f} {'warm' if row['warm'] else 'cold'}, "
                    f"{len(seqs)} setpoints; "
                    + ", ".join(f"{k} {v:.3f}" for k, v in stage_s.items())
                    + f") {opt}"
                )
        finally:
            sub.stop()
            await service.stop()
    lat = [r["latency_s"] for r in rows]
    return {
        "vehicles": n_vehicles,
        "sessions": len(problem.sessions),
        "sites": n_sites,
        "slots": problem.grid.n_slots,
        "repeats": repeats,
        "broker": broker,
        "p50_s": percentile(lat, 0.5),
        "p95_s": percentile(lat, 0.95),
        "max_s": max(lat),
        "mean_s": statistics.fmean(lat),
        "decide_p50_s": percentile([r["decide_s"] for r in rows], 0.5),
        "plan_p50_s": percentile([r["plan_s"] for r in rows], 0.5),
        "plan_p95_s": percentile([r["plan_s"] for r in rows], 0.95),
        "warm_replans": sum(r["warm"] for r in rows),
        "target_s": 1.0,
        "target_met": percentile(lat, 0.95) <= 1.0,
        "events": rows,
    }


def measure(n_vehicles: int = 1000, repeats: int = 20) -> dict[str, Any]:
    """Event-to-setpoint latency of the running service (see the module docstring)."""
    return asyncio.run(run(n_vehicles, repeats, gap_s=1.0, console=None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--gap", type=float, default=1.0, help="idle seconds between events")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latency.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    console = Console(width=140)
    result = asyncio.run(run(args.vehicles, args.repeats, args.gap, console))
    table = Table(
        title=f"Event-to-setpoint latency, {args.vehicles:,} vehicles, {result['broker']} "
        f"({args.repeats} events, s)"
    )
    for col in ("", "p50", "p95", "max", "target p95 <= 1 s"):
        table.add_column(col, justify="right")
    table.add_row(
        "event -> last setpoint received",
        f"{result['p50_s']:.3f}",
        f"{result['p95_s']:.3f}",
        f"{result['max_s']:.3f}",
        "met" if result["target_met"] else "not met",
    )
    plans = [r["plan_s"] for r in result["events"]]
    decide = [r["decide_s"] for r in result["events"]]
    table.add_row(
        "  of which: VEN decision (envelope)",
        f"{percentile(decide, 0.5):.3f}",
        f"{percentile(decide, 0.95):.3f}",
        f"{max(decide):.3f}",
        "",
    )
    table.add_row(
        f"  of which: plan ({result['warm_replans']}/{args.repeats} warm)",
        f"{percentile(plans, 0.5):.3f}",
        f"{percentile(plans, 0.95):.3f}",
        f"{max(plans):.3f}",
        "",
    )
    for stage in StageTimer.STAGES:
        values = [r["stages_s"][stage] for r in result["events"]]
        table.add_row(
            f"  of which: {stage}",
            f"{percentile(values, 0.5):.3f}",
            f"{percentile(values, 0.95):.3f}",
            f"{max(values):.3f}",
            "",
        )
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "when": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    args.out.write_text(json.dumps({"meta": meta, **result}, indent=2))
    console.print(f"JSON written to {args.out}")


if __name__ == "__main__":
    main()
