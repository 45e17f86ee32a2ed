"""The fleet planner: one LP (built as arrays; the Pyomo model is its readable reference) solved
by HiGHS, with a heuristic fallback."""

from models.planner.compiled import CompiledProblem, compile_problem
from models.planner.planner import PyomoPlanner, build_lp
from models.planner.settings import PlannerSettings

__all__ = ["CompiledProblem", "PlannerSettings", "PyomoPlanner", "build_lp", "compile_problem"]
