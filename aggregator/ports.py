"""Ports: the small interfaces the use cases depend on. Adapters implement them."""

from __future__ import annotations

from typing import Protocol

from aggregator.domain import FleetProblem, FlexibilityEnvelope, Plan


class Planner(Protocol):
    """Turns a planning problem into a plan. Never raises on a hard problem: it degrades."""

    def plan(self, problem: FleetProblem) -> Plan: ...


class EnvelopeCalculator(Protocol):
    """Computes the fleet's flexibility envelope for a problem."""

    def envelope(self, problem: FleetProblem) -> FlexibilityEnvelope: ...
