"""OSCP 2.0 against a capacity provider over real HTTP on loopback (docs/oscp.md)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx

from aggregator.domain import FleetProblem, Plan
from tests.oscp.conftest import CP_TOKEN, FP_TOKEN, Running
from tests.oscp.peer import iso

GROUP = "depot-group"


IMPORT = f"limit/import/oscp/{GROUP}/"
EXPORT = f"limit/export/oscp/{GROUP}/"


def forecast(
    kw: float, hours: float = 4, kind: str = "CONSUMPTION", **block: object
) -> dict[str, object]:
    start = datetime.now(UTC) - timedelta(minutes=1)
    return {
        "group_id": GROUP,
        "type": kind,
        "forecasted_blocks": [
            {
                "capacity": kw,
                "phase": "ALL",
                "unit": "KW",
                "start_time": iso(start),
                "end_time": iso(start + timedelta(hours=hours)),
            }
            | block
        ],
    }


def oscp_events(r: Running) -> dict[str, tuple[str, float | None]]:
    return {
        x.event.event_id: (x.status, x.event.cap_kw)
        for x in r.service.repo.events()
        if x.event.event_id.startswith(("oscp/", "limit/"))
    }


def latest(r: Running) -> Plan | None:
    """The current plan (call it on the service loop, as ``Running.wait`` does)."""
    current = r.service.controller.current
    return None if current is None else current.plan


def current_plan(r: Running) -> Plan | None:
    return r.on_loop(lambda: latest(r))


def problem_now(r: Running) -> FleetProblem:
    return r.on_loop(lambda: r.service.controller.build_problem())


def within(plan: Plan | None, limit_kw: float, hours: float) -> bool:
    """The plan's depot import stays at or below ``limit_kw`` over its first ``hours``."""
    if plan is None:
        return False
    n = int(hours / plan.grid.step_hours)
    return max(plan.site_power_kw["depot"][:n]) <= limit_kw + 1e-6


def test_registration_handshake_and_heartbeat_both_ways(oscp_service: Running) -> None:
    r, cp = oscp_service, oscp_service.cp
    reg = cp.wait_for("register")
    assert reg["token"] == FP_TOKEN
    assert reg["version_url"][0]["version"] == "2.0"
    assert reg["version_url"][0]["base_url"].endswith("/oscp/fp/2.0")
    cp.wait_for("handshake", lambda m: m["required_behaviour"]["heartbeat_interval"] == 0.5)
    cp.wait_for("heartbeat")
    # Every message carried the token we were given.
    assert all(h["Authorization"] == f"Token {CP_TOKEN}" for _, _, h in cp.received)

    # A wrong token, or none, is refused before anything is read.
    assert (
        cp.call("heartbeat", {"offline_mode_at": iso(datetime.now(UTC))}, "nope").status_code == 401
    )
    assert cp.fp_url is not None
    bearer = httpx.post(
        f"{cp.fp_url}/heartbeat", json={}, headers={"Authorization": f"Bearer {FP_TOKEN}"}
    )
    assert bearer.status_code == 401

    # The capacity provider's own handshake: it wants a heartbeat every 0.2 s.
    resp = cp.call("handshake", {"required_behaviour": {"heartbeat_interval": 0.2}})
    assert resp.status_code == 204
    cp.wait_for("handshake_acknowledgment")
    assert r.service.oscp is not None
    assert r.on_loop(lambda: r.service.oscp.heartbeat_interval()) == 0.2  # type: ignore[union-attr]
    ok = cp.call("heartbeat", {"offline_mode_at": iso(datetime.now(UTC) + timedelta(minutes=1))})
    assert ok.status_code == 204

    # It registers anew with a fresh token for us to use: we register back with it.
    cp.tokens = {"cp-token-2"}
    before = len(cp.messages("register"))
    resp = cp.call(
        "register",
        {"token": "cp-token-2", "version_url": [{"version": "2.0", "base_url": cp.url}]},
    )
    assert resp.status_code == 204
    cp.wait_for("handshake", lambda _: len(cp.messages("register")) > before)
    n = len(cp.messages("heartbeat"))
    cp.wait_for("heartbeat", lambda _: len(cp.messages("heartbeat")) > n + 2)
    assert cp.received[-1][2]["Authorization"] == "Token cp-token-2"


