"""The running service records time series, and a time-series store that is down or stuck
never holds up the control loop (site simulator over the embedded broker, real clock)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

import aggregator.app
from aggregator.api.metrics import registry_for
from aggregator.app import Service, start_service
from aggregator.demo import sync_constraints
from aggregator.domain import Point
from aggregator.scenario import load_scenario
from aggregator.services.recording import TimeSeriesRecorder
from aggregator.settings import MqttConfig, PlanningConfig, RuntimeSettings, TimeSeriesConfig
from aggregator.simulation.clock import ScaledClock
from aggregator.simulation.runner import SiteSimulator
from connectors.influxdb.buffer import DiskBuffer
from connectors.mqtt.broker import free_port
from connectors.mqtt.client import MqttSettings
from connectors.sql import open_repository
from connectors.sql.timeseries import SqlTimeSeriesStore
from tests.e2e.scenarios import write_depot
from tests.timeseries.test_recording import ListStore


@dataclass
class Run:
    setpoints_applied: int
    dispatch_s: list[float]
    metrics: str


async def _run_loop(
    tmp_path: Path,
    timeseries: TimeSeriesConfig,
    seconds: float,
    during: Callable[[Service], Awaitable[None]] | None = None,
) -> Run:
    problem = load_scenario(write_depot(tmp_path / "depot.yaml", datetime.now(UTC)))
    clock = ScaledClock(problem.grid.start, 1.0)
    settings = RuntimeSettings(
        database_url=f"sqlite:///{tmp_path / 'loop.db'}",
        mqtt=MqttConfig(embedded_port=free_port()),
        planning=PlanningConfig(dispatch_seconds=0.5, setpoint_lifetime_seconds=2.0),
        timeseries=timeseries,
    )
    service = await start_service(settings, clock=clock, scenario=problem)
    sync_constraints(service.repo, problem, clock.now())
    service.runtime.request_replan("constraints")
    sim = SiteSimulator(
        problem,
        MqttSettings(url=service.mqtt_url, prefix="aggregator", client_id="sim", protocol="3.1.1"),
        clock,
        telemetry_period_s=0.1,
    )
    await sim.start()
    dispatch_s = []
    try:
        await asyncio.sleep(seconds)
        if during is not None:
            await during(service)
        for _ in range(5):  # the dispatch itself, timed: store, hand to MQTT
            started = time.perf_counter()
            await service.runtime.dispatch()
            dispatch_s.append(time.perf_counter() - started)
        metrics = generate_latest(registry_for(service.runtime)).decode()
    finally:
        await sim.stop()
        await service.stop()
    return Run(len(sim.applied_setpoints()), dispatch_s, metrics)


def test_a_short_control_loop_records_telemetry_setpoints_and_plans(tmp_path: Path) -> None:
    run = asyncio.run(_run_loop(tmp_path, TimeSeriesConfig(flush_interval_s=0.2), seconds=2.5))
    assert "aggregator_timeseries_dropped_points_total 0.0" in run.metrics
    repo = open_repository(f"sqlite:///{tmp_path / 'loop.db'}")
    store = SqlTimeSeriesStore(repo)
    try:
        since, until = datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=2)

        def q(measurement: str, **tags: str) -> Any:
            return store.query(measurement, since, until, tags or None)

        telemetry, setpoints, plans = q("telemetry"), q("setpoint"), q("plan")
        stored_telemetry = repo.telemetry(since, until)
        stored_setpoints = repo.setpoints_since(since)
        stored_plans = {r.plan_id for r in repo.plans(limit=1000)}
        site_power, prices = q("site_power", site_id="depot"), q("price")
        c0 = q("telemetry", charger_id="c0")
    finally:
        store.close()
        repo.dispose()
    # Every stored reading and setpoint is a point, once.
    assert len(stored_telemetry) > 20
    assert len(telemetry) == len(stored_telemetry)
    assert sorted(telemetry["power_kw"]) == sorted(t.power_kw for t in stored_telemetry)
    assert len(setpoints) == len(stored_setpoints) > 0
    assert sorted(setpoints["seq"]) == sorted(s.seq for s in stored_setpoints)
    assert set(setpoints["plan_id"]) <= stored_plans
    # Every adopted plan, with its slots.
    assert set(plans["plan_id"]) == stored_plans
    slots = int(PlanningConfig().horizon_hours * 60 / PlanningConfig().step_minutes)
    assert len(plans) == slots * len(stored_plans)  # one site
    assert len(prices) == len(plans)
    assert set(c0["charger_id"]) == {"c0"}
    assert len(site_power) > 0
    assert (site_power["ev_power_kw"] >= 0).all()
    assert (site_power["import_limit_kw"] == 20.0).all()


class Stuck(ListStore):
    """An adapter at its worst: write() hangs until released (it must not, but if it did)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.calls = 0

    def write(self, points: Sequence[Point]) -> None:
        self.calls += 1
        self.release.wait(30)
        super().write(points)


def test_a_stuck_store_never_delays_dispatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = Stuck()
    monkeypatch.setattr(aggregator.app, "open_recorder", lambda *_: TimeSeriesRecorder(stuck))

    async def while_stuck(service: Service) -> None:
        assert stuck.calls == 1  # the first write hangs; nothing else reached the store
        assert service.repo.telemetry(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))

    def release_at_stop() -> None:
        # stop() closes the recorder, which waits for its conversions: let them finish then.
        time.sleep(0.1)
        stuck.release.set()

    async def during(service: Service) -> None:
        await while_stuck(service)
        threading.Thread(target=release_at_stop, daemon=True).start()

    run = asyncio.run(_run_loop(tmp_path, TimeSeriesConfig(), seconds=2.5, during=during))
    assert run.setpoints_applied >= 3 * 4  # three chargers, a dispatch every 0.5 s
    assert max(run.dispatch_s) < 0.5
    assert stuck.points  # released at the end: everything then went through


def test_influxdb_down_the_service_runs_and_points_wait_on_disk(tmp_path: Path) -> None:
    config = TimeSeriesConfig(
        backend="influxdb",
        url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        buffer_dir=tmp_path / "buffer",
        flush_interval_s=0.2,
    )
    started = time.perf_counter()
    run = asyncio.run(_run_loop(tmp_path, config, seconds=2.0))
    took = time.perf_counter() - started
    assert run.setpoints_applied >= 3 * 3
    assert max(run.dispatch_s) < 0.5
    assert "aggregator_timeseries_dropped_points_total 0.0" in run.metrics
    buffer = DiskBuffer(tmp_path / "buffer", 1_000_000)
    try:
        lines = buffer.head(1_000_000)[1]
    finally:
        buffer.close()
    kinds = {line.split(",", 1)[0].split(" ", 1)[0] for line in lines}
    assert {"telemetry", "site_power", "setpoint", "plan", "price"} <= kinds
    assert took < 30


def test_a_buffer_folder_in_use_stops_the_start_with_one_line(tmp_path: Path) -> None:
    from aggregator.app import StartupError, open_recorder

    config = TimeSeriesConfig(
        backend="influxdb", url=f"http://127.0.0.1:{free_port()}", buffer_dir=tmp_path / "buf"
    )
    repo = open_repository(f"sqlite:///{tmp_path / 'x.db'}")
    first = open_recorder(config, repo)
    try:
        with pytest.raises(StartupError, match=r"^timeseries\.buffer_dir: .* in use") as info:
            open_recorder(config, repo)
        assert "\n" not in str(info.value)
        assert open_recorder(config.model_copy(update={"enabled": False}), repo) is None
    finally:
        assert first is not None
        first.close()
        repo.dispose()
