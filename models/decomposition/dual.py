"""Dantzig-Wolfe decomposition of the fleet LP over sites, with the site LPs kept on Dask.

Sites are coupled only by fleet-wide caps on their aggregate net import. Each site's LP (the
planner's direct build) lives on a Dask worker inside a ``SiteGroup`` actor; a round asks every
site for its optimal plan at the current coupling prices (added to its import and export prices
in the capped slots) and each answer becomes a column of the restricted master LP
(``master.py``), whose duals are the next prices. This is dual decomposition with the prices set
by the master (a cutting-plane method on the dual) instead of a subgradient step: it converges
to the monolithic optimum, and in few rounds. Prices are smoothed towards the best ones so far
(Wentges smoothing) to damp the first rounds' swings.

Bounds: every round's Lagrangian (the sites' optima at the prices minus prices x caps) is a lower
bound on the fleet optimum; the master's objective is the cost of a real plan (a mix of site
plans), an upper bound. The decomposition stops when they are within ``gap_tol`` or at
``max_iterations``; the result reports the gap it reached.

Without coupling the sites are independent: one round, and the sum of their optima is exact.
A plan over a fleet-wide cap is only returned when the monolithic LP would also pay the cap's
penalty (the caps are soft in both) or nothing better is found: after an early stop with slack
left (or a site that fell back to the heuristic), the sites re-plan under shares of the cap
(``recovery.py``), and failing that the fleet-wide heuristic plans; the cheapest plan within
the caps wins, else the one least over them. A site's own caps are its LP's business.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from dask.distributed import Client, LocalCluster

from aggregator.domain import CostBreakdown, EventResult, FleetProblem, Plan
from models.decomposition.master import ColumnPool, MasterSolution, solve_master
from models.decomposition.recovery import SHARE, share_caps
from models.decomposition.sites import Column, SiteGroup
from models.decomposition.split import CoupledCap, split_by_site
from models.heuristic import plan_heuristic
from models.planner.compiled import FloatArray, compile_problem
from models.planner.settings import PlannerSettings


@dataclass(frozen=True)
class DecompositionSettings:
    max_iterations: int = 30
    # Aggregate import may exceed a cap by this much (solver tolerance). [kW]
    feasibility_tol_kw: float = 1e-3
    # Stop when (master objective - best lower bound) / |master objective| is below this.
    gap_tol: float = 1e-3
    # Weight of the best prices so far in the next prices asked (0: the master's duals as is).
    smoothing: float = 0.7
    # The LocalCluster started when no scheduler is given: workers (None: one per CPU, at
    # most 4) and whether they are processes (CPU-bound Python runs in parallel) or threads.
    workers: int | None = None
    processes: bool = True
    planner: PlannerSettings = field(default_factory=PlannerSettings)

    def __post_init__(self) -> None:
        checks = {
            "max_iterations": (self.max_iterations >= 1, "must be >= 1"),
            "feasibility_tol_kw": (self.feasibility_tol_kw >= 0, "must be >= 0"),
            "gap_tol": (0 < self.gap_tol < 1, "must be in (0, 1)"),
            "smoothing": (0 <= self.smoothing < 1, "must be in [0, 1)"),
            "workers": (self.workers is None or self.workers >= 1, "must be >= 1"),
        }
        for name, (ok, reason) in checks.items():
            if not ok:
                raise ValueError(f"{name} {reason}, got {getattr(self, name)!r}")


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
    # Where the time went: first round (cold site solves), later rounds, master, plan assembly.
    timings_s: dict[str, float] = field(default_factory=dict)


class _Groups:
    """The ``SiteGroup`` actors, one per worker, and which sites each holds."""

    def __init__(
        self, client: Client, subs: Sequence[FleetProblem], settings: PlannerSettings
    ) -> None:
        workers = list(client.scheduler_info()["workers"])
        n_g = max(1, min(len(workers), len(subs)))
        # Largest sites first onto the least loaded group: the rounds end with the slowest.
        load = [0] * n_g
        self.sites: list[list[int]] = [[] for _ in range(n_g)]
        for i in sorted(range(len(subs)), key=lambda i: -len(subs[i].sessions)):
            g = load.index(min(load))
            self.sites[g].append(i)
            load[g] += len(subs[i].sessions) + 1
        # The sub-problems go to their worker once, as data, not inside the task graph.
        data = [
            client.scatter(  # type: ignore[no-untyped-call]
                [subs[i] for i in sites], workers=[workers[g % len(workers)]], hash=False
            )
            for g, sites in enumerate(self.sites)
        ]
        futures = [
            client.submit(
                SiteGroup,
                data[g],
                settings,
                actor=True,
                workers=[workers[g % len(workers)]],
                allow_other_workers=False,
            )
            for g, sites in enumerate(self.sites)
        ]
        # Actor proxies: method calls return futures of the method's result.
        self.actors: list[Any] = [f.result() for f in futures]
        self.n_sites = len(subs)

    def price(self, shifts: FloatArray) -> list[Column]:
        """Every site's column at ``shifts`` ((sites, T) per MWh), in site order."""
        return self._in_site_order(
            [a.price(shifts[sites]) for a, sites in zip(self.actors, self.sites, strict=True)]
        )

    def plans(self, weights: Sequence[list[tuple[int, float]]], status: str) -> list[Plan]:
        """Every site's plan mixing its columns with ``weights``, in site order."""
        return self._in_site_order(
            [
                a.plans([weights[i] for i in sites], status)
                for a, sites in zip(self.actors, self.sites, strict=True)
            ]
        )

    def _in_site_order(self, calls: Sequence[Any]) -> list[Any]:
        """The results of one actor call per group (each in its group's order), by site."""
        out: list[Any] = [None] * self.n_sites
        for call, sites in zip(calls, self.sites, strict=True):
            for i, item in zip(sites, call.result(), strict=True):
                out[i] = item
        return out