def test_capacity_forecast_becomes_plan_limits(oscp_service: Running) -> None:
    r, cp = oscp_service, oscp_service.cp
    cp.wait_for("handshake")
    # v0 (no departure constraint: 8 h stay, target 0.8) needs 24 kWh; alone at 10 kW.
    r.plug("c0", "v0", 0.2)
    r.wait(
        lambda: (
            r.service.controller.current is not None
            and bool(r.service.controller.current.plan.schedules)
        )
    )

    # 8 kW for the group (base load 2 kW included): 6 kW left for v0, still enough.
    assert cp.call("update_group_capacity_forecast", forecast(8.0)).status_code == 204
    assert oscp_events(r) == {f"{IMPORT}0": ("active", 8.0)}
    # A per-slot import limit of the site, not a grid event.
    depot = problem_now(r).site_by_id["depot"]
    assert depot.import_limit_kw_slots[:12] == (8.0,) * 12
    assert not problem_now(r).events

    r.wait(lambda: within(latest(r), 8.0, 3.5))
    plan = current_plan(r)
    assert plan is not None and not plan.events
    assert plan.total_shortfall_kwh < 1e-6
    assert plan.cost.site_limit_penalty < 1e-6
    assert not cp.messages("adjust_group_capacity_forecast")

    # A new forecast replaces the old one: two blocks in amperes (16 A x 230 V x 3 = 11.04 kW).
    start = datetime.now(UTC)
    blocks = [
        {"capacity": 16, "phase": "ALL", "unit": "A", "start_time": iso(start),
         "end_time": iso(start + timedelta(hours=1))},
        {"capacity": 9, "phase": "ALL", "unit": "KW", "start_time": iso(start + timedelta(hours=1)),
         "end_time": iso(start + timedelta(hours=3))},
    ]  # fmt: skip
    body = {"group_id": GROUP, "type": "CONSUMPTION", "forecasted_blocks": blocks}
    assert cp.call("update_group_capacity_forecast", body).status_code == 204
    events = oscp_events(r)
    assert events[f"{IMPORT}0"][0] == "active"
    assert abs(events[f"{IMPORT}0"][1] - 11.04) < 1e-9  # type: ignore[operator]
    assert events[f"{IMPORT}1"] == ("active", 9.0)
    limits = problem_now(r).site_by_id["depot"].import_limit_kw_slots
    assert abs(limits[0] - 11.04) < 1e-9 and limits[5] == 9.0

    # Fewer blocks than before: the extra one is cancelled.
    assert cp.call("update_group_capacity_forecast", forecast(8.0)).status_code == 204
    assert oscp_events(r) == {
        f"{IMPORT}0": ("active", 8.0),
        f"{IMPORT}1": ("cancelled", 9.0),
    }


def test_adjust_requested_when_the_fleet_needs_more(oscp_service: Running) -> None:
    r, cp = oscp_service, oscp_service.cp
    cp.wait_for("handshake")
    r.plug("c0", "v0", 0.2)
    r.plug("c1", "v1", 0.2)
    # Without departure constraints both stay 8 h and want 0.8: 48 kWh. 4 kW for the group
    # for 10 h, 2 kW of it base load, leaves 16 kWh: the plan needs more.
    assert cp.call("update_group_capacity_forecast", forecast(4.0, hours=10)).status_code == 204
    # The capacity is hard: the plan stays within it and the vehicles leave short.
    r.wait(lambda: within(latest(r), 4.0, 4.0))
    plan = current_plan(r)
    assert plan is not None and plan.total_shortfall_kwh > 1.0
    assert plan.cost.site_limit_penalty < 1e-6
    assert all(
        o.reason == "limited by site depot import limit"
        for o in plan.outcomes
        if o.shortfall_kwh > 0
    )
    adjust = cp.wait_for("adjust_group_capacity_forecast")
    assert adjust["group_id"] == GROUP and adjust["type"] == "CONSUMPTION"
    asked = adjust["forecasted_blocks"]
    assert asked and all(b["unit"] == "KW" and b["phase"] == "ALL" for b in asked)
    assert all(b["capacity"] > 4.0 for b in asked)
    # The forecast plus the shortfall spread over the slots where the forecast binds.
    assert max(b["capacity"] for b in asked) <= 4.0 + 48.0 / 2.0 + 0.1


