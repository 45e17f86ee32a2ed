"""The dashboard's snapshot (``GET /api/v1/dashboard``) and its page, over real HTTP against
the running service with the depot's three vehicles plugged in by the site simulator."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from aggregator.api.dashboard import event_states
from aggregator.domain import (
    DepartureConstraint,
    DrEvent,
    DrEventRecord,
    EventRecord,
    GridEvent,
    PriceSignal,
)
from aggregator.scenario import load_scenario
from aggregator.simulation.clock import ScaledClock
from aggregator.simulation.runner import SiteSimulator
from connectors.mqtt.settings import MqttSettings
from tests.api.conftest import Running
from tests.e2e.scenarios import SITE_LIMIT_KW, write_depot

# Departures (hours from now, target SoC) stored before the vehicles arrive at 20 %: v2
# cannot make it (30 kWh in 45 minutes at 10 kW); v0 and v1 can with room to spare under the
# 18 kW the site leaves (20 kW limit, 2 kW base load), even with a 10 kW cap in their way.
DEPARTURES = {"v0": (2.0, 0.5), "v1": (3.0, 0.6), "v2": (0.75, 0.95)}


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def snapshot(running: Running, token: str, **params: Any) -> dict[str, Any]:
    with running.client(token) as c:
        r = c.get("/api/v1/dashboard", params=params)
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture
def depot_live(running: Running, tmp_path: Path) -> Iterator[Running]:
    """The depot with v0..v2 plugged in (they arrived before now) and reporting every 0.5 s,
    each with a departure stored before; returns once the plan covers all three."""
    now = datetime.now(UTC)
    runtime = running.service.runtime
    for vehicle, (hours, soc) in DEPARTURES.items():
        when = now + timedelta(hours=hours)
        running.call(runtime.submit_constraint(DepartureConstraint(vehicle, when, target_soc=soc)))
    # The simulator's copy of the depot started 40 minutes ago: every session has arrived.
    problem = load_scenario(write_depot(tmp_path / "sim.yaml", now - timedelta(minutes=40)))
    sim = SiteSimulator(
        problem,
        MqttSettings(url=running.service.mqtt_url, client_id="sim", protocol="3.1.1"),
        ScaledClock(),
        telemetry_period_s=0.5,
    )
    running.call(sim.start())
    try:

        def planned() -> bool:
            vehicles = snapshot(running, running.operator)["vehicles"]
            return len(vehicles) == 3 and all(v["status"] != "not planned" for v in vehicles)

        wait_for("v0..v2 plugged in and planned", planned)
        yield running
    finally:
        running.call(sim.stop())


def test_the_operator_sees_sites_vehicles_setpoints_and_plan(depot_live: Running) -> None:
    snap = wait_for(
        "telemetry-based site power and a setpoint per charger",
        lambda: (
            s
            if (s := snapshot(depot_live, depot_live.operator))["sites"][0]["setpoint_age_s"]
            is not None
            and any(v is not None for v in s["sites"][0]["history_kw"])
            else None
        ),
    )
    assert snap["account"] == {"account_id": "root", "role": "operator"}
    assert snap["sections"] == ["plan", "sites", "vehicles", "events"]
    assert snap["plan"]["solver_path"] in ("lp", "heuristic")
    (site,) = snap["sites"]
    assert site["site_id"] == "depot" and site["online"] is True
    assert site["import_limit_kw"] == SITE_LIMIT_KW
    assert snap["sites_offline"] == []
    # History: buckets up to now, the last one at now; the plan ahead per 15-minute slot.
    assert len(site["history_t"]) == len(site["history_kw"]) == len(site["chargers_kw"])
    assert site["history_t"][-1] == snap["now"]
    assert site["plan_kw"] and len(site["plan_t"]) == len(site["plan_kw"])
    assert max(site["plan_kw"]) <= SITE_LIMIT_KW + 1e-6
    # The site power adds the scenario's 2 kW base load to what the chargers report.
    measured = [
        (total, evs)
        for total, evs in zip(site["history_kw"], site["chargers_kw"], strict=True)
        if evs is not None
    ]
    assert all(abs(total - evs - 2.0) < 1e-9 for total, evs in measured)
    assert [c["charger_id"] for c in site["chargers"]] == ["c0", "c1", "c2"]
    for charger in site["chargers"]:
        assert charger["plugged"] is True
        assert charger["setpoint_kw"] is not None and charger["setpoint_expired"] is False
        assert 0 <= charger["setpoint_age_s"] < snap["setpoint_lifetime_s"]
    vehicles = {v["vehicle_id"]: v for v in snap["vehicles"]}
    assert set(vehicles) == {"v0", "v1", "v2"}
    for vehicle, (_, target) in DEPARTURES.items():
        v = vehicles[vehicle]
        assert v["site_id"] == "depot" and v["target_soc"] == target
        assert 0.15 <= v["soc"] <= 1.0
        assert v["plan_t"] and len(v["plan_t"]) == len(v["plan_soc"])
    assert vehicles["v2"]["status"] == "shortfall" and vehicles["v2"]["shortfall_kwh"] > 1
    assert vehicles["v0"]["status"] == vehicles["v1"]["status"] == "on track"
    assert snap["counters"]["setpoints_sent"] > 0
    assert snap["events"] == []  # the depot has none; no VEN in this service


def test_a_fleet_manager_sees_only_its_vehicles_and_no_site_data(depot_live: Running) -> None:
    running = depot_live
    with running.client(running.operator) as c:
        for fleet in ("north", "south"):
            assert c.post("/api/v1/fleets", json={"fleet_id": fleet}).status_code == 201
        for vehicle, fleet in (("v0", "north"), ("v1", "south")):
            body = {"battery_kwh": 40, "max_charge_kw": 10, "fleet_id": fleet}
            assert c.put(f"/api/v1/vehicles/{vehicle}", json=body).status_code == 200
        tokens = {}
        for account_id, role, fleets in (
            ("north-mgr", "fleet_manager", ["north"]),
            ("trader", "trader", []),
        ):
            r = c.post(
                "/api/v1/accounts",
                json={"account_id": account_id, "name": "", "role": role, "fleet_ids": fleets},
            )
            assert r.status_code == 201, r.text
            tokens[role] = r.json()["token"]

    manager = snapshot(running, tokens["fleet_manager"])
    assert manager["account"] == {"account_id": "north-mgr", "role": "fleet_manager"}
    assert manager["sections"] == ["vehicles"]
    assert [v["vehicle_id"] for v in manager["vehicles"]] == ["v0"]
    assert manager["vehicles"][0]["fleet_id"] == "north"
    assert manager["sites"] == [] and manager["sites_offline"] == []
    assert manager["plan"] is None and manager["counters"] == {}
    assert manager["events"] == [] and manager["setpoint_lifetime_s"] is None
    text = str(manager)
    for other in ("v1", "v2", "south"):
        assert f"'{other}'" not in text

    trader = snapshot(running, tokens["trader"])
    assert trader["sections"] == ["plan", "sites", "events"]
    assert trader["vehicles"] == [] and [s["site_id"] for s in trader["sites"]] == ["depot"]

    operator = snapshot(running, running.operator)
    fleets = {v["vehicle_id"]: v["fleet_id"] for v in operator["vehicles"]}
    assert fleets == {"v0": "north", "v1": "south", "v2": None}


def test_the_snapshot_needs_a_valid_token_and_checks_its_parameters(running: Running) -> None:
    with running.client() as c:
        assert c.get("/api/v1/dashboard").status_code == 401
    with running.client("agg_not-a-key") as c:
        r = c.get("/api/v1/dashboard")
        assert r.status_code == 401 and r.json()["detail"] == "unknown or revoked token"
    with running.client(running.operator) as c:
        for params in ({"history_minutes": 0}, {"history_minutes": 1441}, {"ahead_hours": 49}):
            assert c.get("/api/v1/dashboard", params=params).status_code == 422
        snap = c.get("/api/v1/dashboard", params={"history_minutes": 10}).json()
        (site,) = snap["sites"]
        assert snap["history_minutes"] == 10
        assert len(site["history_t"]) <= 241
        assert "/api/v1/dashboard" in c.get("/openapi.json").json()["paths"]


def test_the_page_is_served_from_the_package_and_loads_nothing_from_elsewhere(
    running: Running,
) -> None:
    with running.client() as c:
        r = c.get("/", follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"] == "dashboard"
        page = c.get("/", follow_redirects=True)
        assert page.status_code == 200 and page.url.path == "/dashboard"
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert refs and all(not re.match(r"^[a-z]+://|^//", ref) for ref in refs), refs
        for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
            r = c.get(f"/dashboard/{name}")
            assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
            assert "http://" not in r.text.replace("http://www.w3.org/2000/svg", "")
            assert "https://" not in r.text
        assert c.get("/dashboard/index.html").status_code == 404
        assert c.get("/dashboard/..%2Fdashboard.py").status_code == 404


def local_event(event_id: str, start: datetime, hours: float, cap_kw: float) -> EventRecord:
    end = start + timedelta(hours=hours)
    return EventRecord(GridEvent(event_id, start, end, frozenset({"depot"}), cap_kw=cap_kw))


def test_active_and_upcoming_events_are_shown_to_operators_and_traders(running: Running) -> None:
    now = datetime.now(UTC)
    runtime = running.service.runtime
    for record in (
        local_event("running-cap", now - timedelta(minutes=10), 1, 15.0),
        local_event("evening-cap", now + timedelta(hours=2), 1, 10.0),
        local_event("over", now - timedelta(hours=2), 1, 10.0),
        replace(local_event("called-off", now + timedelta(hours=1), 1, 10.0), status="cancelled"),
    ):
        running.call(runtime.submit_event(record))
    with running.client(running.operator) as c:
        r = c.post(
            "/api/v1/accounts",
            json={"account_id": "t", "name": "", "role": "trader", "fleet_ids": []},
        )
        trader = r.json()["token"]
        assert c.post("/api/v1/fleets", json={"fleet_id": "north"}).status_code == 201
        r = c.post(
            "/api/v1/accounts",
            json={"account_id": "m", "name": "", "role": "fleet_manager", "fleet_ids": ["north"]},
        )
        manager = r.json()["token"]
    for token in (running.operator, trader):
        events = snapshot(running, token)["events"]
        assert [(e["event_id"], e["phase"], e["source"]) for e in events] == [
            ("running-cap", "active", "local"),
            ("evening-cap", "upcoming", "local"),
        ]
        assert events[1]["limits"][0]["cap_kw"] == 10.0 and events[1]["opt"] is None
    assert snapshot(running, manager)["events"] == []


def test_utility_events_carry_our_answer_and_hide_their_limits_from_the_local_list() -> None:
    """A VEN's event (opted in or out) is listed once, as a utility event; the limits it put
    in the planner's store are not listed again as local events."""
    now = datetime(2024, 5, 14, 12, tzinfo=UTC)
    hour = timedelta(hours=1)
    cap = GridEvent("ev-1/0", now + hour, now + 2 * hour, frozenset({"depot"}), cap_kw=8.0)
    opted_in = DrEventRecord(
        DrEvent("ev-1", 0, "far", now + hour, now + 2 * hour, frozenset({"depot"}), (cap,)),
        "optIn",
        "the fleet can still leave charged",
        "active",
        now,
    )
    price = PriceSignal(now - hour, now + hour, 300.0)
    opted_out = DrEventRecord(
        DrEvent("ev-2", 1, "active", now - hour, now + hour, frozenset(), prices=(price,)),
        "optOut",
        "policy never",
        "opted_out",
        now,
    )
    gone = DrEventRecord(
        DrEvent("ev-3", 0, "cancelled", now + hour, now + 2 * hour, frozenset()),
        "optIn",
        "",
        "cancelled",
        now,
    )

    class Store:
        def all(self) -> list[DrEventRecord]:
            return [opted_in, opted_out, gone]

        def events(self) -> list[EventRecord]:
            return [EventRecord(cap), local_event("depot-test", now + hour, 1, 5.0)]

    ctx = SimpleNamespace(events=Store(), repo=Store())
    out = asyncio.run(event_states(ctx, now))  # type: ignore[arg-type]
    assert [(e.event_id, e.source, e.phase, e.opt, e.state) for e in out] == [
        ("ev-2", "utility", "active", "optOut", "opted_out"),
        ("depot-test", "local", "upcoming", None, "active"),  # by start, then id
        ("ev-1", "utility", "upcoming", "optIn", "active"),
    ]
    assert out[0].prices[0].price_per_mwh == 300.0 and out[0].site_ids == []
    assert out[2].limits[0].cap_kw == 8.0 and out[2].reason.startswith("the fleet")
