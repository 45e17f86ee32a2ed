"""A ``Plan`` as plain JSON data and back, exactly (pure; no database here).

Times are ISO-8601 UTC, the slot length is whole microseconds, and floats are JSON numbers;
a non-finite float (which JSON cannot hold) is written as the string ``"nan"``, ``"inf"`` or
``"-inf"`` so that storing a plan never fails on a value. ``format`` versions the layout.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from aggregator.domain import (
    CostBreakdown,
    EventResult,
    Plan,
    SessionOutcome,
    SessionSchedule,
    SolverPath,
    TimeGrid,
)

FORMAT = 1
_MICROSECOND = timedelta(microseconds=1)
_SOLVER_PATHS: tuple[SolverPath, ...] = ("lp", "heuristic")

JsonDict = dict[str, Any]


def plan_to_json(plan: Plan) -> JsonDict:
    """Everything in ``plan`` as JSON-ready dicts, lists, strings and numbers."""
    return {
        "format": FORMAT,
        "grid": {
            "start": plan.grid.start.isoformat(),
            "step_us": plan.grid.step // _MICROSECOND,
            "n_slots": plan.grid.n_slots,
        },
        "schedules": [_schedule_to_json(s) for s in plan.schedules],
        "site_power_kw": _series_map(plan.site_power_kw),
        "site_battery_kw": _series_map(plan.site_battery_kw),
        "outcomes": [_outcome_to_json(o) for o in plan.outcomes],
        "events": [_event_to_json(e) for e in plan.events],
        "cost": {
            "import_cost": _num(plan.cost.import_cost),
            "export_revenue": _num(plan.cost.export_revenue),
            "degradation_cost": _num(plan.cost.degradation_cost),
            "shortfall_penalty": _num(plan.cost.shortfall_penalty),
            "event_penalty": _num(plan.cost.event_penalty),
            "site_limit_penalty": _num(plan.cost.site_limit_penalty),
        },
        "solver_path": plan.solver_path,
        "solver_status": plan.solver_status,
        "timings_s": {k: _num(v) for k, v in plan.timings_s.items()},
    }


def plan_from_json(data: Mapping[str, Any]) -> Plan:
    """The ``Plan`` that ``plan_to_json`` wrote; ValueError naming the field if it is not one."""
    if data.get("format") != FORMAT:
        raise ValueError(f"plan format: expected {FORMAT}, got {data.get('format')!r}")
    solver_path = data["solver_path"]
    if solver_path not in _SOLVER_PATHS:
        raise ValueError(f"plan solver_path: expected one of {_SOLVER_PATHS}, got {solver_path!r}")
    grid = data["grid"]
    cost = data["cost"]
    return Plan(
        grid=TimeGrid(
            start=datetime.fromisoformat(grid["start"]).astimezone(UTC),
            step=_MICROSECOND * int(grid["step_us"]),
            n_slots=int(grid["n_slots"]),
        ),
        schedules=tuple(_schedule_from_json(s) for s in data["schedules"]),
        site_power_kw=_series_map_from(data["site_power_kw"]),
        site_battery_kw=_series_map_from(data["site_battery_kw"]),
        outcomes=tuple(_outcome_from_json(o) for o in data["outcomes"]),
        events=tuple(_event_from_json(e) for e in data["events"]),
        cost=CostBreakdown(
            import_cost=float(cost["import_cost"]),
            export_revenue=float(cost["export_revenue"]),
            degradation_cost=float(cost["degradation_cost"]),
            shortfall_penalty=float(cost["shortfall_penalty"]),
            event_penalty=float(cost["event_penalty"]),
            site_limit_penalty=float(cost["site_limit_penalty"]),
        ),
        solver_path=cast(SolverPath, solver_path),
        solver_status=str(data["solver_status"]),
        timings_s={str(k): float(v) for k, v in data["timings_s"].items()},
    )


def _num(value: float) -> float | str:
    return value if math.isfinite(value) else repr(value)


def _nums(values: Iterable[float]) -> list[float | str]:
    return [_num(v) for v in values]


def _floats(values: Iterable[Any]) -> tuple[float, ...]:
    # float() reads both JSON numbers and the "nan"/"inf"/"-inf" strings _num writes.
    return tuple(float(v) for v in values)


def _series_map(series: Mapping[str, Iterable[float]]) -> dict[str, list[float | str]]:
    return {key: _nums(values) for key, values in series.items()}


def _series_map_from(data: Mapping[str, Iterable[Any]]) -> dict[str, tuple[float, ...]]:
    return {str(key): _floats(values) for key, values in data.items()}


def _schedule_to_json(s: SessionSchedule) -> JsonDict:
    return {
        "session_id": s.session_id,
        "vehicle_id": s.vehicle_id,
        "charger_id": s.charger_id,
        "site_id": s.site_id,
        "first_slot": s.first_slot,
        "power_kw": _nums(s.power_kw),
        "soc": _nums(s.soc),
    }


def _schedule_from_json(d: Mapping[str, Any]) -> SessionSchedule:
    return SessionSchedule(
        session_id=str(d["session_id"]),
        vehicle_id=str(d["vehicle_id"]),
        charger_id=str(d["charger_id"]),
        site_id=str(d["site_id"]),
        first_slot=int(d["first_slot"]),
        power_kw=_floats(d["power_kw"]),
        soc=_floats(d["soc"]),
    )


def _outcome_to_json(o: SessionOutcome) -> JsonDict:
    return {
        "session_id": o.session_id,
        "vehicle_id": o.vehicle_id,
        "target_kwh": _num(o.target_kwh),
        "delivered_kwh": _num(o.delivered_kwh),
        "soc_at_departure": _num(o.soc_at_departure),
        "shortfall_kwh": _num(o.shortfall_kwh),
        "reason": o.reason,
    }


def _outcome_from_json(d: Mapping[str, Any]) -> SessionOutcome:
    reason = d["reason"]
    return SessionOutcome(
        session_id=str(d["session_id"]),
        vehicle_id=str(d["vehicle_id"]),
        target_kwh=float(d["target_kwh"]),
        delivered_kwh=float(d["delivered_kwh"]),
        soc_at_departure=float(d["soc_at_departure"]),
        shortfall_kwh=float(d["shortfall_kwh"]),
        reason=None if reason is None else str(reason),
    )


def _event_to_json(e: EventResult) -> JsonDict:
    return {
        "event_id": e.event_id,
        "slots": list(e.slots),
        "cap_kw": _nums(e.cap_kw),
        "planned_import_kw": _nums(e.planned_import_kw),
        "baseline_import_kw": None if e.baseline_import_kw is None else _nums(e.baseline_import_kw),
        "violation_kwh": _num(e.violation_kwh),
    }


def _event_from_json(d: Mapping[str, Any]) -> EventResult:
    baseline = d["baseline_import_kw"]
    return EventResult(
        event_id=str(d["event_id"]),
        slots=tuple(int(i) for i in d["slots"]),
        cap_kw=_floats(d["cap_kw"]),
        planned_import_kw=_floats(d["planned_import_kw"]),
        baseline_import_kw=None if baseline is None else _floats(baseline),
        violation_kwh=float(d["violation_kwh"]),
    )