def _shifts(
    coupled: Sequence[CoupledCap], prices: Sequence[FloatArray], shape: tuple[int, int]
) -> FloatArray:
    out = np.zeros(shape)
    for c, lam in zip(coupled, prices, strict=True):
        out[np.ix_(c.site_index, c.slots)] += lam
    return out


def plan_decomposed(
    problem: FleetProblem,
    settings: DecompositionSettings | None = None,
    *,
    scheduler: str | Client | None = None,
) -> DecomposedResult:
    """Plan ``problem`` site by site on Dask; ``scheduler``: an address, a client or None.

    None starts a ``LocalCluster`` for this call (see ``DecompositionSettings``) and closes it
    after.
    """
    settings = settings or DecompositionSettings()
    start = time.perf_counter()
    timings: dict[str, float] = {}
    split = split_by_site(problem)
    coupled = split.coupled
    n_sites, n_slots = len(split.site_ids), problem.grid.n_slots
    dt = problem.grid.step_hours
    shape = (n_sites, n_slots)
    penalty = settings.planner.event_penalty_per_mwh

    def lagrangian(columns: Sequence[Column], prices: Sequence[FloatArray]) -> float:
        if not all(c.optimal for c in columns):
            return -math.inf  # a heuristic site gives no valid bound
        held = sum(float(lam @ c.cap_kw) for lam, c in zip(prices, coupled, strict=True))
        return sum(c.priced_objective for c in columns) - held * dt / 1000.0

    with _client(scheduler, settings) as client:
        t0 = time.perf_counter()
        groups = _Groups(client, split.sub_problems, settings.planner)
        zero = [np.zeros(c.slots.size) for c in coupled]
        columns = groups.price(np.zeros(shape))
        timings["first_round_s"] = time.perf_counter() - t0
        if not coupled:
            plans = groups.plans([[(c.index, 1.0)] for c in columns], "optimal")
            plan = _merge(problem, plans, (), settings.planner)
            timings["total_s"] = time.perf_counter() - start
            return DecomposedResult(
                plan, 1, True, 0.0, plan.cost.total, 0.0, "exact", timings["total_s"], timings
            )

        pool = ColumnPool(n_sites)
        for s, col in enumerate(columns):
            pool.add(s, col.index, col.cost, col.net_kw)
        best_bound = lagrangian(columns, zero)
        center = zero
        iterations, converged = 1, False
        master_s = rounds_s = 0.0
        smoothing = settings.smoothing
        while True:
            t0 = time.perf_counter()
            master = solve_master(pool, coupled, dt, penalty, settings.planner)
            master_s += time.perf_counter() - t0
            if _gap(master.objective, best_bound) <= settings.gap_tol:
                converged = True
                break
            if iterations >= settings.max_iterations:
                break
            ask = [
                smoothing * c + (1.0 - smoothing) * m
                for c, m in zip(center, master.prices_per_mwh, strict=True)
            ]
            t0 = time.perf_counter()
            columns = groups.price(_shifts(coupled, ask, shape))
            rounds_s += time.perf_counter() - t0
            iterations += 1
            for s, col in enumerate(columns):
                pool.add(s, col.index, col.cost, col.net_kw)
            bound = lagrangian(columns, ask)
            if bound > best_bound + 1e-9 * max(1.0, abs(bound)):
                best_bound, center, smoothing = bound, ask, settings.smoothing
            else:
                # Mispricing: the smoothed prices taught nothing new; trust the master more.
                smoothing = max(0.0, smoothing - 0.25)
        timings.update(later_rounds_s=rounds_s, master_s=master_s, columns=float(pool.size))

        t0 = time.perf_counter()
        status = "decomposed: " + ("converged" if converged else "iteration limit")
        plans = groups.plans(master.weights, status)
        plan = _merge(problem, plans, coupled, settings.planner)
        objective, recovery = master.objective, "iterate"
        # Only the fleet-wide caps are the master's to hold; a site's own cap is its LP's.
        real, tol = _plan_excess(plan, coupled), settings.feasibility_tol_kw
        # Re-plan under cap shares after an early stop with slack left, or when the plan is
        # further over a cap than the master counted (a site fell back to the heuristic).
        if real > tol and (not converged or real > _max_excess(master) + tol):
            net = np.stack(
                [
                    np.asarray(p.site_power_kw[s], dtype=float)
                    for p, s in zip(plans, split.site_ids, strict=True)
                ]
            )
            shared = share_caps(split, net, client, settings.planner)
            shared_plan = _merge(problem, shared, coupled, settings.planner)
            candidates = [(plan, "iterate"), (shared_plan, "cap shares")]
            if _plan_excess(shared_plan, coupled) > tol:
                heuristic = plan_heuristic(
                    compile_problem(problem),
                    settings.planner,
                    solver_status="decomposition: no plan within the caps",
                )
                candidates.append((heuristic, "heuristic"))
            # Within the caps and cheapest; if no plan holds them, the one least over them.
            plan, recovery = min(
                candidates,
                key=lambda pr: (max(_plan_excess(pr[0], coupled) - tol, 0.0), pr[0].cost.total),
            )
            if recovery != "iterate":
                objective = plan.cost.total
        timings["plans_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - start
    return DecomposedResult(
        plan,
        iterations,
        converged,
        _gap(objective, best_bound),
        best_bound,
        max(0.0, _plan_excess(plan)),
        recovery,
        timings["total_s"],
        timings,
    )


def _max_excess(master: MasterSolution) -> float:
    return max((float(s.max()) for s in master.slack_kw if s.size), default=0.0)


def _plan_excess(plan: Plan, only: Sequence[CoupledCap] | None = None) -> float:
    """The plan's worst excess over a cap [kW]: every cap, or ``only`` those fleet-wide caps."""
    ids = None if only is None else {c.event.event_id for c in only}
    return max(
        (
            max(p - c for p, c in zip(e.planned_import_kw, e.cap_kw, strict=True))
            for e in plan.events
            if e.cap_kw and (ids is None or e.event_id in ids)
        ),
        default=0.0,
    )


def _gap(primal: float, bound: float) -> float:
    return max(0.0, primal - bound) / max(1.0, abs(primal))


def _merge(
    problem: FleetProblem,
    parts: Sequence[Plan],
    coupled: Sequence[CoupledCap],
    settings: PlannerSettings,
) -> Plan:
    dt = problem.grid.step_hours
    by_site = {sid: p for p in parts for sid in p.site_power_kw}
    net = np.asarray([by_site[s.site_id].site_power_kw[s.site_id] for s in problem.sites])
    events = [e for p in parts for e in p.events if SHARE not in e.event_id]
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


def _client(
    address: str | Client | None, settings: DecompositionSettings
) -> AbstractContextManager[Client]:
    if isinstance(address, Client):
        return nullcontext(address)
    if address is not None:
        return Client(address)  # type: ignore[no-untyped-call]
    return _OwnedClient(local_cluster(settings))


def local_cluster(settings: DecompositionSettings) -> LocalCluster:
    """The ``LocalCluster`` the settings describe (one worker per CPU, at most 4, by default)."""
    workers = settings.workers or max(1, min(4, os.cpu_count() or 1))
    return LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=workers,
        threads_per_worker=1,
        processes=settings.processes,
        dashboard_address=":0",
    )


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
