"""plan_codec: a Plan survives JSON exactly, including the awkward parts."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.domain import (
    CostBreakdown,
    EventResult,
    Plan,
    SessionOutcome,
    SessionSchedule,
    TimeGrid,
)
from connectors.sql.plan_codec import plan_from_json, plan_to_json


def _through_json(plan: Plan) -> Plan:
    return plan_from_json(json.loads(json.dumps(plan_to_json(plan), allow_nan=False)))


def _hand_plan(**changes: object) -> Plan:
    plan = Plan(
        grid=TimeGrid(datetime(2025, 3, 30, 0, 45, tzinfo=UTC), timedelta(minutes=15), 4),
        schedules=(
            SessionSchedule("s0", "v0", "c0", "site-a", 1, (7.25, -3.5, 0.1), (0.3, 0.2, 0.21)),
        ),
        site_power_kw={"site-a": (1.0, 0.1 + 0.2, -4.0, 0.0), "site-b": (2.0, 2.0, 2.0, 2.0)},
        site_battery_kw={"site-a": (0.0, -1.5, 1.5, 0.0)},
        outcomes=(
            SessionOutcome("s0", "v0", 48.0, 12.5, 0.8, 0.0),
            SessionOutcome("s1", "v1", 30.0, 3.0, 0.4, 6.0, reason="arrives too late"),
        ),
        events=(
            EventResult("dr-1", (1, 2), (5.0, 5.0), (4.9, 5.1), (9.0, 9.5), 0.025),
            EventResult("dr-2", (3,), (-2.0,), (-2.0,), None, 0.0),
        ),
        cost=CostBreakdown(12.3456789, 1.0e-9, 0.0, 0.0, 20.0, 0.0),
        solver_path="heuristic",
        solver_status="time limit reached",
        timings_s={"build": 0.0123, "solve": 1.5},
    )
    return Plan(**{**plan.__dict__, **changes})


def test_hand_built_plan_round_trips_exactly() -> None:
    plan = _hand_plan()
    assert _through_json(plan) == plan


def test_real_planner_plan_round_trips_exactly(real_plan: Plan) -> None:
    assert real_plan.events and real_plan.site_battery_kw and real_plan.schedules
    assert _through_json(real_plan) == real_plan


def test_round_trip_restores_tuples_and_aware_utc_times() -> None:
    back = _through_json(_hand_plan())
    assert isinstance(back.schedules[0].power_kw, tuple)
    assert isinstance(back.site_power_kw["site-a"], tuple)
    assert back.events[1].baseline_import_kw is None
    assert back.grid.start.tzinfo is UTC
    assert back.grid.step == timedelta(minutes=15)


def test_non_finite_floats_survive_as_strings() -> None:
    plan = _hand_plan(timings_s={"solve": math.inf}, site_power_kw={"site-a": (-math.inf,)})
    data = plan_to_json(plan)
    json.dumps(data, allow_nan=False)  # valid strict JSON
    back = plan_from_json(data)
    assert back.timings_s["solve"] == math.inf
    assert back.site_power_kw["site-a"] == (-math.inf,)
    nan_plan = plan_from_json(plan_to_json(_hand_plan(timings_s={"solve": math.nan})))
    assert math.isnan(nan_plan.timings_s["solve"])


def test_unknown_format_is_refused_with_the_field_named() -> None:
    data = plan_to_json(_hand_plan())
    with pytest.raises(ValueError, match="plan format"):
        plan_from_json({**data, "format": 99})
    with pytest.raises(ValueError, match="solver_path"):
        plan_from_json({**data, "solver_path": "magic"})