def test_generation_forecast_becomes_an_export_limit(oscp_service: Running) -> None:
    r, cp = oscp_service, oscp_service.cp
    cp.wait_for("handshake")
    # The depot may export 20 kW at its connection; the DSO allows 3 kW for the next 2 h.
    fleet = r.service.repo.load_fleet()
    sites = tuple(replace(s, export_limit_kw=20.0) for s in fleet.sites)
    r.service.repo.save_fleet(replace(fleet, sites=sites))
    r.on_loop(r.service.controller.reload_fleet)
    body = forecast(3.0, hours=2, kind="GENERATION")
    assert cp.call("update_group_capacity_forecast", body).status_code == 204
    assert oscp_events(r) == {f"{EXPORT}0": ("active", 3.0)}
    depot = problem_now(r).site_by_id["depot"]
    n = 2 * 4  # 15-minute slots; the block began a minute ago
    assert depot.export_limit_kw_slots[:n] == (3.0,) * n
    assert depot.export_limit_kw_slots[n + 1 :] == (20.0,) * (
        len(depot.export_limit_kw_slots) - n - 1
    )
    assert depot.import_limit_kw_slots == ()
    # An import forecast later leaves the export limit as it is.
    assert cp.call("update_group_capacity_forecast", forecast(8.0)).status_code == 204
    assert oscp_events(r) == {f"{EXPORT}0": ("active", 3.0), f"{IMPORT}0": ("active", 8.0)}


def test_measurements_from_stored_telemetry(oscp_service: Running) -> None:
    r, cp = oscp_service, oscp_service.cp
    cp.wait_for("handshake")
    now = datetime.now(UTC)
    from aggregator.domain import Telemetry

    readings = [
        Telemetry("depot", "c2", now - timedelta(seconds=1), 7.2, True, "v2", 0.3),
        Telemetry("depot", "c2", now + timedelta(seconds=1), 7.2, True, "v2", 0.3),
    ]
    for t in readings:
        r.on_loop(lambda t=t: r.service.runtime.on_telemetry("t", t))  # type: ignore[misc]

    def has_import(m: dict[str, object]) -> bool:
        rows = m["measurements"]
        assert isinstance(rows, list)
        return any(x["direction"] == "IMPORT" and x["value"] > 0 for x in rows)

    msg = cp.wait_for("update_group_measurements", has_import)
    assert msg["group_id"] == GROUP
    (imported,) = [x for x in msg["measurements"] if x["direction"] == "IMPORT"]  # type: ignore[union-attr]
    assert imported["unit"] == "KWH" and imported["phase"] == "ALL"
    # Never more than 7.2 kW over the window the message covers.
    t0 = datetime.fromisoformat(imported["initial_measure_time"])
    t1 = datetime.fromisoformat(imported["last_measured_time"])
    assert imported["value"] <= 7.2 * (t1 - t0).total_seconds() / 3600 + 1e-6


BAD = [
    ("{not json", "(body)", "not JSON"),
    ('{"group_id": "depot-group", "type": "CONSUMPTION"}', "forecasted_blocks", "required"),
    ('{"group_id": "depot-group", "type": "LOTS", "forecasted_blocks": []}', "type", "Input"),
]


def test_bad_input_is_refused_and_changes_nothing(oscp_service: Running) -> None:
    r, cp = oscp_service, oscp_service.cp
    cp.wait_for("handshake")
    assert cp.call("update_group_capacity_forecast", forecast(8.0)).status_code == 204
    before = oscp_events(r)
    for body, field, reason in BAD:
        resp = cp.call("update_group_capacity_forecast", body)
        assert resp.status_code == 400, body
        detail = resp.json()["detail"]
        assert any(d["field"] == field and reason in d["reason"] for d in detail), detail
    cases = {
        "forecasted_blocks.0.capacity": forecast(-1.0),
        "forecasted_blocks.0.unit": forecast(5.0, unit="MW"),
        "forecasted_blocks.0.end_time": forecast(5.0, end_time="tomorrow"),
        "forecasted_blocks.0.start_time": forecast(5.0, start_time="2024-05-14T10:00:00"),
        "forecasted_blocks.0": forecast(5.0, end_time="2000-01-01T00:00:00Z"),
        "forecasted_blocks.0.colour": forecast(5.0, colour="red"),
        "group_id": forecast(5.0) | {"group_id": "elsewhere"},
    }
    for field, body in cases.items():
        resp = cp.call("update_group_capacity_forecast", body)
        assert resp.status_code == 400, (field, resp.text)
        fields = [d["field"] for d in resp.json()["detail"]]
        assert field in fields, (field, resp.json())
    bad_hb = cp.call("heartbeat", {"offline_mode_at": "soon"})
    assert bad_hb.status_code == 400
    assert bad_hb.json()["detail"][0]["field"] == "offline_mode_at"
    reg = cp.call("register", {"token": "x", "version_url": [{"version": "1.0", "base_url": "u"}]})
    assert reg.status_code == 400 and reg.json()["detail"][0]["field"] == "version_url"
    wrong = cp.call("update_group_capacity_forecast", forecast(1.0), token="wrong")
    assert wrong.status_code == 401
    assert oscp_events(r) == before
