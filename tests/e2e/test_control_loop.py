"""The whole loop over a real broker: aggregator -> setpoints -> simulated site -> telemetry."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from aggregator.app import start_service
from aggregator.demo import run_demo, sync_constraints
from aggregator.scenario import load_scenario
from aggregator.settings import MqttConfig, PlanningConfig, RuntimeSettings
from aggregator.simulation.clock import ScaledClock
from aggregator.simulation.runner import SiteSimulator
from connectors.mqtt.broker import free_port
from connectors.mqtt.client import MqttSettings
from connectors.sql import open_repository
from tests.e2e.scenarios import BASE_LOAD_KW, SITE_LIMIT_KW, write_depot
from tests.mqtt.mqtt_helpers import port_answers

START = datetime(2025, 1, 6, 8, tzinfo=UTC)


def _mqtt(kind: str) -> MqttConfig:
    if kind == "embedded":
        return MqttConfig(embedded_port=free_port())
    if not port_answers("127.0.0.1", 1883):
        pytest.skip("no Mosquitto answering at 127.0.0.1:1883 (the embedded case still runs)")
    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    return MqttConfig(url="mqtt://127.0.0.1:1883", prefix=prefix, client_id=f"agg-{prefix}")


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
def test_vehicles_reach_their_targets_and_the_site_stays_within_its_limit(
    broker: str, tmp_path: Path
) -> None:
    scenario = write_depot(tmp_path / "depot.yaml", START)
    db = tmp_path / "loop.db"
    # At 900x, 2 s of wall time is 30 simulated minutes: room for broker latency under load.
    planning = PlanningConfig(
        dispatch_seconds=60, setpoint_lifetime_seconds=1800, replan_minutes=15, time_limit_s=10
    )
    result = asyncio.run(
        run_demo(
            scenario,
            speed=900.0,
            hours=3.5,
            db=db,
            console=Console(quiet=True),
            live=False,
            mqtt=_mqtt(broker),
            planning=planning,
        )
    )
    assert result.sessions == 3
    assert result.reached == 3
    assert result.rejected == 0
    assert result.peak_over_limit_kw["depot"] <= 1e-6
    # The limit as the site's own telemetry shows it: chargers at each reading plus base load.
    repo = open_repository(f"sqlite:///{db}")
    try:
        readings = repo.telemetry(START, START + timedelta(hours=4), "depot")
    finally:
        repo.dispose()
    by_ts: dict[datetime, float] = defaultdict(float)
    for t in readings:
        by_ts[t.ts] += t.power_kw
    assert len(by_ts) > 100
    assert max(by_ts.values()) + BASE_LOAD_KW <= SITE_LIMIT_KW + 1e-6
    assert max(by_ts.values()) > 10.0  # it did charge, more than one charger at once


def test_site_falls_back_to_safe_power_when_the_aggregator_stops(tmp_path: Path) -> None:
    async def scenario() -> tuple[datetime, list[tuple[datetime, float]]]:
        problem = load_scenario(write_depot(tmp_path / "depot.yaml", datetime.now(UTC)))
        clock = ScaledClock(problem.grid.start, 1.0)
        settings = RuntimeSettings(
            database_url=f"sqlite:///{tmp_path / 'expiry.db'}",
            mqtt=MqttConfig(embedded_port=free_port()),
            planning=PlanningConfig(dispatch_seconds=0.5, setpoint_lifetime_seconds=2.0),
        )
        service = await start_service(settings, clock=clock, scenario=problem)
        sync_constraints(service.repo, problem, clock.now())
        sim = SiteSimulator(
            problem,
            MqttSettings(
                url=service.mqtt_url, prefix="aggregator", client_id="sim", protocol="3.1.1"
            ),
            clock,
            telemetry_period_s=0.1,
            safe_power_kw=0.0,
        )
        await sim.start()
        try:
            for _ in range(200):  # the vehicle on c0 gets a charging setpoint
                if any(sp.charger_id == "c0" and sp.power_kw > 0 for sp in sim.applied_setpoints()):
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("no charging setpoint reached the site")
            # Stop the aggregator (the broker it embeds stays up for the site).
            if service.api is not None:
                await service.api.stop()
            await service.runtime.stop()
            if service.recorder is not None:
                await asyncio.to_thread(service.recorder.close)
            await asyncio.to_thread(service.connector.stop)
            last = max(sp.valid_until for sp in sim.applied_setpoints() if sp.charger_id == "c0")
            await asyncio.sleep((last - clock.now()).total_seconds() + 1.5)
            return last, sim.power_history("depot")
        finally:
            await sim.stop()
            if service.broker is not None:
                await service.broker.stop()
            service.repo.dispose()

    valid_until, history = asyncio.run(scenario())
    before = [p for ts, p in history if ts < valid_until - timedelta(seconds=0.3)]
    after = [p for ts, p in history if ts >= valid_until + timedelta(seconds=1)]
    assert before and max(before) > BASE_LOAD_KW + 1.0  # charging while setpoints were valid
    assert after and all(p == pytest.approx(BASE_LOAD_KW) for p in after)  # safe power: 0 kW


def test_bad_telemetry_is_counted_and_never_changes_state(tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt

    async def scenario() -> tuple[dict[str, int], int, int]:
        problem = load_scenario(write_depot(tmp_path / "depot.yaml", datetime.now(UTC)))
        settings = RuntimeSettings(
            database_url=f"sqlite:///{tmp_path / 'bad.db'}",
            mqtt=MqttConfig(embedded_port=free_port()),
        )
        service = await start_service(settings, scenario=problem)
        host, port = service.mqtt_url.removeprefix("mqtt://").split(":")
        raw = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="bad-site", protocol=mqtt.MQTTv311
        )
        # paho's blocking calls go to a worker thread: the broker runs on this event loop.
        await asyncio.to_thread(raw.connect, host, int(port))
        raw.loop_start()

        async def publish(t: str, payload: bytes) -> None:
            await asyncio.to_thread(lambda: raw.publish(t, payload, qos=1).wait_for_publish(5))

        now = datetime.now(UTC)
        topic = "aggregator/sites/depot/chargers/{}/telemetry"
        good = (
            '{{"ts": "{ts}", "power_kw": 0, "plugged": true, "vehicle_id": "v0", '
            '"soc": {soc}, "status": "ok"}}'
        )
        far = (now + timedelta(days=2)).isoformat()
        bad = [
            (topic.format("c0"), b"{not json"),
            (topic.format("c0"), good.format(ts=now.isoformat(), soc=-0.2).encode()),
            (topic.format("nope"), good.format(ts=now.isoformat(), soc=0.5).encode()),
            (topic.format("c0"), good.format(ts=far, soc=0.5).encode()),
        ]
        try:
            for t, payload in bad:
                await publish(t, payload)
            for _ in range(50):
                if service.controller.counters["telemetry_rejected"] >= len(bad):
                    break
                await asyncio.sleep(0.1)
            sessions_after_bad = len(service.repo.open_sessions())
            # The loop is alive: a valid arrival still opens a session.
            await publish(topic.format("c0"), good.format(ts=now.isoformat(), soc=0.3).encode())
            for _ in range(50):
                if service.repo.open_sessions():
                    break
                await asyncio.sleep(0.1)
            return (
                dict(service.controller.counters),
                sessions_after_bad,
                len(service.repo.open_sessions()),
            )
        finally:
            raw.disconnect()  # the network loop closes the socket on its way out
            raw.loop_stop()
            await service.stop()

    counters, sessions_after_bad, sessions_after_good = asyncio.run(scenario())
    assert counters["telemetry_rejected"] == 4
    assert sessions_after_bad == 0
    assert sessions_after_good == 1


def test_a_new_constraint_or_grid_event_is_planned_at_once(tmp_path: Path) -> None:
    from aggregator.domain import DepartureConstraint, EventRecord, GridEvent, Telemetry

    async def scenario() -> None:
        now = datetime.now(UTC)
        problem = load_scenario(write_depot(tmp_path / "depot.yaml", now))
        settings = RuntimeSettings(
            database_url=f"sqlite:///{tmp_path / 'triggers.db'}",
            mqtt=MqttConfig(embedded_port=free_port()),
            planning=PlanningConfig(replan_minutes=60),  # no periodic re-plan in this test
        )
        service = await start_service(settings, scenario=problem)
        runtime, ctl = service.runtime, service.controller

        async def next_plan(after: int) -> None:
            for _ in range(100):
                if len(runtime.plan_seconds) > after:
                    return
                await asyncio.sleep(0.05)
            pytest.fail("no re-plan within 5 s")

        try:
            runtime.on_telemetry("t", Telemetry("depot", "c0", now, 0.0, True, "v0", 0.2))
            await next_plan(1)
            n = len(runtime.plan_seconds)
            await runtime.submit_constraint(
                DepartureConstraint("v0", now + timedelta(hours=2), target_soc=0.4)
            )
            await next_plan(n)
            assert ctl.current is not None
            (outcome,) = ctl.current.plan.outcomes
            assert outcome.target_kwh == pytest.approx((0.4 + 0.005) * 40)

            n = len(runtime.plan_seconds)
            event = GridEvent("dr-now", now, now + timedelta(hours=1), cap_kw=6.0)
            await runtime.submit_event(EventRecord(event, 0, "active", now))
            await next_plan(n)
            assert [e.event_id for e in ctl.current.plan.events] == ["dr-now"]
            assert max(ctl.current.plan.events[0].planned_import_kw) <= 6.0 + 1e-6
        finally:
            await service.stop()

    asyncio.run(scenario())
