"""The OCPP central system on loopback against ocpp-library charge points (no service)."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from aggregator.domain import Setpoint, SiteStatus, Telemetry
from connectors.ocpp import OcppCentralSystem, OcppChargerSettings, OcppSettings
from tests.ocpp.clients import connect


class Handler:
    def __init__(self) -> None:
        self.telemetry: list[Telemetry] = []
        self.status: list[SiteStatus] = []
        self.rejects: list[str] = []

    def on_telemetry(self, topic: str, telemetry: Telemetry) -> None:
        self.telemetry.append(telemetry)

    def on_site_status(self, status: SiteStatus) -> None:
        self.status.append(status)

    def on_reject(self, topic: str, reason: str) -> None:
        self.rejects.append(reason)


CHARGERS = {"c0": "depot", "c1": "depot", "c2": "depot"}


async def started(**kwargs: Any) -> tuple[OcppCentralSystem, Handler]:
    handler = Handler()
    settings = OcppSettings(port=0, response_timeout_s=0.5, **kwargs)
    system = OcppCentralSystem(settings, handler, CHARGERS)
    await system.start()
    return system, handler


def setpoint(charger: str, kw: float, seq: int, life_s: float = 30.0) -> Setpoint:
    now = datetime.now(UTC)
    return Setpoint(charger, "depot", kw, now, now + timedelta(seconds=life_s), "plan-1", seq)


async def until(cond: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_transaction_feeds_telemetry_and_setpoints_become_tx_profiles(version: str) -> None:
    async def run() -> None:
        system, handler = await started(
            chargers={"c0": OcppChargerSettings("c0", safe_limit_kw=3.7)}
        )
        conn = await connect(system.url, "c0", version)
        try:
            await conn.cp.plug_in("v0", 42.0)
            await until(lambda: bool(conn.cp.defaults()))
            default = conn.cp.defaults()[0]
            assert default["stack_level"] == 0
            assert handler.status[0] == SiteStatus("depot", True, handler.status[0].ts)
            await conn.cp.meter(7400.0, 43.0)
            await until(lambda: any(t.power_kw == pytest.approx(7.4) for t in handler.telemetry))
            last = handler.telemetry[-1]
            assert (last.charger_id, last.plugged, last.vehicle_id) == ("c0", True, "v0")
            assert last.soc == pytest.approx(0.43)

            sp = setpoint("c0", 5.55, 1)
            await asyncio.to_thread(system.publish, [sp])  # from a worker, like dispatch
            await until(lambda: bool(conn.cp.tx_profiles()))
            prof = conn.cp.tx_profiles()[-1]
            assert prof["stack_level"] == 1
            assert prof["valid_to"].startswith(sp.valid_until.strftime("%Y-%m-%dT%H:%M:%S"))
            schedule = prof["charging_schedule"]
            schedule = schedule if version == "1.6" else schedule[0]
            assert schedule["charging_rate_unit"] == "W"
            assert schedule["charging_schedule_period"][0]["limit"] == pytest.approx(5550.0)
            # a second setpoint replaces the first: same id and stack level
            system.publish([setpoint("c0", 2.0, 2)])
            await until(lambda: len(conn.cp.tx_profiles()) == 2)
            ids = {p.get("charging_profile_id", p.get("id")) for p in conn.cp.tx_profiles()}
            assert len(ids) == 1

            await conn.cp.unplug()
            await until(lambda: not handler.telemetry[-1].plugged)
        finally:
            await conn.close()
            await system.stop()
        await until(lambda: not handler.status[-1].online)

    asyncio.run(run())


def test_amps_for_a_charger_that_declares_amps() -> None:
    async def run() -> None:
        config = OcppChargerSettings("c1", unit="A", voltage=230, phases=3, safe_limit_kw=0)
        system, _ = await started(chargers={"c1": config})
        conn = await connect(system.url, "c1", "2.0.1")
        try:
            await conn.cp.plug_in("v1", 50.0)
            system.publish([setpoint("c1", 11.04, 1)])
            await until(lambda: bool(conn.cp.tx_profiles()))
            schedule = conn.cp.tx_profiles()[-1]["charging_schedule"][0]
            assert schedule["charging_rate_unit"] == "A"
            period = schedule["charging_schedule_period"][0]
            assert period["limit"] == pytest.approx(16.0)
            assert period["number_phases"] == 3
        finally:
            await conn.close()
            await system.stop()

    asyncio.run(run())


def test_ocpp21_bidirectional_charger_gets_discharge_setpoints() -> None:
    async def run() -> None:
        config = OcppChargerSettings("c2", bidirectional=True)
        system, _ = await started(chargers={"c2": config})
        conn = await connect(system.url, "c2", "2.1")
        try:
            await conn.cp.plug_in("v2", 80.0)
            system.publish([setpoint("c2", -7.0, 1)])
            await until(lambda: bool(conn.cp.tx_profiles()))
            period = conn.cp.tx_profiles()[-1]["charging_schedule"][0]["charging_schedule_period"][
                0
            ]
            assert period["operation_mode"] == "CentralSetpoint"
            assert period["setpoint"] == pytest.approx(-7000.0)
            assert period["discharge_limit"] == pytest.approx(-7000.0)
        finally:
            await conn.close()
            await system.stop()

    asyncio.run(run())


def test_unidirectional_charger_never_gets_a_negative_limit() -> None:
    async def run() -> None:
        system, _ = await started()
        conn = await connect(system.url, "c0", "2.1")
        try:
            await conn.cp.plug_in("v0", 80.0)
            system.publish([setpoint("c0", -7.0, 1)])
            await until(lambda: bool(conn.cp.tx_profiles()))
            period = conn.cp.tx_profiles()[-1]["charging_schedule"][0]["charging_schedule_period"][
                0
            ]
            assert period["limit"] == 0.0
            assert "operation_mode" not in period
        finally:
            await conn.close()
            await system.stop()

    asyncio.run(run())


def test_call_error_and_timeout_are_counted_and_mark_the_charger_degraded() -> None:
    async def run() -> None:
        system, _ = await started()
        conn = await connect(system.url, "c0", "1.6")
        try:
            await conn.cp.plug_in("v0", 20.0)
            await until(lambda: bool(conn.cp.defaults()))
            conn.cp.answer = "error"
            system.publish([setpoint("c0", 3.0, 1)])
            await until(lambda: system.counters["call_errors"] == 1)
            assert "c0" not in system.degraded
            conn.cp.answer = "silent"
            system.publish([setpoint("c0", 4.0, 2)])
            await until(lambda: system.counters["timeouts"] == 1)
            assert system.degraded == {"c0"}
        finally:
            await conn.close()
            await system.stop()

    asyncio.run(run())


def test_reconnect_resends_the_current_profile() -> None:
    async def run() -> None:
        system, handler = await started()
        conn = await connect(system.url, "c0", "2.0.1")
        try:
            await conn.cp.plug_in("v0", 20.0)
            system.publish([setpoint("c0", 6.0, 1)])
            await until(lambda: bool(conn.cp.tx_profiles()))
            await conn.close()
            await until(lambda: system.connected() == [])
            assert not handler.status[-1].online
            conn = await connect(system.url, "c0", "2.0.1")  # same transaction goes on
            await until(lambda: bool(conn.cp.tx_profiles()))
            period = conn.cp.tx_profiles()[-1]["charging_schedule"][0]["charging_schedule_period"]
            assert period[0]["limit"] == pytest.approx(6000.0)
            assert handler.status[-1].online
        finally:
            await conn.close()
            await system.stop()

    asyncio.run(run())


def test_unknown_charge_point_and_missing_subprotocol_are_refused() -> None:
    async def run() -> None:
        system, _ = await started()
        try:
            with pytest.raises(InvalidStatus) as exc:
                await connect(system.url, "nope", "1.6")
            assert exc.value.response.status_code == 404
            with pytest.raises(InvalidStatus) as exc:  # no OCPP subprotocol offered
                await websockets.connect(system.url + "c0")
            assert exc.value.response.status_code == 400
            assert system.connected() == []
        finally:
            await system.stop()

    asyncio.run(run())


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_security_profile_1_rejects_a_wrong_password_before_the_upgrade() -> None:
    async def run() -> None:
        config = OcppChargerSettings("c0", password="s3cret-s3cret")
        system, _ = await started(chargers={"c0": config}, security_profile=1)
        try:
            with pytest.raises(InvalidStatus) as exc:
                await connect(system.url, "c0", "1.6", additional_headers=_basic("c0", "wrong"))
            assert exc.value.response.status_code == 401
            with pytest.raises(InvalidStatus):
                await connect(system.url, "c0", "1.6")
            conn = await connect(
                system.url, "c0", "1.6", additional_headers=_basic("c0", "s3cret-s3cret")
            )
            await conn.cp.plug_in("v0", 20.0)
            assert system.connected() == ["c0"]
            await conn.close()
        finally:
            await system.stop()

    asyncio.run(run())


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize("offset", [0.0, 500.0])
def test_after_reconnect_the_resent_profile_is_checked_with_get_composite_schedule(
    version: str, offset: float
) -> None:
    async def run() -> None:
        system, _ = await started(chargers={"c0": OcppChargerSettings("c0", safe_limit_kw=3.7)})
        conn = await connect(system.url, "c0", version)
        try:
            await conn.cp.plug_in("v0", 20.0)
            system.publish([setpoint("c0", 6.0, 1)])
            await until(lambda: bool(conn.cp.tx_profiles()))
            assert conn.cp.composite_asked == 0  # first connection: no check
            await conn.close()
            await until(lambda: system.connected() == [])
            conn = await connect(system.url, "c0", version)
            conn.cp.composite_offset = offset  # 0: honest; 500 W: not what we sent
            await until(lambda: system.counters["composite_checks"] == 1)
            assert conn.cp.limit_now() == pytest.approx(6000.0)
            assert system.counters["composite_mismatches"] == (1 if offset else 0)
            system.publish([setpoint("c0", 5.0, 2)])  # later profiles are not checked again
            await until(lambda: len(conn.cp.tx_profiles()) == 2)
            await asyncio.sleep(0.1)
            assert system.counters["composite_checks"] == 1
        finally:
            await conn.close()
            await system.stop()

    asyncio.run(run())
