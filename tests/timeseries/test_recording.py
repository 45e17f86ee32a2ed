"""The recorder: runtime facts as the points of docs/timeseries.md, off the caller's thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregator.domain import EventBaseline, Point, Setpoint, Telemetry, TimeGrid
from aggregator.services.recording import (
    SitePower,
    TimeSeriesRecorder,
    baseline_points,
    plan_points,
    setpoint_points,
    telemetry_points,
)
from models.planner import PyomoPlanner
from tests.fleet_builders import START, cap_event, ev, make_problem

T0 = datetime(2025, 1, 6, 8, tzinfo=UTC)


class ListStore:
    """A TimeSeriesStore keeping what it is given."""

    def __init__(self) -> None:
        self.points: list[Point] = []
        self.closed = False

    def write(self, points: Sequence[Point]) -> None:
        self.points.extend(points)

    def query(
        self,
        measurement: str,
        start: datetime,
        stop: datetime,
        tags: Mapping[str, str] | None = None,
    ) -> Any:
        raise NotImplementedError

    def flush(self, timeout_s: float = 10.0) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    @property
    def dropped(self) -> int:
        return 0

    def of(self, measurement: str) -> list[Point]:
        return [p for p in self.points if p.measurement == measurement]


def test_telemetry_and_setpoints_follow_the_contract() -> None:
    known, anonymous = telemetry_points(
        [
            Telemetry("depot", "c1", T0, 7, True, "v1", 0.5),
            Telemetry("depot", "c2", T0, 0.0, False),
        ]
    )
    assert known.tags == {"site_id": "depot", "charger_id": "c1", "vehicle_id": "v1"}
    assert known.fields == {"power_kw": 7.0, "plugged": 1, "soc": 0.5}
    assert isinstance(known.fields["power_kw"], float)  # never an int, even from an int
    assert anonymous.tags == {"site_id": "depot", "charger_id": "c2"}
    assert anonymous.fields == {"power_kw": 0.0, "plugged": 0}

    (sp,) = setpoint_points([Setpoint("c1", "depot", 11, T0, T0 + timedelta(minutes=3), "p1", 9)])
    assert (sp.measurement, sp.ts) == ("setpoint", T0)
    assert sp.tags == {"site_id": "depot", "charger_id": "c1"}
    assert sp.fields == {
        "power_kw": 11.0,
        "seq": 9,
        "valid_until": (T0 + timedelta(minutes=3)).timestamp(),
        "plan_id": "p1",
    }


def test_site_power_sums_each_chargers_latest_fresh_reading() -> None:
    sp = SitePower()
    t = [T0 + timedelta(minutes=m) for m in range(10)]
    first = sp.points(
        [
            Telemetry("depot", "c1", t[0], 5.0, True),
            Telemetry("depot", "c2", t[0], 3.0, True),
            Telemetry("depot", "c1", t[1], 6.0, True),
            Telemetry("yard", "c9", t[1], 1.0, True),
        ]
    )
    assert [(p.tags["site_id"], p.ts, p.fields["ev_power_kw"]) for p in first] == [
        ("depot", t[0], 8.0),
        ("depot", t[1], 9.0),  # c1 now 6, c2 still 3
        ("yard", t[1], 1.0),
    ]
    assert first[0].fields["power_kw"] == 8.0  # no plan yet: no base load known
    # A late reading changes nothing; c2's reading ages out after 5 minutes.
    late = Telemetry("depot", "c2", t[0] - timedelta(seconds=1), 99.0, True)
    later = sp.points([late, Telemetry("depot", "c1", t[7], 2.0, True)])
    assert [(p.ts, p.fields["ev_power_kw"], p.fields["chargers"]) for p in later] == [
        (t[7], 2.0, 1)
    ]


def test_site_power_adds_the_plans_base_load_and_the_limit() -> None:
    problem = make_problem([ev(0, 4)], n_slots=6, site_limit_kw=40.0)
    problem = replace(
        problem,
        sites=(
            replace(problem.sites[0], base_load_kw=(1, 2, 3, 4, 5, 6), pv_kw=(0, 0, 1, 0, 0, 0)),
        ),
    )
    sp = SitePower()
    sp.use_plan(problem)
    (p,) = sp.points([Telemetry("site-0", "c0", START + timedelta(hours=2, minutes=30), 7.0, True)])
    assert p.fields == {
        "ev_power_kw": 7.0,
        "power_kw": 7.0 + 3 - 1,
        "chargers": 1,
        "import_limit_kw": 40.0,
    }


def test_plan_and_baseline_points() -> None:
    problem = make_problem(
        [ev(0, 3, target_soc=0.9), ev(1, 4, target_soc=0.5)], n_slots=4, site_limit_kw=50.0
    )
    plan = PyomoPlanner().plan(problem)
    points = plan_points("p1", plan, problem.sites)
    assert len(points) == 4
    assert [p.ts for p in points] == list(problem.grid.slot_starts())
    assert all(p.tags == {"site_id": "site-0", "plan_id": "p1"} for p in points)
    per_slot = [0.0] * 4
    for s in plan.schedules:
        for i, kw in enumerate(s.power_kw):
            per_slot[s.first_slot + i] += kw
    assert [p.fields["ev_power_kw"] for p in points] == pytest.approx(per_slot)
    assert [p.fields["power_kw"] for p in points] == list(plan.site_power_kw["site-0"])
    assert {p.fields["import_limit_kw"] for p in points} == {50.0}

    grid = TimeGrid(T0, timedelta(minutes=15), 2)
    base = EventBaseline("dr-1", 2, T0, grid, {"b": (1.0, 2.0), "a": (3.0, 4.0)})
    assert [(p.tags["site_id"], p.ts, p.fields["power_kw"]) for p in baseline_points(base)] == [
        ("a", T0, 3.0),
        ("a", T0 + timedelta(minutes=15), 4.0),
        ("b", T0, 1.0),
        ("b", T0 + timedelta(minutes=15), 2.0),
    ]
    assert baseline_points(base)[0].fields["modification_number"] == 2


def test_a_plan_brings_prices_forecasts_and_each_event_once() -> None:
    problem = make_problem(
        [ev(0, 4)],
        n_slots=4,
        prices=[10.0, 20.0, 30.0, 40.0],
        events=[cap_event("dr-1", 1, 3, cap_kw=5.0)],
    )
    problem = replace(problem, sites=(replace(problem.sites[0], base_load_kw=(2, 2, 2, 2)),))
    plan = PyomoPlanner().plan(problem)
    store = ListStore()
    recorder = TimeSeriesRecorder(store)
    recorder.plan("p1", plan, problem, T0)
    recorder.plan("p2", plan, problem, T0)  # same event: not written again
    recorder.close()
    assert store.closed
    assert [p.fields["import_per_mwh"] for p in store.of("price")] == [10.0, 20.0, 30.0, 40.0] * 2
    forecasts = store.of("forecast")
    assert {(p.tags["kind"], p.tags["target"], p.tags["quantile"]) for p in forecasts} == {
        ("base_load_kw", "site-0", "p50")
    }
    (event,) = store.of("grid_event")
    assert event.tags == {"event_id": "dr-1", "site_id": "site-0"}
    assert event.ts == problem.events[0].start
    assert event.fields == {"cap_kw": 5.0, "end": problem.events[0].end.timestamp()}
    assert len(store.of("plan")) == 8


def test_the_recorder_never_makes_the_caller_wait_nor_raises() -> None:
    release = threading.Event()

    class Stuck(ListStore):
        def write(self, points: Sequence[Point]) -> None:
            release.wait(10)  # a broken adapter that blocks
            raise RuntimeError("and then fails")

    store = Stuck()
    recorder = TimeSeriesRecorder(store)
    readings = [Telemetry("depot", f"c{i}", T0, 1.0, True) for i in range(1000)]
    started = time.perf_counter()
    for _ in range(20):
        recorder.telemetry(readings)
        recorder.setpoints([Setpoint("c1", "depot", 1.0, T0, T0 + timedelta(minutes=1), "p", 1)])
    took = time.perf_counter() - started
    release.set()
    recorder.close()
    assert took < 0.1
    assert recorder.failures == 40
    recorder.telemetry(readings)  # after close: ignored, no error
