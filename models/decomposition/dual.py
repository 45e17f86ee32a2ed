"""Dual decomposition of the fleet LP over sites, with the site LPs solved on Dask.

Each fleet-wide cap ``sum_s net[s, t] <= cap[t]`` gets a price ``lam[t] >= 0`` (per MWh); a site
sees its import and export prices raised by the sum of the prices of the coupled caps it belongs
to, and solves its own LP (the planner's direct build, HiGHS). The prices follow a projected,
normalised subgradient step on the caps' excess. Without coupling the site LPs are independent
and the sum of their optima is the fleet optimum (one round, exact).

Every round gives a lower bound (the Lagrangian: the sites' optima at the shifted prices minus
the prices times the caps) and, when the aggregate respects every cap, a feasible plan. The
result is the best feasible plan found; if the rounds end without one, the caps are shared
among the sites (in proportion to their last import in each capped slot) and the sites re-plan
with those shares as local caps; if that still exceeds a cap, the fleet-wide heuristic plans
(it respects every cap that base load alone does not break). The plan is never knowingly
over a cap while a plan under it was found.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace

import numpy as np
from dask.distributed import Client, LocalCluster

from aggregator.domain import (
    CostBreakdown,
    EventResult,
    FleetProblem,
    GridEvent,
    Plan,
)
from models.decomposition.split import CoupledCap, split_by_site
from models.heuristic import plan_heuristic
from models.planner.compiled import CompiledProblem, FloatArray, compile_problem
from models.planner.evaluate import build_plan
from models.planner.highs import solve_lp
from models.planner.layout import powers_from_solution
from models.planner.planner import build_lp, shed_caps
from models.planner.settings import PlannerSettings

# Event ids of the per-site shares of a coupled cap (recovery step); not reported in the plan.
_SHARE = "/share/"


@dataclass(frozen=True)
class DecompositionSettings:
    max_iterations: int = 30
    # Aggregate import may exceed a cap by this much (solver tolerance). [kW]
    feasibility_tol_kw: float = 1e-3
    # Stop when (best feasible cost - best lower bound) / |best feasible cost| is below this.
    gap_tol: float = 1e-3
    # First price step, as a share of the import price range (at least 1 per MWh).
    step0: float = 0.5
    planner: PlannerSettings = field(default_factory=PlannerSettings)


@dataclass(frozen=True)
class DecomposedResult:
    plan: Plan
    iterations: int
    converged: bool
    # Relative gap between the returned plan's objective and the best Lagrangian bound.
    gap: float
    lower_bound: float
    max_cap_excess_kw: float
    recovery: str  # "iterate", "cap shares", "heuristic" or "exact" (no coupling)
    wall_s: float


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


def _merge(
    problem: FleetProblem,
    parts: Sequence[Plan],
    coupled: Sequence[CoupledCap],
    settings: PlannerSettings,
) -> Plan:
    dt = problem.grid.step_hours
    by_site = {sid: p for p in parts for sid in p.site_power_kw}
    net = np.asarray([by_site[s.site_id].site_power_kw[s.site_id] for s in problem.sites])
    events = [e for p in parts for e in p.events if _SHARE not in e.event_id]
    event_penalty = 0.0
    for c in coupled:
        planned = net[c.site_index][:, c.slots].sum(axis=0)
        excess = float(np.clip(planned - c.cap_kw, 0.0, None).sum()) * dt
        event_penalty += excess * settings.event_penalty_per_mwh / 1000.0
        events.append(
            EventResult(
                c.event.event_id,
                tuple(int(t) for t in c.slots),
                tuple(float(x) for x in c.cap_kw),
                tuple(float(x) for x in planned),
                None,
                excess,
            )
        )
    costs = [p.cost for p in parts]
    cost = CostBreakdown(
        import_cost=sum(c.import_cost for c in costs),
        export_revenue=sum(c.export_revenue for c in costs),
        degradation_cost=sum(c.degradation_cost for c in costs),
        shortfall_penalty=sum(c.shortfall_penalty for c in costs),
        event_penalty=sum(c.event_penalty for c in costs) + event_penalty,
        site_limit_penalty=sum(c.site_limit_penalty for c in costs),
    )
    lp = all(p.solver_path == "lp" for p in parts)
    return Plan(
        problem.grid,
        tuple(s for p in parts for s in p.schedules),
        {k: v for p in parts for k, v in p.site_power_kw.items()},
        {k: v for p in parts for k, v in p.site_battery_kw.items()},
        tuple(o for p in parts for o in p.outcomes),
        tuple(events),
        cost,
        "lp" if lp else "heuristic",
        "decomposed: " + ("all sites optimal" if lp else "some sites by heuristic"),
    )


def _client(address: str | Client | None) -> AbstractContextManager[Client]:
    if isinstance(address, Client):
        return nullcontext(address)
    if address is not None:
        return Client(address)  # type: ignore[no-untyped-call]
    cluster = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    )
    return _OwnedClient(cluster)


class _OwnedClient(AbstractContextManager[Client]):
    """A client on a cluster we started: closing it also closes the cluster."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.client = Client(cluster)  # type: ignore[no-untyped-call]

    def __enter__(self) -> Client:
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()  # type: ignore[no-untyped-call]
        self.cluster.close()


