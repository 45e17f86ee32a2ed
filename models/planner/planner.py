"""The fleet planner: LP first, heuristic fallback, and the plan says which path made it."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Literal

import numpy as np
from pyomo.common.gc_manager import PauseGC

from aggregator.domain import FleetProblem, GridEvent, Plan
from models.heuristic import plan_heuristic
from models.planner.compiled import (
    CompiledProblem,
    EventCap,
    FloatArray,
    compile_problem,
    event_slots,
)
from models.planner.direct import build_direct
from models.planner.evaluate import build_plan
from models.planner.highs import HighsResult, LpArrays, solve_lp
from models.planner.layout import Layout, layout_of, powers_from_solution
from models.planner.pyomo_model import build_pyomo, pyomo_to_arrays
from models.planner.settings import PlannerSettings

log = logging.getLogger(__name__)

Builder = Literal["pyomo", "direct"]


def build_lp(
    cp: CompiledProblem, settings: PlannerSettings, builder: Builder
) -> tuple[LpArrays, Layout]:
    """The fleet LP as arrays: direct index arithmetic (production) or the Pyomo reference."""
    if builder == "direct":
        return build_direct(cp, settings)
    lay = layout_of(cp)
    # Model building creates ~10 objects per nonzero; the cyclic GC would rescan them all.
    with PauseGC():
        return pyomo_to_arrays(build_pyomo(cp, settings), lay), lay


def shed_caps(
    cp: CompiledProblem, events: list[GridEvent], baseline_net_kw: FloatArray
) -> list[EventCap]:
    """Turn shed events into caps: the baseline's aggregate import over the window, minus shed."""
    site_index = {sid: i for i, sid in enumerate(cp.site_ids)}
    caps = []
    for event in events:
        assert event.shed_kw is not None
        slots = event_slots(cp.problem, event)
        if slots.size == 0:
            continue
        sites = np.asarray([site_index[s] for s in cp.problem.event_sites(event)], dtype=np.int64)
        baseline = baseline_net_kw[sites][:, slots].sum(axis=0)
        caps.append(EventCap(event, sites, slots, baseline - event.shed_kw, baseline))
    return caps


class PyomoPlanner:
    """Plans a fleet with the fleet LP solved by HiGHS; falls back to least-laxity-first.

    The LP is built by the lean array path (``builder="direct"``, the default): numpy index
    arithmetic handed to highspy. The Pyomo model (``pyomo_model.py``) is the readable
    statement of the same LP; ``builder="pyomo"`` builds through it on request, and the tests
    check that both give the same LP and the same plan cost. (The class keeps its name.)
    """

    def __init__(
        self, settings: PlannerSettings | None = None, *, builder: Builder = "direct"
    ) -> None:
        self.settings = settings or PlannerSettings()
        self.builder: Builder = builder

    def plan(self, problem: FleetProblem) -> Plan:
        timings: dict[str, float] = {}
        start = time.perf_counter()
        cp = compile_problem(problem)
        timings["compile_s"] = time.perf_counter() - start
        sheds = [e for e in problem.events if e.shed_kw is not None]
        if sheds:
            # A shed is measured against the plan the fleet would follow without events.
            baseline = self.solve(cp.with_caps([]), timings, prefix="baseline_")
            net = np.asarray([baseline.site_power_kw[s] for s in cp.site_ids], dtype=float)
            cp = cp.with_caps([*cp.caps, *shed_caps(cp, sheds, net)])
        plan = self.solve(cp, timings)
        timings["total_s"] = time.perf_counter() - start
        return replace(plan, timings_s=dict(timings))

    def solve(self, cp: CompiledProblem, timings: dict[str, float], prefix: str = "") -> Plan:
        """Solve one compiled problem; any failure of the LP path yields the heuristic plan."""
        status = "not solved"
        result: HighsResult | None = None
        lay: Layout | None = None
        try:
            start = time.perf_counter()
            lp, lay = build_lp(cp, self.settings, self.builder)
            timings[prefix + "build_s"] = time.perf_counter() - start
            result = solve_lp(lp, self.settings)
            timings[prefix + "solve_s"] = result.solve_s
            status = result.status
        except Exception as exc:  # the planner must always return a plan
            log.exception("LP path failed; using the heuristic fallback")
            status = f"error: {type(exc).__name__}: {exc}"
        return self.extract(cp, lay, result, status, timings, prefix)

    def extract(
        self,
        cp: CompiledProblem,
        lay: Layout | None,
        result: HighsResult | None,
        status: str,
        timings: dict[str, float],
        prefix: str = "",
        *,
        solved: CompiledProblem | None = None,
    ) -> Plan:
        """The plan of an optimal LP result, else the heuristic's plan.

        ``solved``: the compiled problem the LP was built from, when its caps are in another
        order than ``cp``'s (the plan lists events in ``cp``'s order).
        """
        start = time.perf_counter()
        if result is not None and result.optimal and result.x is not None and lay is not None:
            pc, pd, batt = powers_from_solution(solved or cp, lay, result.x)
            plan = build_plan(
                cp,
                pc,
                pd,
                batt,
                self.settings,
                solver_path="lp",
                solver_status=status,
                timings_s=timings,
            )
        else:
            log.warning("LP not optimal (%s); planning with least-laxity-first", status)
            plan = plan_heuristic(cp, self.settings, solver_status=status, timings_s=timings)
        timings[prefix + "extract_s"] = time.perf_counter() - start
        return replace(plan, timings_s=dict(timings))
