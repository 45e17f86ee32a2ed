"""``aggregator demo``: the scenario's events reach the fleet over OpenADR from the demo VTN."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from openleadr.messaging import create_message, parse_message
from rich.console import Console

from aggregator.demo import replay_days, run_demo, shifted
from aggregator.demo_vtn import demo_mapping, oadr_event
from aggregator.domain import GridEvent
from aggregator.scenario import load_scenario
from aggregator.settings import PlanningConfig
from connectors.openadr.mapping import OpenAdrMapping
from connectors.openadr.translate import event_from_oadr
from connectors.sql import open_repository
from connectors.sql.dr_events import SqlDrEventStore

# In the past, so the demo must replay it on a later day for openleadr to take its events.
START = datetime(2025, 1, 6, 8, tzinfo=UTC)
CAP_KW = 12.0
# One 20 kW site with 2 kW base load; three vehicles, 8 kWh each. Energy is cheap from 09:00
# to 10:00, so without the cap the plan fills the site limit there; with it, it must not.
SCENARIO = """
start: 2025-01-06T08:00:00Z
step_minutes: 15
horizon_hours: 4
prices: {import: [100, 100, 100, 100, 10, 10, 10, 10, 200, 200, 200, 200, 200, 200, 200, 200]}
sites:
  - {id: depot, import_limit_kw: 20, base_load_kw: 2}
chargers:
  - {id: c0, site: depot, max_charge_kw: 10}
  - {id: c1, site: depot, max_charge_kw: 10}
  - {id: c2, site: depot, max_charge_kw: 10}
vehicles:
  - {id: v0, battery_kwh: 40, max_charge_kw: 10}
  - {id: v1, battery_kwh: 40, max_charge_kw: 10}
  - {id: v2, battery_kwh: 40, max_charge_kw: 10}
sessions:
  - {id: s0, vehicle: v0, charger: c0, arrival: 2025-01-06T08:00:00Z,
     departure: 2025-01-06T10:30:00Z, arrival_soc: 0.2, target_soc: 0.4}
  - {id: s1, vehicle: v1, charger: c1, arrival: 2025-01-06T08:10:00Z,
     departure: 2025-01-06T10:50:00Z, arrival_soc: 0.2, target_soc: 0.4}
  - {id: s2, vehicle: v2, charger: c2, arrival: 2025-01-06T08:30:00Z,
     departure: 2025-01-06T11:10:00Z, arrival_soc: 0.2, target_soc: 0.4}
events:
  - {id: cap-ok, start: 2025-01-06T09:00:00Z, end: 2025-01-06T10:00:00Z, sites: [depot],
     cap_kw: 12}
  # Infeasible: the base load alone is above 0 kW.
  - {id: cap-zero, start: 2025-01-06T10:15:00Z, end: 2025-01-06T10:30:00Z, cap_kw: 0}
