"""Scenario files: YAML plus the CSV/JSON files it names, loaded into a ``FleetProblem``.

An edge of the application (pydantic, pandas and PyYAML live here, not in the domain).
"""

from aggregator.scenario.errors import ScenarioError
from aggregator.scenario.loader import load_scenario

__all__ = ["ScenarioError", "load_scenario"]
