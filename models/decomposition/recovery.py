"""Last resort of the decomposition: every site re-plans under its share of each fleet-wide cap.

Used only when the coordination stops at its iteration limit with a plan over a cap: each
capped slot's cap is shared among the sites in proportion to their import in the last plan, and
each site plans cold with its share as a local cap. The shares add up to the cap, so the fleet
holds it wherever every site can hold its share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from dask.distributed import Client

from aggregator.domain import FleetProblem, GridEvent, Plan
from models.decomposition.split import CoupledCap, split_by_site
from models.heuristic import plan_heuristic
from models.planner.compiled import CompiledProblem, FloatArray, compile_problem
from models.planner.evaluate import build_plan
from models.planner.highs import solve_lp
from models.planner.layout import powers_from_solution
from models.planner.planner import build_lp, shed_caps
from models.planner.settings import PlannerSettings

# Event ids of the per-site shares of a coupled cap; not reported in the plan.
SHARE = "/share/"


@dataclass(frozen=True)
class SiteResult:
    plan: Plan
    net_kw: FloatArray  # (T,) net import at the site's meter


def _solve_cp(cp: CompiledProblem, shift: FloatArray, settings: PlannerSettings) -> Plan:
    """Solve at prices + shift, evaluate at the real prices; heuristic if the LP fails."""
    shifted = replace(
        cp, price_import=cp.price_import + shift, price_export=cp.price_export + shift
    )
    status = "not solved"
    try:
        lp, lay = build_lp(shifted, settings, "direct")
        result = solve_lp(lp, settings)
        status = result.status
        if result.optimal and result.x is not None:
            pc, pd, batt = powers_from_solution(cp, lay, result.x)
            return build_plan(cp, pc, pd, batt, settings, solver_path="lp", solver_status=status)
    except Exception as exc:  # a site must always get a plan
        status = f"error: {type(exc).__name__}: {exc}"
    return plan_heuristic(cp, settings, solver_status=status)


def solve_site(sub: FleetProblem, shift: FloatArray, settings: PlannerSettings) -> SiteResult:
    """One site's plan with its import/export prices raised by ``shift`` (per MWh, per slot)."""
    cp = compile_problem(sub)
    sheds = [e for e in sub.events if e.shed_kw is not None]
    if sheds:
        base = _solve_cp(cp.with_caps([]), np.zeros(cp.n_slots), settings)
        net = np.asarray([base.site_power_kw[s] for s in cp.site_ids], dtype=float)
        cp = cp.with_caps([*cp.caps, *shed_caps(cp, sheds, net)])
    plan = _solve_cp(cp, shift, settings)
    return SiteResult(plan, np.asarray(plan.site_power_kw[cp.site_ids[0]], dtype=float))


def share_caps(
    problem: FleetProblem,
    coupled: Sequence[CoupledCap],
    site_ids: Sequence[str],
    net: FloatArray,
    client: Client,
    settings: PlannerSettings,
) -> list[SiteResult]:
    """Re-plan every site under its share of each coupled cap; ``net``: (sites, T) last plan."""
    grid = problem.grid
    extra: dict[int, list[GridEvent]] = {i: [] for i in range(len(site_ids))}
    for c in coupled:
        for j, t in enumerate(c.slots):
            members = c.site_index
            use = np.clip(net[members, t], 0.0, None)
            weights = use / use.sum() if use.sum() > 0 else np.full(members.size, 1 / members.size)
            slot_start = grid.start + grid.step * int(t)
            for s, w in zip(members, weights, strict=True):
                sid = site_ids[s]
                extra[int(s)].append(
                    GridEvent(
                        f"{c.event.event_id}{SHARE}{sid}/{int(t)}",
                        slot_start,
                        slot_start + grid.step,
                        frozenset({sid}),
                        cap_kw=float(c.cap_kw[j] * w),
                    )
                )
    subs = split_by_site(problem).sub_problems
    futures = [
        client.submit(
            solve_site,
            replace(sub, events=(*sub.events, *extra[i])),
            np.zeros(grid.n_slots),
            settings,
            pure=False,
        )
        for i, sub in enumerate(subs)
    ]
    return list(client.gather(futures))  # type: ignore[no-untyped-call]
