"""Use case: plan a fleet and describe the result."""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.domain import FleetProblem, FlexibilityEnvelope, Plan
from aggregator.ports import EnvelopeCalculator, Planner


@dataclass(frozen=True)
class PlanningResult:
    plan: Plan
    envelope: FlexibilityEnvelope | None


def plan_fleet(
    problem: FleetProblem,
    planner: Planner,
    envelope_calculator: EnvelopeCalculator | None = None,
) -> PlanningResult:
    """Plan ``problem``; add the flexibility envelope when a calculator is given."""
    plan = planner.plan(problem)
    envelope = envelope_calculator.envelope(problem) if envelope_calculator else None
    return PlanningResult(plan=plan, envelope=envelope)
