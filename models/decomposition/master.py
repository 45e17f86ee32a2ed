"""The restricted master LP of the Dantzig-Wolfe decomposition over sites.

Each site offers the plans (*columns*) it found so far, each with its true cost and net import
per slot. The master picks a convex combination per site so the sum over sites stays within
every fleet-wide cap (priced slack, as the monolithic LP's event caps are soft), at least cost:

    min  sum_s sum_j cost[s, j] mu[s, j]  +  penalty * dt * sum slack
    s.t. sum_j mu[s, j] = 1                                   (every site)
         sum_{s in cap} sum_j net[s, j, t] mu[s, j] - slack[c, t] <= cap[c, t]   (cap slots)
         mu, slack >= 0

Its row duals are the coupling prices the sites are asked next. Any master solution is a real
fleet plan (a mix of feasible site plans is feasible for the site), so its objective is an upper
bound on the fleet optimum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from models.decomposition.split import CoupledCap
from models.planner.compiled import FloatArray
from models.planner.highs import INF, LpArrays, load_lp
from models.planner.settings import PlannerSettings


@dataclass
class ColumnPool:
    """Every site's distinct columns: (column index on the site, cost, net import per slot)."""

    n_sites: int

    def __post_init__(self) -> None:
        self.index: list[list[int]] = [[] for _ in range(self.n_sites)]
        self.cost: list[list[float]] = [[] for _ in range(self.n_sites)]
        self.net: list[list[FloatArray]] = [[] for _ in range(self.n_sites)]

    def add(self, site: int, index: int, cost: float, net_kw: FloatArray) -> bool:
        """Keep a column; False when the site already offered it."""
        if index in self.index[site]:
            return False
        self.index[site].append(index)
        self.cost[site].append(cost)
        self.net[site].append(net_kw)
        return True

    @property
    def size(self) -> int:
        return sum(len(i) for i in self.index)


@dataclass(frozen=True)
class MasterSolution:
    objective: float
    # Per site: (column index on the site, weight) for every column in use.
    weights: list[list[tuple[int, float]]]
    # Per coupled cap: price per slot [currency/MWh], >= 0.
    prices_per_mwh: list[FloatArray]
    # Per coupled cap: the slack over the cap per slot. [kW]
    slack_kw: list[FloatArray]


def solve_master(
    pool: ColumnPool,
    coupled: Sequence[CoupledCap],
    dt_h: float,
    penalty_per_mwh: float,
    settings: PlannerSettings,
) -> MasterSolution:
    n_s = pool.n_sites
    owner = np.concatenate([np.full(len(pool.index[s]), s) for s in range(n_s)]).astype(np.int64)
    n_mu = int(owner.size)
    cost = np.concatenate([np.asarray(pool.cost[s], dtype=float) for s in range(n_s)])
    nets = np.concatenate([np.stack(pool.net[s]) for s in range(n_s)])  # (n_mu, T)
    rows, cols, vals = [owner], [np.arange(n_mu)], [np.ones(n_mu)]
    row_lb, row_ub = [np.ones(n_s)], [np.ones(n_s)]
    at, slack_at = n_s, n_mu
    member = np.zeros((len(coupled), n_s), dtype=bool)
    for c_i, c in enumerate(coupled):
        member[c_i, c.site_index] = True
        mine = np.flatnonzero(member[c_i, owner])
        for j, t in enumerate(c.slots.tolist()):
            rows += [np.full(mine.size, at + j), np.asarray([at + j])]
            cols += [mine, np.asarray([slack_at + j])]
            vals += [nets[mine, t], np.asarray([-1.0])]
        row_lb.append(np.full(c.slots.size, -INF))
        row_ub.append(np.asarray(c.cap_kw, dtype=float))
        at += int(c.slots.size)
        slack_at += int(c.slots.size)
    n_slack = slack_at - n_mu
    a = sp.csc_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(at, slack_at),
    )
    lp = LpArrays(
        c=np.concatenate([cost, np.full(n_slack, penalty_per_mwh * dt_h / 1000.0)]),
        col_lb=np.zeros(slack_at),
        col_ub=np.full(slack_at, INF),
        a=a,
        row_lb=np.concatenate(row_lb),
        row_ub=np.concatenate(row_ub),
    )
    h = load_lp(lp, settings)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        # Never expected: the master is feasible (slack) and bounded (mu in a simplex).
        raise RuntimeError(f"master LP: {h.modelStatusToString(h.getModelStatus())}")
    sol = h.getSolution()
    x = np.asarray(sol.col_value, dtype=float)
    y = np.asarray(sol.row_dual, dtype=float)
    mu = x[:n_mu]
    weights: list[list[tuple[int, float]]] = [[] for _ in range(n_s)]
    index = [i for s in range(n_s) for i in pool.index[s]]  # column index on its site, per mu
    for k in np.flatnonzero(mu > 1e-9).tolist():
        weights[int(owner[k])].append((index[k], float(mu[k])))
    prices, slack = [], []
    at, slack_at = n_s, n_mu
    for c in coupled:
        n = int(c.slots.size)
        # A binding "<=" row of a minimisation has a non-positive dual in HiGHS.
        prices.append(np.clip(-y[at : at + n], 0.0, None) * 1000.0 / dt_h)
        slack.append(x[slack_at : slack_at + n])
        at += n
        slack_at += n
    return MasterSolution(float(h.getInfo().objective_function_value), weights, prices, slack)