def plan_decomposed(
    problem: FleetProblem,
    settings: DecompositionSettings | None = None,
    *,
    scheduler: str | Client | None = None,
) -> DecomposedResult:
    """Plan ``problem`` site by site on Dask; ``scheduler``: an address, a client or None.

    None starts a two-worker ``LocalCluster`` (threads) for this call and closes it after.
    """
    settings = settings or DecompositionSettings()
    start = time.perf_counter()
    split = split_by_site(problem)
    n_sites, n_slots = len(split.site_ids), problem.grid.n_slots
    dt = problem.grid.step_hours
    prices = np.asarray(problem.prices.import_per_mwh, dtype=float)
    scale = max(1.0, float(prices.max() - prices.min())) * settings.step0
    lams = [np.zeros(c.slots.size) for c in split.coupled]

    def shifts() -> FloatArray:
        out = np.zeros((n_sites, n_slots))
        for c, lam in zip(split.coupled, lams, strict=True):
            for s in c.site_index:
                out[s, c.slots] += lam
        return out

    with _client(scheduler) as client:
        subs = client.scatter(list(split.sub_problems))  # type: ignore[no-untyped-call]

        def round_() -> list[SiteResult]:
            sh = shifts()
            futures = [
                client.submit(solve_site, sub, sh[i], settings.planner, pure=False)
                for i, sub in enumerate(subs)
            ]
            return list(client.gather(futures))  # type: ignore[no-untyped-call]

        def excess(results: Sequence[SiteResult]) -> list[FloatArray]:
            net = np.stack([r.net_kw for r in results])
            return [net[c.site_index][:, c.slots].sum(axis=0) - c.cap_kw for c in split.coupled]

        results = round_()
        if not split.coupled:
            plan = _merge(problem, [r.plan for r in results], (), settings.planner)
            return DecomposedResult(
                plan, 1, True, 0.0, plan.cost.total, 0.0, "exact", time.perf_counter() - start
            )

        best: tuple[float, list[SiteResult]] | None = None
        best_bound = -math.inf
        iterations, converged = 0, False
        for k in range(settings.max_iterations):
            iterations = k + 1
            g = excess(results)
            true_cost = sum(r.plan.cost.total for r in results)
            bound = true_cost + sum(
                float((lam * gi).sum()) * dt / 1000.0 for lam, gi in zip(lams, g, strict=True)
            )
            best_bound = max(best_bound, bound)
            worst = max(float(gi.max()) for gi in g)
            if worst <= settings.feasibility_tol_kw and (best is None or true_cost < best[0]):
                best = (true_cost, results)
            if best is not None and _gap(best[0], best_bound) <= settings.gap_tol:
                converged = True
                break
            if k + 1 == settings.max_iterations:
                break
            norm = max(max(float(np.abs(gi).max()) for gi in g), 1e-9)
            step = scale / math.sqrt(k + 1)
            lams = [
                np.maximum(0.0, lam + step * gi / norm) for lam, gi in zip(lams, g, strict=True)
            ]
            results = round_()

        recovery = "iterate"
        if not converged:
            shared = _share_caps(problem, split.coupled, split.site_ids, results, client, settings)
            g = excess(shared)
            if max(float(gi.max()) for gi in g) <= settings.feasibility_tol_kw:
                cost = sum(r.plan.cost.total for r in shared)
                if best is None or cost < best[0]:
                    best, recovery = (cost, shared), "cap shares"

    if best is None:
        plan = plan_heuristic(
            compile_problem(problem), settings.planner, solver_status="decomposition: no feasible"
        )
        recovery = "heuristic"
        objective = plan.cost.total
    else:
        plan = _merge(problem, [r.plan for r in best[1]], split.coupled, settings.planner)
        objective = best[0]
    excess_kw = max(
        (
            max(p - c for p, c in zip(e.planned_import_kw, e.cap_kw, strict=True))
            for e in plan.events
            if e.cap_kw
        ),
        default=0.0,
    )
    return DecomposedResult(
        plan,
        iterations,
        converged,
        _gap(objective, best_bound),
        best_bound,
        max(0.0, excess_kw),
        recovery,
        time.perf_counter() - start,
    )


def _gap(primal: float, bound: float) -> float:
    return max(0.0, primal - bound) / max(1.0, abs(primal))


def _share_caps(
    problem: FleetProblem,
    coupled: Sequence[CoupledCap],
    site_ids: Sequence[str],
    results: Sequence[SiteResult],
    client: Client,
    settings: DecompositionSettings,
) -> list[SiteResult]:
    """Re-plan every site under its share of each coupled cap (local, per-slot caps)."""
    grid = problem.grid
    net = np.stack([r.net_kw for r in results])
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
                        f"{c.event.event_id}{_SHARE}{sid}/{int(t)}",
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
            settings.planner,
            pure=False,
        )
        for i, sub in enumerate(subs)
    ]
    return list(client.gather(futures))  # type: ignore[no-untyped-call]
