"""The site side of the decomposition: one kept HiGHS model per site, priced again and again.

A ``SiteModel`` compiles its site once, builds the planner's LP (the direct build) and keeps the
HiGHS object. Pricing the site at a new coupling price changes only the costs of its import and
export columns in the coupled slots and re-solves from the kept basis (HiGHS' dual simplex, which
measured faster here than primal simplex although a cost change keeps the basis primal
feasible), in a fraction of the first, cold solve.
Each answer is a *column* for the master: the plan's true cost and its net import per slot. The
site keeps the powers of every distinct column so the master's final weights can be turned into
a plan.

``SiteGroup`` holds many site models; it is what runs on a Dask worker (as an actor), so the
models stay where they were built and only prices and columns cross the network.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np

from aggregator.domain import FleetProblem, Plan
from models.heuristic import plan_heuristic
from models.planner.compiled import CompiledProblem, FloatArray, compile_problem
from models.planner.direct import build_direct
from models.planner.evaluate import build_plan
from models.planner.highs import LpArrays, load_lp, solve_lp
from models.planner.layout import Layout, powers_from_solution
from models.planner.planner import shed_caps
from models.planner.settings import PlannerSettings

log = logging.getLogger(__name__)

# HiGHS options for the site LPs: on these small, sparse LPs presolve and scaling cost more
# than they save (measured in bench/scale.py's development: about 1.5x faster cold solves).
SITE_HIGHS_OPTIONS: dict[str, str | int] = {"presolve": "off", "simplex_scale_strategy": 0}


@dataclass(frozen=True)
class Column:
    """One site's answer at one price: its index, true objective and net import per slot."""

    index: int
    cost: float
    net_kw: FloatArray
    # The site's objective at the prices it was asked (true cost + price x net); only a valid
    # Lagrangian term when ``optimal``.
    priced_objective: float
    optimal: bool


@dataclass
class _Powers:
    pc: FloatArray
    pd: FloatArray
    batt: FloatArray


