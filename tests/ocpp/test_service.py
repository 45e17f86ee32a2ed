"""The real service with the ``ocpp`` settings: one charge point per OCPP version at one site."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.app import start_service
from aggregator.domain import DepartureConstraint
from aggregator.scenario import load_scenario
from aggregator.settings import (
    ApiConfig,
    MqttConfig,
    OcppChargerConfig,
    OcppConfig,
    PlanningConfig,
    RuntimeSettings,
)
from connectors.mqtt.broker import free_port
from tests.e2e.scenarios import BASE_LOAD_KW, SITE_LIMIT_KW, write_depot
from tests.ocpp.clients import connect, parse_ts


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def _limit_kw(profile: dict) -> float:  # type: ignore[type-arg]
    schedule = profile["charging_schedule"]
    schedule = schedule[0] if isinstance(schedule, list) else schedule
    return float(schedule["charging_schedule_period"][0]["limit"]) / 1000.0


def test_chargers_over_ocpp_open_sessions_and_obey_the_site_limit(tmp_path: Path) -> None:
    async def run() -> None:
        now = datetime.now(UTC)
        problem = load_scenario(write_depot(tmp_path / "depot.yaml", now))
        settings = RuntimeSettings(
            database_url=f"sqlite:///{tmp_path / 'ocpp.db'}",
            mqtt=MqttConfig(embedded_port=free_port()),
            planning=PlanningConfig(
                dispatch_seconds=0.5, setpoint_lifetime_seconds=5, time_limit_s=10
            ),
            api=ApiConfig(port=0),
            ocpp=OcppConfig(port=0),
        )
        service = await start_service(settings, scenario=problem)
        assert service.ocpp is not None
        url = service.ocpp.url
        for v in ("v0", "v1", "v2"):  # each wants more than the site can give
            service.repo.save_constraint(
                DepartureConstraint(v, now + timedelta(minutes=45), target_soc=0.9)
            )
        conns = [
            await connect(url, "c0", "1.6"),
            await connect(url, "c1", "2.0.1"),
            await connect(url, "c2", "2.1"),
        ]
        try:
            for i, conn in enumerate(conns):
                await conn.cp.plug_in(f"v{i}", 20.0)
            for _ in range(300):
                if len(service.controller.live) == 3 and all(c.cp.tx_profiles() for c in conns):
                    break
                await asyncio.sleep(0.05)
            assert set(service.controller.live) == {"c0", "c1", "c2"}
            assert all(c.cp.tx_profiles() for c in conns), "no TxProfile reached a charger"
            # A charger that obeys draws its latest limit: the site stays within its limit.
            latest = [_limit_kw(c.cp.tx_profiles()[-1]) for c in conns]
            assert sum(latest) + BASE_LOAD_KW <= SITE_LIMIT_KW + 1e-6
            assert sum(latest) > 10.0  # and it does charge
            for conn, kw in zip(conns, latest, strict=True):
                await conn.cp.meter(kw * 1000, 25.0)
            # the adapter's counters in /metrics, the OCPP server in /readyz
            assert service.api is not None
            metrics = await asyncio.to_thread(_get, service.api.url + "/metrics")
            assert "aggregator_ocpp_connected_charge_points 3.0" in metrics
            for name in ("call_errors", "timeouts", "composite_mismatches"):
                assert f"aggregator_ocpp_{name}_total 0.0" in metrics
            assert "aggregator_ocpp_degraded_chargers 0.0" in metrics
            ready = json.loads(await asyncio.to_thread(_get, service.api.url + "/readyz"))
            assert ready["checks"]["ocpp"] == "ok"
            # departure closes the session
            await conns[0].cp.unplug()
            for _ in range(100):
                if "c0" not in service.controller.live:
                    break
                await asyncio.sleep(0.05)
            assert "c0" not in service.controller.live
        finally:
            for conn in conns:
                await conn.close()
            await service.stop()

    asyncio.run(run())


def test_when_the_central_system_goes_away_the_charger_lapses_to_its_default_at_valid_to(
    tmp_path: Path,
) -> None:
    """The charger (test side) enforces validTo; we only stop sending fresh TxProfiles."""

    async def run() -> None:
        now = datetime.now(UTC)
        problem = load_scenario(write_depot(tmp_path / "depot.yaml", now))
        settings = RuntimeSettings(
            database_url=f"sqlite:///{tmp_path / 'ocpp.db'}",
            mqtt=MqttConfig(embedded_port=free_port()),
            planning=PlanningConfig(
                dispatch_seconds=0.5, setpoint_lifetime_seconds=2, time_limit_s=10
            ),
            api=ApiConfig(port=0),
            ocpp=OcppConfig(port=0, chargers={"c0": OcppChargerConfig(safe_limit_kw=1.5)}),
        )
        service = await start_service(settings, scenario=problem)
        assert service.ocpp is not None
        service.repo.save_constraint(
            DepartureConstraint("v0", now + timedelta(minutes=45), target_soc=0.9)
        )
        conn = await connect(service.ocpp.url, "c0", "1.6")
        try:
            await conn.cp.plug_in("v0", 20.0)
            for _ in range(300):
                if conn.cp.tx_profiles() and conn.cp.limit_now() != 1500.0:
                    break
                await asyncio.sleep(0.05)
            assert conn.cp.defaults(), "no default profile at boot"
            assert _limit_kw(conn.cp.defaults()[-1]) == 1.5
            await service.ocpp.stop()  # the central system goes away; the link drops
            await asyncio.sleep(0.1)
            last = conn.cp.tx_profiles()[-1]
            valid_to = parse_ts(last["valid_to"])
            assert datetime.now(UTC) < valid_to
            planned = _limit_kw(last) * 1000.0
            assert planned > 1500.0
            assert conn.cp.limit_now() == planned  # still valid: still the plan's limit
            while datetime.now(UTC) <= valid_to:
                await asyncio.sleep(0.05)
            assert conn.cp.limit_now() == 1500.0  # lapsed to the default at validTo
        finally:
            await conn.close()
            await service.stop()

    asyncio.run(run())
