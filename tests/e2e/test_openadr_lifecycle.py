"""Event lifecycle against openleadr's real VTN: modify, implicit and explicit cancel, opt-out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openleadr import utils

from aggregator.app import Service, start_service
from aggregator.demo import sync_constraints
from aggregator.domain import Telemetry
from aggregator.scenario import load_scenario
from aggregator.settings import MqttConfig, OpenAdrConfig, PlanningConfig, RuntimeSettings
from tests.e2e.scenarios import write_depot
from tests.openadr.vtn import PREFIX, Vtn, free_port

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


async def _until(predicate, timeout: float = 15) -> bool:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


def limits(service: Service) -> dict[str, tuple[str, float | None]]:
    return {r.event.event_id: (r.status, r.event.cap_kw) for r in service.repo.events()}


def add(vtn: Vtn, ven_id: str, level: float, minutes: float, in_s: float = 60) -> str:
    start = datetime.now(UTC) + timedelta(seconds=in_s)
    event_id: str = vtn.server.add_event(
        ven_id=ven_id,
        signal_name="SIMPLE",
        signal_type="level",
        intervals=[
            {"dtstart": start, "duration": timedelta(minutes=minutes), "signal_payload": level}
        ],
        callback=vtn.on_opt,
    )
    return event_id


def test_modification_implicit_and_explicit_cancel_and_infeasible_opt_out(tmp_path: Path) -> None:
    async def scenario() -> None:
        vtn = Vtn(free_port())
        await vtn.start()
        now = datetime.now(UTC)
        problem = load_scenario(write_depot(tmp_path / "depot.yaml", now))
        settings = RuntimeSettings(
            database_url=f"sqlite:///{tmp_path / 'life.db'}",
            mqtt=MqttConfig(embedded_port=free_port()),
            planning=PlanningConfig(dispatch_seconds=0.5, setpoint_lifetime_seconds=3.0),
            openadr=OpenAdrConfig(
                vtn_url=f"http://127.0.0.1:{vtn.port}{PREFIX}",
                ven_name="fleet-ven",
                poll_interval_s=0.3,
                disable_signature=True,
                mapping={
                    "programs": {
                        "*": {
                            "simple_levels": {
                                1: {"cap_kw": 15.0},
                                2: {"cap_kw": 3.0},
                                3: {"cap_kw": 0.0},
                            }
                        }
                    }
                },
            ),
        )
        service = await start_service(settings, scenario=problem)
        sync_constraints(service.repo, problem, now)
        # v0 plugs in at c0: 12 kWh to add within 2.5 h at 10 kW.
        service.runtime.on_telemetry(
            "t", Telemetry("depot", "c0", datetime.now(UTC), 0.0, True, "v0", 0.2)
        )
        try:
            ven = service.ven
            assert ven is not None and await _until(lambda: ven.registered)
            e1 = add(vtn, ven.ven_id, level=1, minutes=10)
            events = vtn.server.events[ven.ven_id]
            assert await _until(lambda: (e1, "optIn") in vtn.opts)
            assert await _until(lambda: limits(service).get(f"{e1}/0") == ("active", 15.0))

            # Modified by the VTN: level 2 now (a 3 kW cap), modification number + 1.
            event = utils.find_by(events, "event_descriptor.event_id", e1)
            utils.setmember(event.event_signals[0].intervals[0], "signal_payload", 2.0)
            utils.increment_event_modification_number(event)
            vtn.server.events_updated[ven.ven_id] = True
            assert await _until(lambda: limits(service).get(f"{e1}/0") == ("active", 3.0))

            # Implicit cancel: e1 disappears from the VTN's list when e2 is sent.
            events.remove(event)
            e2 = add(vtn, ven.ven_id, level=1, minutes=10)
            assert await _until(lambda: (e2, "optIn") in vtn.opts)
            assert await _until(lambda: limits(service).get(f"{e1}/0", ("",))[0] == "cancelled")
            assert limits(service)[f"{e2}/0"] == ("active", 15.0)

            # Explicit cancel.
            vtn.server.cancel_event(ven.ven_id, e2)
            assert await _until(lambda: limits(service).get(f"{e2}/0", ("",))[0] == "cancelled")

            # Infeasible: a 0 kW cap for 3 hours while v0 must take 12 kWh within 2.5 h.
            e3 = add(vtn, ven.ven_id, level=3, minutes=180, in_s=5)
            assert await _until(lambda: (e3, "optOut") in vtn.opts)
            assert f"{e3}/0" not in limits(service) or limits(service)[f"{e3}/0"][0] != "active"
            assert service.controller.counters["events_new"] >= 3
        finally:
            await service.stop()
            await vtn.stop()

    asyncio.run(scenario())
