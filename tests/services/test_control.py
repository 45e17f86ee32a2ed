"""The control loop's use case against the real SQLite store and the real planner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.app import FlatForecasts, fleet_of
from aggregator.domain import (
    DepartureConstraint,
    EventRecord,
    GridEvent,
    SiteStatus,
    Telemetry,
)
from aggregator.services.control import ControlSettings, FleetController
from connectors.sql import open_repository
from models.planner import PyomoPlanner
from tests.fleet_builders import ev, make_problem

T0 = datetime(2025, 1, 6, 8, tzinfo=UTC)


@dataclass
class ManualClock:
    t: datetime = T0

    def now(self) -> datetime:
        return self.t


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    # Three chargers on one 15 kW site; vehicles v0..v2 (10 kW, 60 kWh).
    problem = make_problem([ev(0, 8), ev(0, 8), ev(0, 8)], site_limit_kw=15.0)
    repo = open_repository(f"sqlite:///{tmp_path / 'agg.db'}")
    repo.save_fleet(fleet_of(problem))
    clock = ManualClock()
    settings = ControlSettings(step=timedelta(minutes=15), horizon=timedelta(hours=8))
    ctl = FleetController(repo, FlatForecasts(50.0), clock, settings)
    yield ctl, repo, clock, settings
    repo.dispose()


def reading(
    charger: str,
    *,
    plugged: bool = True,
    soc: float | None = 0.2,
    vehicle: str | None = None,
    at: datetime = T0,
    site: str = "site-0",
) -> Telemetry:
    vid = vehicle if vehicle is not None else "v" + charger[1:]
    return Telemetry(
        site, charger, at, 0.0, plugged, vid if plugged else None, soc if plugged else None, "ok"
    )


def test_arrival_opens_a_stored_session_with_the_vehicles_constraint(world) -> None:  # type: ignore[no-untyped-def]
    ctl, repo, _, _ = world
    repo.save_constraint(DepartureConstraint("v0", T0 + timedelta(hours=4), target_soc=0.7))
    result = ctl.ingest("t", reading("c0"))
    assert result.accepted and result.replan_reason == "arrival at c0"
    (session,) = repo.open_sessions()
    assert (session.vehicle_id, session.departure, session.target_soc) == (
        "v0",
        T0 + timedelta(hours=4),
        0.7,
    )


def test_arrival_without_a_constraint_uses_the_defaults(world) -> None:  # type: ignore[no-untyped-def]
    ctl, repo, _, settings = world
    ctl.ingest("t", reading("c1", soc=0.3))
    (session,) = repo.open_sessions()
    assert session.departure == T0 + settings.default_stay
    assert session.target_soc == settings.default_target_soc


def test_unplug_closes_the_session_and_asks_for_a_replan(world) -> None:  # type: ignore[no-untyped-def]
    ctl, repo, clock, _ = world
    ctl.ingest("t", reading("c0"))
    clock.t = T0 + timedelta(minutes=30)
    result = ctl.ingest("t", reading("c0", plugged=False, at=clock.t))
    assert result.replan_reason == "departure from c0"
    assert repo.open_sessions() == []


@pytest.mark.parametrize(
    ("telemetry", "reason"),
    [
        (reading("c9"), "unknown charger 'c9'"),
        (reading("c0", site="other"), "belongs to site 'site-0'"),
        (reading("c0", at=T0 + timedelta(hours=2)), "in the future"),
    ],
)
def test_bad_telemetry_is_counted_and_changes_nothing(world, telemetry, reason) -> None:  # type: ignore[no-untyped-def]
    ctl, repo, _, _ = world
    result = ctl.ingest("sites/x/telemetry", telemetry)
    assert not result.accepted and reason in (result.reason or "")
    assert ctl.counters["telemetry_rejected"] == 1
    assert repo.open_sessions() == [] and ctl.take_telemetry() == []


def test_late_reading_is_stored_but_never_rewinds_state(world) -> None:  # type: ignore[no-untyped-def]
    ctl, repo, clock, _ = world
    clock.t = T0 + timedelta(minutes=10)
    ctl.ingest("t", reading("c0", at=clock.t, soc=0.5))
    ctl.ingest("t", reading("c0", plugged=False, at=T0))  # older than what we know
    assert len(repo.open_sessions()) == 1
    assert len(ctl.take_telemetry()) == 2


def test_problem_starts_now_with_measured_soc_and_active_events(world) -> None:  # type: ignore[no-untyped-def]
    ctl, repo, clock, _ = world
    repo.save_constraint(DepartureConstraint("v0", T0 + timedelta(hours=3), target_soc=0.8))
    ctl.ingest("t", reading("c0", soc=0.2))
    clock.t = T0 + timedelta(minutes=20)
    ctl.ingest("t", reading("c0", soc=0.35, at=clock.t))
    event = GridEvent("cap", T0 + timedelta(hours=1), T0 + timedelta(hours=2), cap_kw=5.0)
    repo.save_event(EventRecord(event, 1, "active", T0))
    gone = GridEvent("old", T0 + timedelta(hours=1), T0 + timedelta(hours=2), cap_kw=1.0)
    repo.save_event(EventRecord(gone, 2, "cancelled", T0))
    problem = ctl.build_problem()
    assert problem.grid.start == clock.t
    (session,) = problem.sessions
    assert session.arrival == clock.t and session.arrival_soc == pytest.approx(0.35)
    # Planned to finish one dispatch period before the vehicle leaves.
    assert session.departure == T0 + timedelta(hours=3) - timedelta(seconds=60)
    assert [e.event_id for e in problem.events] == ["cap"]


def test_sessions_at_an_offline_site_are_not_planned(world) -> None:  # type: ignore[no-untyped-def]
    ctl, _, _, _ = world
    ctl.ingest("t", reading("c0"))
    assert ctl.site_status(SiteStatus("site-0", False, T0)) == "site site-0 offline"
    assert ctl.build_problem().sessions == ()
    assert ctl.dispatch() == []  # no plan yet, and no setpoints to an offline site anyway


def test_dispatch_sends_the_current_slot_of_the_plan_to_every_charger(world) -> None:  # type: ignore[no-untyped-def]
    ctl, repo, _, settings = world
    ctl.ingest("t", reading("c0", soc=0.2))
    problem = ctl.build_problem()
    plan = PyomoPlanner().plan(problem)
    current = ctl.adopt(plan, T0, problem)
    setpoints = ctl.dispatch()
    assert {s.charger_id for s in setpoints} == {"c0", "c1", "c2"}
    by_charger = {s.charger_id: s for s in setpoints}
    planned = next(s for s in plan.schedules if s.charger_id == "c0").power_kw[0]
    assert by_charger["c0"].power_kw == pytest.approx(planned, abs=1e-4)
    assert by_charger["c1"].power_kw == 0.0
    assert all(s.plan_id == current.plan_id for s in setpoints)
    assert all(s.valid_until == T0 + settings.lifetime for s in setpoints)
    published: list = []

    class Sink:
        def publish(self, sps) -> None:  # type: ignore[no-untyped-def]
            assert len(repo.setpoints_since(T0)) == 3  # recorded before they go out
            published.extend(sps)

    ctl.deliver(setpoints, Sink())
    assert published == setpoints


def test_restart_keeps_sessions_and_numbering_and_waits_for_a_new_plan(world) -> None:  # type: ignore[no-untyped-def]
    ctl, repo, clock, settings = world
    ctl.ingest("t", reading("c0"))
    p1 = ctl.build_problem()
    ctl.adopt(PyomoPlanner().plan(p1), T0, p1)
    first = ctl.dispatch()
    ctl.deliver(first, None)
    again = FleetController(repo, FlatForecasts(50.0), clock, settings)
    assert [s.session.session_id for s in again.sessions()] == [
        s.session.session_id for s in ctl.sessions()
    ]
    assert again.dispatch() == []  # the stored plan is not trusted after a restart
    p2 = again.build_problem()
    again.adopt(PyomoPlanner().plan(p2), T0, p2)
    second = again.dispatch()
    assert min(s.seq for s in second) > max(s.seq for s in first)
    assert {s.plan_id for s in second}.isdisjoint({s.plan_id for s in first})
    record, _ = repo.latest_plan()  # type: ignore[misc]
    assert not record.superseded and len([p for p in repo.plans() if p.superseded]) == 1


def test_a_changed_constraint_reaches_the_next_problem(world) -> None:  # type: ignore[no-untyped-def]
    ctl, repo, _, _ = world
    ctl.ingest("t", reading("c0"))
    repo.save_constraint(DepartureConstraint("v0", T0 + timedelta(hours=2), target_soc=0.6))
    (session,) = ctl.build_problem().sessions
    assert session.target_soc == pytest.approx(0.6 + ctl.settings.target_margin_soc)
    assert session.departure == T0 + timedelta(hours=2) - timedelta(seconds=60)


def test_telemetry_the_store_could_not_take_is_kept_within_bounds(world) -> None:  # type: ignore[no-untyped-def]
    ctl, _, clock, _ = world
    small = FleetController(
        ctl.repo, ctl.forecasts, clock, ControlSettings(max_pending_telemetry=3)
    )
    for minute in range(2):
        small.ingest("t", reading("c0", at=T0 + timedelta(minutes=minute)))
    batch = small.take_telemetry()
    small.ingest("t", reading("c0", at=T0 + timedelta(minutes=2)))
    small.ingest("t", reading("c0", at=T0 + timedelta(minutes=3)))
    small.return_telemetry(batch)  # the store refused the first batch
    kept = small.take_telemetry()
    assert [t.ts.minute for t in kept] == [1, 2, 3]  # oldest dropped past the bound of 3
    assert small.counters["telemetry_dropped"] == 1


def test_a_vehicle_leaving_mid_slot_is_sent_its_power_while_plugged_in(world) -> None:  # type: ignore[no-untyped-def]
    ctl, repo, _, _ = world
    # Leaves 5 minutes into the first 15-minute slot (plan ends one dispatch period early).
    repo.save_constraint(DepartureConstraint("v0", T0 + timedelta(minutes=6), target_soc=1.0))
    ctl.ingest("t", reading("c0", soc=0.2))
    problem = ctl.build_problem()
    plan = PyomoPlanner().plan(problem)
    ctl.adopt(plan, T0, problem)
    average = plan.schedules[0].power_kw[0]
    assert average == pytest.approx(10.0 / 3.0, rel=1e-6)  # 10 kW for a third of the slot
    (sp,) = [s for s in ctl.dispatch() if s.charger_id == "c0"]
    assert sp.power_kw == pytest.approx(10.0, abs=1e-3)


def test_dispatch_sends_reductions_before_increases(world) -> None:  # type: ignore[no-untyped-def]
    ctl, _, _, _ = world
    ctl.ingest("t", reading("c0", soc=0.2))
    problem = ctl.build_problem()
    ctl.adopt(PyomoPlanner().plan(problem), T0, problem)
    first = {s.charger_id: s.power_kw for s in ctl.dispatch()}
    assert first["c0"] > 0
    ctl.ingest("t", reading("c0", plugged=False))  # c0 drops to 0, c1 arrives and goes up
    ctl.ingest("t", reading("c1", soc=0.2))
    problem = ctl.build_problem()
    ctl.adopt(PyomoPlanner().plan(problem), T0, problem)
    order = [s.charger_id for s in ctl.dispatch() if s.charger_id in ("c0", "c1")]
    assert order == ["c0", "c1"]
    seqs = [s.seq for s in ctl.dispatch()]
    assert seqs == sorted(seqs)  # numbered in the order they go out


def test_a_setpoint_expires_when_its_session_is_planned_to_be_done(world) -> None:  # type: ignore[no-untyped-def]
    ctl, repo, _, settings = world
    # Leaves in 2 minutes: planned done 1 minute from now (one dispatch period early).
    repo.save_constraint(DepartureConstraint("v0", T0 + timedelta(minutes=2), target_soc=0.3))
    ctl.ingest("t", reading("c0", soc=0.2))
    problem = ctl.build_problem()
    ctl.adopt(PyomoPlanner().plan(problem), T0, problem)
    by_charger = {s.charger_id: s for s in ctl.dispatch()}
    assert by_charger["c0"].valid_until == T0 + timedelta(minutes=1)
    assert by_charger["c1"].valid_until == T0 + settings.lifetime


def test_past_its_planned_end_a_session_gets_zero_from_that_plan(world) -> None:  # type: ignore[no-untyped-def]
    ctl, repo, clock, _ = world
    repo.save_constraint(DepartureConstraint("v0", T0 + timedelta(minutes=10), target_soc=1.0))
    ctl.ingest("t", reading("c0", soc=0.2))
    problem = ctl.build_problem()
    ctl.adopt(PyomoPlanner().plan(problem), T0, problem)
    assert {s.charger_id: s.power_kw for s in ctl.dispatch()}["c0"] > 0
    clock.t = T0 + timedelta(minutes=9, seconds=30)  # planned done at 9:00, leaves at 10:00
    assert {s.charger_id: s.power_kw for s in ctl.dispatch()}["c0"] == 0.0