"""


def write_scenario(path: Path) -> Path:
    path.write_text(SCENARIO)
    return path


def test_events_arrive_over_openadr_are_decided_stored_and_change_the_plan(
    tmp_path: Path,
) -> None:
    scenario = write_scenario(tmp_path / "depot.yaml")
    db = tmp_path / "demo.db"
    planning = PlanningConfig(
        dispatch_seconds=60, setpoint_lifetime_seconds=1800, replan_minutes=15, time_limit_s=10
    )
    result = asyncio.run(
        asyncio.wait_for(
            run_demo(
                scenario,
                speed=900.0,
                hours=3.25,
                db=db,
                console=Console(quiet=True),
                live=False,
                planning=planning,
                notice=timedelta(minutes=30),
            ),
            timeout=60,
        )
    )
    # Replayed whole days later, at the same time of day, not behind the wall clock.
    assert result.start is not None
    assert result.replayed_days > 0
    assert result.start == START + timedelta(days=result.replayed_days)
    assert result.start >= datetime.now(UTC) - timedelta(days=1)
    day = timedelta(days=result.replayed_days)
    # Each event was sent by the VTN 30 simulated minutes ahead (one poll period of slack).
    sent = result.events_sent_at
    assert set(sent) == {"cap-ok", "cap-zero"}
    assert START + day + timedelta(minutes=30) <= sent["cap-ok"]
    assert sent["cap-ok"] < START + day + timedelta(minutes=45)
    # The VEN decided each one, with a reason, and the VTN got the answer over OpenADR.
    decided = {event_id: (opt, reason) for event_id, opt, reason in result.events}
    assert decided["cap-ok"][0] == "optIn"
    assert decided["cap-zero"][0] == "optOut"
    assert decided["cap-ok"][1] == "the fleet can meet every interval with no departure shortfall"
    assert decided["cap-zero"][1].startswith("cap-zero/0: ")  # names the interval, then why
    assert result.vtn_answers == {"cap-ok": "optIn", "cap-zero": "optOut"}
    # The plan met the cap once the event arrived, and it did not before.
    effect = result.event_effects["cap-ok"]
    assert effect.after_kw is not None and effect.after_kw <= CAP_KW + 1e-6
    assert effect.before_kw is not None and effect.before_kw > CAP_KW + 1.0
    # The demo's outcomes hold with the event in force.
    assert result.sessions == 3 and result.reached == 3
    assert result.peak_over_limit_kw["depot"] <= 1e-6
    # Stored: the VEN's records, and grid limits only for the event opted in, under the
    # translated ids (the scenario's events were never seeded into the store directly).
    repo = open_repository(f"sqlite:///{db}")
    try:
        records = {r.event.event_id: r for r in SqlDrEventStore(repo).all()}
        limits = {r.event.event_id: r for r in repo.events()}
    finally:
        repo.dispose()
    # (active, or completed once the run has passed its end)
    assert records["cap-ok"].opt == "optIn" and records["cap-ok"].state in ("active", "completed")
    assert records["cap-zero"].opt == "optOut" and records["cap-zero"].state == "opted_out"
    assert set(limits) == {"cap-ok/0"}
    assert limits["cap-ok/0"].event.cap_kw == CAP_KW
    assert limits["cap-ok/0"].event.start == START + day + timedelta(hours=1)


def test_the_demo_vtn_event_translates_back_to_the_scenario_event() -> None:
    t0 = datetime(2030, 5, 14, 17, tzinfo=UTC)
    mapping = OpenAdrMapping.from_config(demo_mapping(["north", "south"]))
    for event in (
        GridEvent("cap", t0, t0 + timedelta(hours=2), frozenset({"north"}), cap_kw=5.0),
        GridEvent("shed", t0, t0 + timedelta(hours=1), shed_kw=20.0),
    ):
        raw = oadr_event(event, "ven-1")
        xml = create_message("oadrDistributeEvent", request_id="r", vtn_id="VTN", events=[raw])
        _, payload = parse_message(xml)
        (parsed,) = payload["events"]
        translated = event_from_oadr(parsed, mapping)
        assert translated.unsupported == ()
        (limit,) = translated.limits
        assert limit == GridEvent(
            f"{event.event_id}/0",
            event.start,
            event.end,
            event.site_ids,
            cap_kw=event.cap_kw,
            shed_kw=event.shed_kw,
        )


def test_replay_moves_whole_days_to_the_first_start_not_behind_the_wall_clock(
    tmp_path: Path,
) -> None:
    now = datetime(2026, 11, 21, 8, 30, tzinfo=UTC)
    assert replay_days(datetime(2026, 11, 21, 12, tzinfo=UTC), now) == 0
    assert replay_days(datetime(2026, 11, 20, 12, tzinfo=UTC), now) == 1
    assert replay_days(datetime(2026, 11, 20, 8, 30, tzinfo=UTC), now) == 1
    assert replay_days(datetime(2026, 11, 20, 8, 0, tzinfo=UTC), now) == 2
    problem = load_scenario(write_scenario(tmp_path / "depot.yaml"))
    three = timedelta(days=3)
    moved = shifted(problem, three)
    assert moved.grid == replace(problem.grid, start=START + three)
    for s, t in zip(moved.sessions, problem.sessions, strict=True):
        assert (s.arrival - t.arrival, s.departure - t.departure) == (three, three)
    for e, f in zip(moved.events, problem.events, strict=True):
        assert (e.start - f.start, e.end - f.end, e.cap_kw) == (three, three, f.cap_kw)
    assert moved.prices == problem.prices
    assert moved.sites == problem.sites
