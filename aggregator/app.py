"""Composition root: the one place that picks concrete adapters for the ports."""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.domain import FleetProblem
from aggregator.ports import EnvelopeCalculator, Planner
from aggregator.services.planning import PlanningResult, plan_fleet
from models.envelope import EnvelopeModel
from models.planner import PlannerSettings, PyomoPlanner


@dataclass(frozen=True)
class PlanningSettings:
    """Edge-level knobs for a plan run (CLI flags map onto these)."""

    time_limit_s: float = 60.0
    with_envelope: bool = True


def build_planner(settings: PlanningSettings) -> Planner:
    return PyomoPlanner(PlannerSettings(time_limit_s=settings.time_limit_s))


def build_envelope_calculator(settings: PlanningSettings) -> EnvelopeCalculator:
    return EnvelopeModel(PlannerSettings(time_limit_s=settings.time_limit_s))


def run_plan(problem: FleetProblem, settings: PlanningSettings | None = None) -> PlanningResult:
    """Plan a problem with the production planner (Pyomo/HiGHS with heuristic fallback)."""
    settings = settings or PlanningSettings()
    calc = build_envelope_calculator(settings) if settings.with_envelope else None
    return plan_fleet(problem, build_planner(settings), calc)
