"""The plan summary: what a fleet manager or trader wants to know about a plan, as JSON data.

Pure: builds a dict from the problem, the plan and the envelope; writing it is elsewhere.
Powers in kW, energies in kWh, money in the prices' currency, times ISO-8601 UTC (``Z``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aggregator.domain import EventResult, FleetProblem, FlexibilityEnvelope, Plan, Site

JsonDict = dict[str, Any]

# Below these, a number is solver round-off rather than a shortfall or a broken limit.
SHORTFALL_TOL_KWH = 1e-3
LIMIT_TOL_KW = 1e-3
VIOLATION_TOL_KWH = 1e-3


def iso_utc(when: datetime) -> str:
    """``2024-05-14T12:00:00Z``: one fixed format for every time we write."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _num(value: float, digits: int = 4) -> float:
    # Adding 0.0 turns -0.0 into 0.0, which reads as a sign error in a report.
    return round(value, digits) + 0.0


def plan_summary(
    plan: Plan, problem: FleetProblem, envelope: FlexibilityEnvelope | None = None
) -> JsonDict:
    """Status, solver, objective parts, per-session outcomes, per-site peaks, events, envelope.

    ``status`` is ``"ok"`` when every departure target is met and no site limit or event is
    broken, else ``"degraded"``; ``issues`` then says what, one line each.
    """
    sessions = _sessions(plan, problem)
    sites = [_site(plan, site) for site in problem.sites]
    events = [_event(result, problem) for result in plan.events]
    issues = _issues(sessions, sites, events)
    cost = plan.cost
    grid = problem.grid
    return {
        "status": "degraded" if issues else "ok",
        "issues": issues,
        "solver_path": plan.solver_path,
        "solver_status": plan.solver_status,
        "timings_s": {name: _num(seconds) for name, seconds in plan.timings_s.items()},
        "horizon": {
            "start": iso_utc(grid.start),
            "end": iso_utc(grid.end),
            "step_minutes": _num(grid.step.total_seconds() / 60.0),
            "n_slots": grid.n_slots,
        },
        "objective": {
            "total": _num(cost.total),
            "energy_cost": _num(cost.energy_cost),
            "import_cost": _num(cost.import_cost),
            "export_revenue": _num(cost.export_revenue),
            "degradation_cost": _num(cost.degradation_cost),
            "shortfall_penalty": _num(cost.shortfall_penalty),
            "event_penalty": _num(cost.event_penalty),
            "site_limit_penalty": _num(cost.site_limit_penalty),
        },
        "totals": {
            "sessions": len(sessions),
            "sessions_short": sum(1 for s in sessions if _short(s)),
            "delivered_kwh": _num(sum(s["delivered_kwh"] or 0.0 for s in sessions)),
            "shortfall_kwh": _num(plan.total_shortfall_kwh),
        },
        "sessions": sessions,
        "sites": sites,
        "events": events,
        "envelope": _envelope(envelope),
    }


def _short(session: JsonDict) -> bool:
    shortfall = session["shortfall_kwh"]
    return shortfall is None or shortfall > SHORTFALL_TOL_KWH


def _sessions(plan: Plan, problem: FleetProblem) -> list[JsonDict]:
    outcomes = {o.session_id: o for o in plan.outcomes}
    out: list[JsonDict] = []
    for s in problem.sessions:
        o = outcomes.get(s.session_id)
        out.append(
            {
                "session_id": s.session_id,
                "vehicle_id": s.vehicle_id,
                "charger_id": s.charger_id,
                "site_id": problem.site_of(s),
                "arrival": iso_utc(s.arrival),
                "departure": iso_utc(s.departure),
                "target_kwh": _num(o.target_kwh) if o else None,
                "delivered_kwh": _num(o.delivered_kwh) if o else None,
                "shortfall_kwh": _num(o.shortfall_kwh) if o else None,
                "soc_at_departure": _num(o.soc_at_departure) if o else None,
                "reason": o.reason if o else "missing from the plan",
            }
        )
    return out


def _site(plan: Plan, site: Site) -> JsonDict:
    power = plan.site_power_kw.get(site.site_id, ())
    hours = plan.grid.step_hours
    peak_import = max(0.0, max(power, default=0.0))
    peak_export = max(0.0, -min(power, default=0.0))
    return {
        "site_id": site.site_id,
        "import_limit_kw": _num(site.import_limit_kw),
        "export_limit_kw": _num(site.export_limit_kw),
        "peak_import_kw": _num(peak_import),
        "peak_export_kw": _num(peak_export),
        "import_excess_kw": _num(max(0.0, peak_import - site.import_limit_kw)),
        "export_excess_kw": _num(max(0.0, peak_export - site.export_limit_kw)),
        "import_kwh": _num(sum(max(p, 0.0) for p in power) * hours),
        "export_kwh": _num(sum(max(-p, 0.0) for p in power) * hours),
    }


def _event(result: EventResult, problem: FleetProblem) -> JsonDict:
    event = next((e for e in problem.events if e.event_id == result.event_id), None)
    reduction: float | None = None
    if result.baseline_import_kw and result.planned_import_kw:
        diffs = [
            b - p for b, p in zip(result.baseline_import_kw, result.planned_import_kw, strict=True)
        ]
        reduction = _num(sum(diffs) / len(diffs))
    return {
        "event_id": result.event_id,
        "kind": None if event is None else ("cap" if event.cap_kw is not None else "shed"),
        "start": iso_utc(event.start) if event else None,
        "end": iso_utc(event.end) if event else None,
        "site_ids": list(problem.event_sites(event)) if event else [],
        "cap_kw": event.cap_kw if event else None,
        "shed_kw": event.shed_kw if event else None,
        "slots": len(result.slots),
        "max_planned_import_kw": _num(max(result.planned_import_kw, default=0.0)),
        "min_cap_kw": _num(min(result.cap_kw, default=0.0)),
        "mean_reduction_kw": reduction,
        "violation_kwh": _num(result.violation_kwh),
    }


def _issues(sessions: list[JsonDict], sites: list[JsonDict], events: list[JsonDict]) -> list[str]:
    issues: list[str] = []
    for s in sessions:
        if s["shortfall_kwh"] is None:
            issues.append(f"session {s['session_id']} is missing from the plan")
        elif _short(s):
            reason = f" ({s['reason']})" if s["reason"] else ""
            issues.append(f"session {s['session_id']} short by {s['shortfall_kwh']} kWh{reason}")
    for site in sites:
        for way in ("import", "export"):
            excess = site[f"{way}_excess_kw"]
            if excess > LIMIT_TOL_KW:
                issues.append(f"site {site['site_id']} {way} over its limit by {excess} kW")
    for e in events:
        if e["violation_kwh"] > VIOLATION_TOL_KWH:
            issues.append(f"event {e['event_id']} missed by {e['violation_kwh']} kWh")
    return issues


def _envelope(envelope: FlexibilityEnvelope | None) -> list[JsonDict] | None:
    if envelope is None:
        return None
    return [
        {
            "slot_start": iso_utc(start),
            "min_kw": _num(lo),
            "max_kw": _num(hi),
            "baseline_kw": _num(base),
        }
        for start, lo, hi, base in zip(
            envelope.grid.slot_starts(),
            envelope.min_kw,
            envelope.max_kw,
            envelope.baseline_kw,
            strict=True,
        )
    ]
