"""The fleet LP in Pyomo: the readable statement of the model.

Variables (see ``layout.BLOCKS``): charge ``pc`` for every plugged-in session-slot; discharge
``pd`` and energy ``e`` only for V2G-capable sessions; departure shortfall ``sf`` per session;
site import/export split into a part within the connection limit and a penalised excess;
site-battery charge, discharge and energy; event-cap excess ``ev_slack``.

Constraints:
- ``v2g_balance``: e[t] = e[t-1] + eta_c dt pc[t] - dt/eta_d pd[t]  (bounds on ``e`` hold the
  SoC between the V2G floor and the battery capacity at every slot);
- ``one_direction``: pc/pc_max + pd/pd_max <= 1 per V2G slot, so the LP cannot charge and
  discharge at once to burn energy through losses (the LP-relaxed form of "one direction");
- ``v2g_target``: e[last] + sf >= energy wanted at departure;
- ``uni_target``: a unidirectional battery only gains energy, so capacity and target bind at
  the end only: e_req - e0 <= eta_c dt sum(pc) + sf <= capacity - e0 (divided through by
  eta_c dt);
- ``site_balance``: EV power + battery - import + export = -(base load - PV), per site and slot,
  with import/export bounded by the grid connection (excess penalised);
- ``site_instant``: where a vehicle is plugged in for part of a slot, it draws power/share
  while there; the connection limit must hold with it counted so (excess penalised too);
- ``battery_balance``: the site battery's energy recursion (it ends no emptier than it began);
- ``event_cap``: aggregate net import of an event's sites - slack <= cap, per event slot.

Objective: import cost - export revenue + degradation per discharged MWh + penalties.

Expressions are built as ``LinearExpression`` objects from the compiled index arrays, and the
model goes to HiGHS through Pyomo's standard-form compiler (sparse arrays), the fastest route
Pyomo offers; the persistent solver interfaces take several times longer on fleet-sized models.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo
import scipy.sparse as sp
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

from models.planner.compiled import CompiledProblem
from models.planner.direct import column_bounds, objective
from models.planner.highs import INF, LpArrays
from models.planner.layout import BLOCKS, Layout, layout_of
from models.planner.settings import PlannerSettings


def _lin(terms: list[Any]) -> LinearExpression:
    return LinearExpression(terms)


def _term(coef: float, var: Any) -> Any:
    return var if coef == 1.0 else MonomialTermExpression((coef, var))


def build_pyomo(cp: CompiledProblem, settings: PlannerSettings) -> pyo.ConcreteModel:
    """The fleet LP as a Pyomo ``ConcreteModel``."""
    lay = layout_of(cp)
    m = pyo.ConcreteModel(name="fleet_plan")
    for name in BLOCKS:
        setattr(m, name, pyo.Var(range(lay.sizes[name]), domain=pyo.Reals))
    _set_bounds(m, cp, lay)
    dt, n_t = cp.dt_h, cp.n_slots
    # Plain lists of the variable objects: indexing a Pyomo Var costs ~1.5 us a lookup.
    v = {name: list(getattr(m, name).values()) for name in BLOCKS}
    pc, pd, e, sf = v["pc"], v["pd"], v["e"], v["sf"]
    imp, imp_over, exp, exp_over = v["imp"], v["imp_over"], v["exp"], v["exp_over"]
    bc, bd, eb = v["bc"], v["bd"], v["eb"]
    k_sess, k_slot, eta_c, eta_d = (
        cp.k_sess.tolist(),
        cp.k_slot.tolist(),
        cp.eta_c.tolist(),
        cp.eta_d.tolist(),
    )
    k_start, e0 = cp.k_start.tolist(), cp.e0_kwh.tolist()

    # V2G energy balance and target.
    v2g_k = cp.v2g_k.tolist()
    balance = []
    last_j: dict[int, int] = {}
    for j, k in enumerate(v2g_k):
        i = k_sess[k]
        terms = [e[j], _term(-eta_c[i] * dt, pc[k]), _term(dt / eta_d[i], pd[j])]
        if k == k_start[i]:
            rhs = e0[i]
        else:
            terms.append(_term(-1.0, e[j - 1]))
            rhs = 0.0
        balance.append((rhs, _lin(terms), rhs))
        last_j[i] = j
    m.v2g_balance = pyo.Constraint(range(len(balance)), rule=lambda _, r: balance[r])
    pc_ub, pd_ub = cp.pc_ub_kw.tolist(), cp.pd_ub_kw.tolist()
    one_way = [
        (None, _lin([_term(1.0 / pc_ub[k], pc[k]), _term(1.0 / pd_ub[k], pd[j])]), 1.0)
        for j, k in enumerate(v2g_k)
        if pc_ub[k] > 0
    ]
    m.one_direction = pyo.Constraint(range(len(one_way)), rule=lambda _, r: one_way[r])
    e_req, e_cap = cp.e_req_kwh.tolist(), cp.e_cap_kwh.tolist()
    v2g_target = [(e_req[i], _lin([e[j], sf[i]]), None) for i, j in last_j.items()]
    m.v2g_target = pyo.Constraint(range(len(v2g_target)), rule=lambda _, r: v2g_target[r])

    # Unidirectional targets: one ranged row per session.
    uni_target = []
    for i in np.flatnonzero(~cp.v2g).tolist():
        # Stated in kW-slots (divided by eta_c dt) so every charge term has coefficient 1.
        gain = eta_c[i] * dt
        terms = [*pc[k_start[i] : k_start[i + 1]], _term(1.0 / gain, sf[i])]
        uni_target.append(((e_req[i] - e0[i]) / gain, _lin(terms), (e_cap[i] - e0[i]) / gain))
    m.uni_target = pyo.Constraint(range(len(uni_target)), rule=lambda _, r: uni_target[r])

    # Site balance per site-slot.
    site_terms: list[list[Any]] = [[] for _ in range(cp.n_sites * n_t)]
    sess_site = cp.sess_site.tolist()
    for k in range(cp.n_session_slots):
        site_terms[sess_site[k_sess[k]] * n_t + k_slot[k]].append(pc[k])
    for j, k in enumerate(v2g_k):
        site_terms[sess_site[k_sess[k]] * n_t + k_slot[k]].append(_term(-1.0, pd[j]))
    for b, site in enumerate(cp.batt_site.tolist()):
        for t in range(n_t):
            site_terms[site * n_t + t] += [bc[b * n_t + t], _term(-1.0, bd[b * n_t + t])]
    rhs_site = (-cp.net_base_kw.ravel()).tolist()
    site_rows = []
    for st, terms in enumerate(site_terms):
        terms += [
            _term(-1.0, imp[st]),
            _term(-1.0, imp_over[st]),
            exp[st],
            exp_over[st],
        ]
        site_rows.append((rhs_site[st], _lin(terms), rhs_site[st]))
    m.site_balance = pyo.Constraint(range(len(site_rows)), rule=lambda _, r: site_rows[r])

    # Instantaneous site limits where a vehicle is plugged in for part of a slot: it draws
    # power/share while there, so the connection limit must hold counting it that way.
    share = cp.k_share.tolist()
    inst_keys = cp.instant_site_slots.tolist()
    inst_terms: dict[int, list[Any]] = {key: [] for key in inst_keys}
    for k in range(cp.n_session_slots):
        key = sess_site[k_sess[k]] * n_t + k_slot[k]
        if key in inst_terms:
            inst_terms[key].append(_term(1.0 / share[k], pc[k]))
    for j, k in enumerate(v2g_k):
        key = sess_site[k_sess[k]] * n_t + k_slot[k]
        if key in inst_terms:
            inst_terms[key].append(_term(-1.0 / share[k], pd[j]))
    for b, site in enumerate(cp.batt_site.tolist()):
        for key in inst_keys:
            if key // n_t == site:
                q = b * n_t + key % n_t
                inst_terms[key] += [bc[q], _term(-1.0, bd[q])]
    base = cp.net_base_kw.ravel().tolist()
    imp_lim, exp_lim = cp.import_limit_kw.ravel().tolist(), cp.export_limit_kw.ravel().tolist()
    inst_rows = []
    for key in inst_keys:
        terms = [*inst_terms[key], _term(-1.0, imp_over[key]), exp_over[key]]
        lo = -exp_lim[key] - base[key]
        hi = imp_lim[key] - base[key]
        inst_rows.append((lo, _lin(terms), hi))
    m.site_instant = pyo.Constraint(range(len(inst_rows)), rule=lambda _, r: inst_rows[r])

    # Site battery energy recursion.
    batt_rows = []
    for b in range(int(cp.batt_site.size)):
        gain, loss = float(cp.batt_eta_c[b]) * dt, dt / float(cp.batt_eta_d[b])
        for t in range(n_t):
            q = b * n_t + t
            terms = [eb[q], _term(-gain, bc[q]), _term(loss, bd[q])]
            if t:
                terms.append(_term(-1.0, eb[q - 1]))
            rhs = float(cp.batt_e0_kwh[b]) if t == 0 else 0.0
            batt_rows.append((rhs, _lin(terms), rhs))
    m.battery_balance = pyo.Constraint(range(len(batt_rows)), rule=lambda _, r: batt_rows[r])

    # Event caps on the aggregate net import of the event's sites.
    cap_rows, q = [], 0
    for cap in cp.caps:
        for slot, cap_kw in zip(cap.slots.tolist(), cap.cap_kw.tolist(), strict=True):
            terms = []
            for site in cap.site_index.tolist():
                st = site * n_t + slot
                terms += [imp[st], imp_over[st], _term(-1.0, exp[st])]
                terms.append(_term(-1.0, exp_over[st]))
            terms.append(_term(-1.0, v["ev_slack"][q]))
            cap_rows.append((None, _lin(terms), cap_kw))
            q += 1
    m.event_cap = pyo.Constraint(range(len(cap_rows)), rule=lambda _, r: cap_rows[r])

    cost = objective(cp, lay, settings)
    obj_terms = []
    for name in BLOCKS:
        block = cost[lay.slice(name)]
        obj_terms += [_term(float(block[i]), v[name][i]) for i in np.flatnonzero(block).tolist()]
    m.cost = pyo.Objective(expr=_lin(obj_terms), sense=pyo.minimize)
    return m


def _set_bounds(m: pyo.ConcreteModel, cp: CompiledProblem, lay: Layout) -> None:
    lb, ub = column_bounds(cp, lay)
    for name in BLOCKS:
        sl = lay.slice(name)
        lows, highs = lb[sl].tolist(), ub[sl].tolist()
        for v, lo, hi in zip(getattr(m, name).values(), lows, highs, strict=True):
            v.setlb(lo)
            v.setub(None if hi >= INF else hi)


def pyomo_to_arrays(m: pyo.ConcreteModel, lay: Layout) -> LpArrays:
    """Compile the model to sparse arrays in the layout's column order.

    The compiler splits a ranged constraint into an upper and a lower row; they are merged back
    so HiGHS sees the same rows as the direct build.
    """
    form = LinearStandardFormCompiler().write(m, mixed_form=True, set_sense=None)
    position = {}
    for name in BLOCKS:
        off = lay.offsets[name]
        for idx, v in enumerate(getattr(m, name).values()):
            position[id(v)] = off + idx
    perm = np.fromiter((position[id(v)] for v in form.columns), dtype=np.int64)

    rows = form.rows
    n_raw = len(rows)
    rhs = np.asarray(form.rhs, dtype=float)
    kind = np.fromiter((r.bound_type for r in rows), dtype=np.int64, count=n_raw)
    same_as_prev = np.zeros(n_raw, dtype=bool)
    same_as_prev[1:] = [rows[i].constraint is rows[i - 1].constraint for i in range(1, n_raw)]
    row_lb = np.where(kind == 1, -INF, rhs)
    row_ub = np.where(kind == -1, INF, rhs)
    # A lower row that follows its upper twin lends its bound to the twin and is dropped.
    twin = np.flatnonzero(same_as_prev)
    row_lb[twin - 1] = rhs[twin]
    keep = ~same_as_prev

    coo = sp.coo_array(form.A)
    a = sp.csc_array((coo.data, (coo.row, perm[coo.col])), shape=(n_raw, lay.n_cols))
    a = sp.csc_array(a[keep, :])
    c = np.zeros(lay.n_cols)
    c[perm] = np.asarray(form.c.toarray(), dtype=float).ravel()
    lb = np.empty(lay.n_cols)
    ub = np.empty(lay.n_cols)
    for name in BLOCKS:
        bounds = [v.bounds for v in getattr(m, name).values()]
        sl = lay.slice(name)
        lb[sl] = [-INF if lo is None else lo for lo, _ in bounds]
        ub[sl] = [INF if hi is None else hi for _, hi in bounds]
    return LpArrays(
        c=c,
        col_lb=lb,
        col_ub=ub,
        a=a,
        row_lb=row_lb[keep],
        row_ub=row_ub[keep],
        offset=float(form.c_offset[0]) if np.ndim(form.c_offset) else float(form.c_offset),
    )
