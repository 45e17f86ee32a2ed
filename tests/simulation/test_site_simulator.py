"""The simulator's loop without a broker: a fake gateway records what would go on the wire."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from aggregator.domain import Setpoint, Telemetry
from aggregator.scenario import load_scenario
from aggregator.simulation.clock import ScaledClock, SimClock
from aggregator.simulation.runner import Gateway, SiteSimulator
from connectors.mqtt.settings import MqttSettings
from tests.simulation.sim_builders import SITE, T0, at, problem, setpoint

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = MqttSettings(url="mqtt://127.0.0.1:1", client_id="sim-test")


class FakeGateway:
    """Stands in for ``GatewayClient``: records telemetry, lets the test push setpoints."""

    def __init__(self, site_id: str, on_setpoint: Callable[[Setpoint], None]) -> None:
        self.site_id = site_id
        self.on_setpoint = on_setpoint
        self.sent: list[Telemetry] = []
        self.started = False
        self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def wait_connected(self, timeout: float) -> bool:
        return True

    def publish_telemetry(self, telemetry: Telemetry) -> bool:
        assert telemetry.site_id == self.site_id
        self.sent.append(telemetry)
        return True


def simulator(
    clock: SimClock, *, telemetry_period_s: float = 60.0, safe_power_kw: float = 0.0
) -> tuple[SiteSimulator, dict[str, FakeGateway]]:
    fakes: dict[str, FakeGateway] = {}

    def factory(
        settings: MqttSettings,
        site_id: str,
        clock: SimClock,
        on_setpoint: Callable[[Setpoint], None],
    ) -> Gateway:
        fakes[site_id] = FakeGateway(site_id, on_setpoint)
        return fakes[site_id]

    sim = SiteSimulator(
        problem(arrival_min=0, departure_min=120, target_soc=0.3),
        SETTINGS,
        clock,
        telemetry_period_s=telemetry_period_s,
        safe_power_kw=safe_power_kw,
        gateway_factory=factory,
    )
    return sim, fakes


def test_run_publishes_one_reading_per_charger_every_period_until_the_end() -> None:
    clock = ScaledClock(T0, speed=3600.0)  # one wall second is one simulated hour
    sim, fakes = simulator(clock, telemetry_period_s=300.0)
    asyncio.run(sim.run(until=at(30)))
    gateway = fakes[SITE]
    assert gateway.started and gateway.stopped
    stamps = [t.ts for t in gateway.sent]
    # Every 5 simulated minutes from the start, and one last reading at the end.
    assert len(stamps) >= 6
    assert stamps[-1] == at(30)
    gaps = [b - a for a, b in pairwise(stamps)]
    assert all(timedelta(0) < g <= timedelta(minutes=6) for g in gaps)
    history = sim.power_history(SITE)
    assert [ts for ts, _ in history] == stamps


def test_setpoint_from_another_thread_is_applied_from_the_moment_it_arrives() -> None:
    clock = ScaledClock(T0, speed=3600.0)
    sim, fakes = simulator(clock, telemetry_period_s=60.0)
    gateway = fakes[SITE]

    async def scenario() -> None:
        await sim.start()
        await clock.sleep_sim(10 * 60)
        sp = setpoint(10.0, valid_min=24 * 60)
        # paho would call this on its network thread.
        thread = threading.Thread(target=gateway.on_setpoint, args=(sp,))
        thread.start()
        thread.join()
        await clock.sleep_sim(20 * 60)
        await sim.stop()

    asyncio.run(scenario())
    assert [s.seq for s in sim.applied_setpoints()] == [1]
    charging = [t for t in gateway.sent if t.status == "charging"]
    assert charging and all(t.power_kw == 10.0 for t in charging)
    fallback = [t for t in gateway.sent if t.status == "fallback"]
    assert fallback and fallback[0].ts < charging[0].ts
    (result,) = sim.report(include_plugged=True)
    # 12 kWh at arrival plus 10 kW (efficiency 1) since the setpoint came, ~20 min ago.
    charged_h = (result.energy_kwh - 12.0) / 10.0
    assert 0.25 <= charged_h <= 0.42
    assert gateway.stopped


def test_site_power_is_read_at_the_clock_and_never_moves_the_model_back() -> None:
    clock = ScaledClock(T0 + timedelta(minutes=5), speed=1.0)
    sim, _ = simulator(clock, safe_power_kw=4.0)
    assert sim.site_power_kw() == {SITE: pytest.approx(4.0)}
    # An earlier time than the model's is read at the model's time.
    assert sim.site_power_kw(T0) == {SITE: pytest.approx(4.0)}


def test_telemetry_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="telemetry_period_s"):
        simulator(ScaledClock(T0), telemetry_period_s=0.0)


def test_caltech_sessions_play_through_the_simulator() -> None:
    fleet = load_scenario(ROOT / "config" / "scenarios" / "caltech_day.yaml")
    clock = ScaledClock(fleet.grid.start + timedelta(hours=8), speed=36000.0)
    sent: list[Telemetry] = []

    def factory(
        settings: MqttSettings,
        site_id: str,
        clock: SimClock,
        on_setpoint: Callable[[Setpoint], None],
    ) -> Gateway:
        gateway = FakeGateway(site_id, on_setpoint)
        gateway.sent = sent
        return gateway

    sim = SiteSimulator(
        fleet, SETTINGS, clock, telemetry_period_s=900.0, safe_power_kw=6.6, gateway_factory=factory
    )
    end = fleet.grid.start + timedelta(hours=12)
    asyncio.run(sim.run(until=end))
    # 8:00 to 12:00 PST: every charger reports at every tick; the morning arrivals plug in.
    ticks = {t.ts for t in sent}
    assert len(sent) == len(ticks) * len(fleet.chargers)
    assert any(t.plugged and t.status == "fallback" and t.power_kw == 6.6 for t in sent)
    assert max(p for _, p in sim.power_history("caltech")) > 60.0  # safe power ignores the limit
    assert sim.report(include_plugged=True)


def test_run_refuses_while_running_in_the_background() -> None:
    sim, _ = simulator(ScaledClock(T0, speed=3600.0))

    async def scenario() -> None:
        await sim.start()
        try:
            with pytest.raises(RuntimeError, match="background"):
                await sim.run(until=at(5))
        finally:
            await sim.stop()

    asyncio.run(scenario())