class SiteModel:
    """One site's LP, kept between prices."""

    def __init__(self, sub: FleetProblem, settings: PlannerSettings) -> None:
        self.settings = settings
        cp = compile_problem(sub)
        sheds = [e for e in sub.events if e.shed_kw is not None]
        if sheds:
            # A site's own shed is measured against its plan without events, as the planner does.
            base = _solve_once(cp.with_caps([]), settings)
            net = np.asarray([base.site_power_kw[s] for s in cp.site_ids], dtype=float)
            cp = cp.with_caps([*cp.caps, *shed_caps(cp, sheds, net)])
        self.cp: CompiledProblem = cp
        self.site_id = cp.site_ids[0]
        self.columns: list[_Powers] = []
        self._nets: list[FloatArray] = []
        self._costs: list[float] = []
        self._highs: highspy.Highs | None = None
        self._heuristic: Plan | None = None
        self._lp: LpArrays | None = None
        self._lay: Layout | None = None

    # --- the LP and its price-dependent costs
    def _columns_of(self, lay: Layout) -> tuple[np.ndarray, np.ndarray]:
        """Columns of import (+1) and export (-1) per slot: the four site blocks, stacked."""
        cols = np.concatenate([np.arange(lay.slice(b).start, lay.slice(b).stop) for b in _NET])
        sign = np.repeat([1.0, 1.0, -1.0, -1.0], self.cp.n_slots)
        return cols.astype(np.int32), sign

    def _load(self) -> None:
        lp, lay = build_direct(self.cp, self.settings)
        h = load_lp(lp, self.settings)
        h.setOptionValue("time_limit", float(self.settings.time_limit_s))
        for key, value in SITE_HIGHS_OPTIONS.items():
            h.setOptionValue(key, value)
        self._highs, self._lp, self._lay = h, lp, lay
        self._cols, self._sign = self._columns_of(lay)

    def price(self, shift_per_mwh: FloatArray) -> Column:
        """Re-solve with import and export prices raised by ``shift_per_mwh`` (per slot)."""
        if self._heuristic is not None:
            return self._fixed_column(shift_per_mwh)
        try:
            x, status = self._solve(shift_per_mwh)
        except Exception as exc:  # a site must always get a plan
            log.exception("site %s: LP path failed", self.site_id)
            x, status = None, f"error: {type(exc).__name__}: {exc}"
        if x is None:
            log.warning(
                "site %s: LP %s; the site is planned by the heuristic", self.site_id, status
            )
            self._heuristic = plan_heuristic(self.cp, self.settings, solver_status=status)
            self._highs = None
            return self._fixed_column(shift_per_mwh)
        assert self._highs is not None and self._lp is not None and self._lay is not None
        lp, lay = self._lp, self._lay
        true_cost = float(lp.c @ x + lp.offset)
        net = self._net_of(x, lay)
        priced = float(self._highs.getInfo().objective_function_value)
        pc, pd, batt = powers_from_solution(self.cp, lay, x)
        return Column(self._remember(pc, pd, batt, net, true_cost), true_cost, net, priced, True)

    def _solve(self, shift_per_mwh: FloatArray) -> tuple[FloatArray | None, str]:
        """The solution at the shifted prices (None if not optimal) and HiGHS' status."""
        first = self._highs is None
        if first:
            self._load()
        assert self._highs is not None and self._lp is not None
        h, lp = self._highs, self._lp
        per_kw = np.tile(np.asarray(shift_per_mwh, dtype=float), 4) * self.cp.dt_h / 1000.0
        h.changeColsCost(self._cols.size, self._cols, lp.c[self._cols] + self._sign * per_kw)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal and not first:
            log.info(
                "site %s: warm re-solve ended %s; solving cold",
                self.site_id,
                h.modelStatusToString(h.getModelStatus()),
            )
            h.clearSolver()
            h.run()
        status = h.modelStatusToString(h.getModelStatus()).lower()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None, status
        return np.asarray(h.getSolution().col_value, dtype=float), status

    def _net_of(self, x: FloatArray, lay: Layout) -> FloatArray:
        n_t = self.cp.n_slots
        parts = [lay.take(x, b) for b in _NET]
        return np.asarray(parts[0] + parts[1] - parts[2] - parts[3], dtype=float).reshape(n_t)

    def _remember(
        self, pc: FloatArray, pd: FloatArray, batt: FloatArray, net: FloatArray, cost: float
    ) -> int:
        """The column's index; an answer equal to a kept one is not stored twice."""
        for i, (n, c) in enumerate(zip(self._nets, self._costs, strict=True)):
            if abs(c - cost) <= 1e-9 * max(1.0, abs(cost)) and np.allclose(n, net, atol=1e-7):
                return i
        self.columns.append(_Powers(pc, pd, batt))
        self._nets.append(net)
        self._costs.append(cost)
        return len(self.columns) - 1

    def _fixed_column(self, shift_per_mwh: FloatArray) -> Column:
        assert self._heuristic is not None
        net = np.asarray(self._heuristic.site_power_kw[self.site_id], dtype=float)
        cost = self._heuristic.cost.total
        priced = cost + float(np.dot(shift_per_mwh, net)) * self.cp.dt_h / 1000.0
        return Column(0, cost, net, priced, False)

    # --- the plan from the master's weights
    def plan(self, weights: Sequence[tuple[int, float]], status: str) -> Plan:
        """The plan mixing this site's columns with ``weights`` ((column, weight), sum 1)."""
        if self._heuristic is not None:
            return self._heuristic
        total = sum(w for _, w in weights)
        first = self.columns[weights[0][0]]
        pc, pd, batt = np.zeros_like(first.pc), np.zeros_like(first.pd), np.zeros_like(first.batt)
        for i, w in weights:
            col = self.columns[i]
            pc += col.pc * (w / total)
            pd += col.pd * (w / total)
            batt += col.batt * (w / total)
        return build_plan(
            self.cp, pc, pd, batt, self.settings, solver_path="lp", solver_status=status
        )


_NET = ("imp", "imp_over", "exp", "exp_over")


def _solve_once(cp: CompiledProblem, settings: PlannerSettings) -> Plan:
    """A cold solve at the real prices (for a site's own shed baseline)."""
    lp, lay = build_direct(cp, settings)
    result = solve_lp(lp, settings)
    if result.optimal and result.x is not None:
        pc, pd, batt = powers_from_solution(cp, lay, result.x)
        return build_plan(cp, pc, pd, batt, settings, solver_path="lp", solver_status=result.status)
    return plan_heuristic(cp, settings, solver_status=result.status)


class SiteGroup:
    """Site models of one Dask worker. Methods take and return plain arrays and plans."""

    def __init__(self, subs: Sequence[FleetProblem], settings: PlannerSettings) -> None:
        self._subs = list(subs)
        self._settings = settings
        self.models: list[SiteModel] = []

    def price(self, shifts: FloatArray) -> list[Column]:
        """Columns of every site at ``shifts`` ((sites, T) per MWh); builds models on first use."""
        if not self.models:
            self.models = [SiteModel(s, self._settings) for s in self._subs]
            self._subs = []
        return [m.price(shifts[i]) for i, m in enumerate(self.models)]

    def plans(self, weights: Sequence[Sequence[tuple[int, float]]], status: str) -> list[Plan]:
        return [m.plan(w, status) for m, w in zip(self.models, weights, strict=True)]
