"""Plan outputs from a given plan: schedule rows, the summary dict and the three files.

The plan here is written by hand (it is data, not a planner): these tests pin the output
formats; tests/scenario/test_plan_command.py runs the real planner end to end.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from aggregator.domain import (
    CostBreakdown,
    EventResult,
    FleetProblem,
    FlexibilityEnvelope,
    Plan,
    SessionOutcome,
    SessionSchedule,
)
from aggregator.report import SCHEDULE_COLUMNS, plan_summary, schedule_rows, write_outputs
from aggregator.scenario import load_scenario
from tests.scenario.scenario_data import SUMMARY_KEYS, base_doc

OBJECTIVE_KEYS = {
    "total",
    "energy_cost",
    "import_cost",
    "export_revenue",
    "degradation_cost",
    "shortfall_penalty",
    "event_penalty",
    "site_limit_penalty",
}


def _problem(write_scenario) -> FleetProblem:
    return load_scenario(write_scenario(base_doc()))


def _plan(problem: FleetProblem, shortfall_kwh: float = 0.0, peak_kw: float = 30.0) -> Plan:
    """Every session at 5 kW in all its slots; the site at ``peak_kw`` in slot 0."""
    grid = problem.grid
    schedules = []
    outcomes = []
    for s in problem.sessions:
        first = max(0, int(grid.position(s.arrival)))
        last = min(grid.n_slots, int(grid.position(s.departure)))
        n = last - first
        schedules.append(
            SessionSchedule(
                s.session_id,
                s.vehicle_id,
                s.charger_id,
                problem.site_of(s),
                first,
                (5.0,) * n,
                tuple(0.3 + 0.01 * i for i in range(n)),
            )
        )
        short = shortfall_kwh if s.session_id == "s1" else 0.0
        outcomes.append(SessionOutcome(s.session_id, s.vehicle_id, 30.0, 10.0, 0.5, short))
    site_power = {"depot": (peak_kw,) + (10.0,) * (grid.n_slots - 1)}
    events = (EventResult("e1", (4, 5, 6, 7), (20.0,) * 4, (10.0,) * 4, None, 0.0),)
    return Plan(
        grid=grid,
        schedules=tuple(schedules),
        site_power_kw=site_power,
        site_battery_kw={},
        outcomes=tuple(outcomes),
        events=events,
        cost=CostBreakdown(12.0, 2.0, 0.5, 0.0, 0.0, 0.0),
        solver_path="lp",
        solver_status="optimal",
        timings_s={"solve_s": 0.25},
    )


def test_schedule_has_one_row_per_session_per_plugged_slot_in_time_order(write_scenario) -> None:
    problem = _problem(write_scenario)
    plan = _plan(problem)

    rows = schedule_rows(plan)

    assert len(rows) == sum(len(s.power_kw) for s in plan.schedules)  # 12 + 8 + 4
    assert len(rows) == 24
    assert all(len(row) == len(SCHEDULE_COLUMNS) for row in rows)
    assert rows[0] == ("2024-05-14T00:00:00Z", "s1", "v1", "c1", "depot", "5.0", "0.3")
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert rows[-1][:2] == ("2024-05-14T03:45:00Z", "s3")


def test_summary_is_ok_when_targets_limits_and_events_hold(write_scenario) -> None:
    problem = _problem(write_scenario)

    summary = plan_summary(_plan(problem), problem)

    assert set(summary) == SUMMARY_KEYS
    assert set(summary["objective"]) == OBJECTIVE_KEYS
    assert summary["status"] == "ok"
    assert summary["issues"] == []
    assert summary["objective"]["energy_cost"] == 10.5
    assert summary["totals"]["sessions"] == 3
    assert summary["sites"][0]["peak_import_kw"] == 30.0
    assert summary["sites"][0]["import_limit_kw"] == 50.0
    assert summary["events"][0]["kind"] == "cap"
    assert summary["envelope"] is None
    session = summary["sessions"][0]
    assert set(session) >= {
        "session_id",
        "delivered_kwh",
        "shortfall_kwh",
        "soc_at_departure",
        "target_kwh",
        "reason",
    }


def test_summary_is_degraded_and_says_why_on_shortfall_or_limit_excess(write_scenario) -> None:
    problem = _problem(write_scenario)

    summary = plan_summary(_plan(problem, shortfall_kwh=4.0, peak_kw=55.0), problem)

    assert summary["status"] == "degraded"
    assert summary["issues"] == [
        "session s1 short by 4.0 kWh",
        "site depot import over its limit by 5.0 kW",
    ]
    assert summary["sites"][0]["import_excess_kw"] == 5.0
    assert summary["totals"]["sessions_short"] == 1


def test_outputs_are_written_with_their_formats(tmp_path: Path, write_scenario) -> None:
    problem = _problem(write_scenario)
    plan = _plan(problem)
    n = problem.grid.n_slots
    envelope = FlexibilityEnvelope(problem.grid, (-5.0,) * n, (30.0,) * n, (20.0,) * n)
    out = tmp_path / "out"
    out.mkdir()

    summary = write_outputs(out, problem, plan, envelope)

    with (out / "schedule.csv").open(newline="") as f:
        table = list(csv.reader(f))
    assert tuple(table[0]) == SCHEDULE_COLUMNS
    assert len(table) == 1 + 24
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["envelope"][0] == {
        "slot_start": "2024-05-14T00:00:00Z",
        "min_kw": -5.0,
        "max_kw": 30.0,
        "baseline_kw": 20.0,
    }
    assert (out / "plan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
