"""The fleet LP built straight into arrays (numpy/scipy) for HiGHS.

This is the same LP as ``pyomo_model``, written as index arithmetic instead of algebra. It is
the production build (``PyomoPlanner``'s default); the readable statement of the model is the
Pyomo version, and the equivalence tests check that both give the same LP and plan cost.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.planner.compiled import CompiledProblem, FloatArray, IntArray
from models.planner.highs import INF, LpArrays
from models.planner.layout import Layout, layout_of
from models.planner.settings import PlannerSettings


class _Rows:
    """Collects COO triplets and row bounds block by block."""

    def __init__(self) -> None:
        self.n = 0
        self.r: list[IntArray] = []
        self.c: list[IntArray] = []
        self.v: list[FloatArray] = []
        self.lb: list[FloatArray] = []
        self.ub: list[FloatArray] = []

    def block(self, lb: FloatArray, ub: FloatArray) -> int:
        first = self.n
        self.n += int(lb.size)
        self.lb.append(lb)
        self.ub.append(ub)
        return first

    def add(self, rows: IntArray, cols: IntArray, vals: FloatArray | float) -> None:
        self.r.append(np.asarray(rows, dtype=np.int64))
        self.c.append(np.asarray(cols, dtype=np.int64))
        self.v.append(np.broadcast_to(np.asarray(vals, dtype=float), rows.shape))


def build_direct(cp: CompiledProblem, settings: PlannerSettings) -> tuple[LpArrays, Layout]:
    lay = layout_of(cp)
    o = lay.offsets
    dt = cp.dt_h
    n_t, n_s = cp.n_slots, cp.n_sites
    n_k = cp.n_session_slots
    rows = _Rows()

    # --- V2G energy balance: e[j] - e[j-1] - eta_c dt pc[k] + dt/eta_d pd[j] = (e0 | 0)
    vk = cp.v2g_k
    j = np.arange(vk.size)
    sess = cp.k_sess[vk]
    first = vk == cp.k_start[sess]
    r0 = rows.block(np.where(first, cp.e0_kwh[sess], 0.0), np.where(first, cp.e0_kwh[sess], 0.0))
    rows.add(r0 + j, o["e"] + j, 1.0)
    rows.add(r0 + j, o["pc"] + vk, -cp.eta_c[sess] * dt)
    rows.add(r0 + j, o["pd"] + j, dt / cp.eta_d[sess])
    rows.add(r0 + j[~first], o["e"] + j[~first] - 1, -1.0)

    # --- one direction at a time, as far as an LP can say it: pc/pc_ub + pd/pd_ub <= 1.
    # Without it the LP could charge and discharge in one slot to burn energy through losses
    # (paid to import at negative prices), which no charger following one setpoint can do.
    both = np.flatnonzero(cp.pc_ub_kw[vk] > 0)
    r0 = rows.block(np.full(both.size, -INF), np.ones(both.size))
    rows.add(r0 + np.arange(both.size), o["pc"] + vk[both], 1.0 / cp.pc_ub_kw[vk[both]])
    rows.add(r0 + np.arange(both.size), o["pd"] + both, 1.0 / cp.pd_ub_kw[vk[both]])

    # --- departure targets
    v2g_sess = np.flatnonzero(cp.v2g)
    uni_sess = np.flatnonzero(~cp.v2g)
    # V2G: e[last] + sf >= e_req. The last V2G slot of session i is the one before the next
    # session's first, counted in V2G slots.
    v2g_last_j = np.cumsum(cp.k_start[v2g_sess + 1] - cp.k_start[v2g_sess]) - 1
    r0 = rows.block(cp.e_req_kwh[v2g_sess], np.full(v2g_sess.size, INF))
    rr = r0 + np.arange(v2g_sess.size)
    rows.add(rr, o["e"] + v2g_last_j, 1.0)
    rows.add(rr, o["sf"] + v2g_sess, 1.0)
    # Unidirectional: e_req - e0 <= eta_c dt sum(pc) + sf <= e_cap - e0, divided by eta_c dt.
    gain = cp.eta_c[uni_sess] * dt
    r0 = rows.block(
        (cp.e_req_kwh[uni_sess] - cp.e0_kwh[uni_sess]) / gain,
        (cp.e_cap_kwh[uni_sess] - cp.e0_kwh[uni_sess]) / gain,
    )
    row_of_sess = np.full(cp.n_sessions, -1, dtype=np.int64)
    row_of_sess[uni_sess] = r0 + np.arange(uni_sess.size)
    uni_k = np.flatnonzero(~cp.v2g[cp.k_sess])
    rows.add(row_of_sess[cp.k_sess[uni_k]], o["pc"] + uni_k, 1.0)
    rows.add(row_of_sess[uni_sess], o["sf"] + uni_sess, 1.0 / gain)

    # --- site balance: sum(pc - pd) + bc - bd - imp - imp_over + exp + exp_over = -net_base
    r0 = rows.block(-cp.net_base_kw.ravel(), -cp.net_base_kw.ravel())
    site_row = r0 + cp.sess_site[cp.k_sess] * n_t + cp.k_slot
    rows.add(site_row, o["pc"] + np.arange(n_k), 1.0)
    rows.add(site_row[vk], o["pd"] + j, -1.0)
    st = np.arange(n_s * n_t)
    for name, sign in (("imp", -1.0), ("imp_over", -1.0), ("exp", 1.0), ("exp_over", 1.0)):
        rows.add(r0 + st, o[name] + st, sign)
    n_b = int(cp.batt_site.size)
    bt = np.arange(n_b * n_t)
    b_of, t_of = bt // n_t, bt % n_t
    batt_site_row = r0 + cp.batt_site[b_of] * n_t + t_of
    rows.add(batt_site_row, o["bc"] + bt, 1.0)
    rows.add(batt_site_row, o["bd"] + bt, -1.0)

    # --- instantaneous site limits where a vehicle is plugged in for part of a slot only:
    # it draws power/share while there, so the limit must hold with it counted that way.
    # sum(pc/share - pd/share) + bc - bd - imp_over + exp_over in [-exp_lim - base, lim - base]
    inst = cp.instant_site_slots
    if inst.size:
        base = cp.net_base_kw.ravel()[inst]
        site_of = inst // n_t
        r0 = rows.block(
            -cp.export_limit_kw.ravel()[inst] - base, cp.import_limit_kw.ravel()[inst] - base
        )
        row_of_key = dict(zip(inst.tolist(), range(inst.size), strict=True))
        key = cp.sess_site[cp.k_sess] * n_t + cp.k_slot
        ks = np.flatnonzero(np.isin(key, inst))
        kr = r0 + np.fromiter((row_of_key[x] for x in key[ks].tolist()), dtype=np.int64)
        rows.add(kr, o["pc"] + ks, 1.0 / cp.k_share[ks])
        v_of_k = np.full(n_k, -1, dtype=np.int64)
        v_of_k[vk] = j
        vks = ks[v_of_k[ks] >= 0]
        vkr = kr[v_of_k[ks] >= 0]
        rows.add(vkr, o["pd"] + v_of_k[vks], -1.0 / cp.k_share[vks])
        rr = r0 + np.arange(inst.size)
        rows.add(rr, o["imp_over"] + inst, -1.0)
        rows.add(rr, o["exp_over"] + inst, 1.0)
        for b, site in enumerate(cp.batt_site.tolist()):
            mine = np.flatnonzero(site_of == site)
            cols = b * n_t + inst[mine] % n_t
            rows.add(rr[mine], o["bc"] + cols, 1.0)
            rows.add(rr[mine], o["bd"] + cols, -1.0)

    # --- site battery balance: eb[t] - eb[t-1] - eta_c dt bc + dt/eta_d bd = (eb0 | 0)
    rhs = np.where(t_of == 0, cp.batt_e0_kwh[b_of], 0.0)
    r0 = rows.block(rhs, rhs)
    rows.add(r0 + bt, o["eb"] + bt, 1.0)
    rows.add(r0 + bt, o["bc"] + bt, -cp.batt_eta_c[b_of] * dt)
    rows.add(r0 + bt, o["bd"] + bt, dt / cp.batt_eta_d[b_of])
    later = t_of > 0
    rows.add(r0 + bt[later], o["eb"] + bt[later] - 1, -1.0)

    # --- event caps: sum over sites of (imp + imp_over - exp - exp_over) - slack <= cap
    at = 0
    for cap in cp.caps:
        n_e = int(cap.slots.size)
        r0 = rows.block(np.full(n_e, -INF), np.asarray(cap.cap_kw, dtype=float))
        rr = r0 + np.arange(n_e)
        for site in cap.site_index:
            cols = site * n_t + cap.slots
            for name, sign in (("imp", 1.0), ("imp_over", 1.0), ("exp", -1.0), ("exp_over", -1.0)):
                rows.add(rr, o[name] + cols, sign)
        rows.add(rr, o["ev_slack"] + at + np.arange(n_e), -1.0)
        at += n_e

    a = sp.csc_array(
        (np.concatenate(rows.v), (np.concatenate(rows.r), np.concatenate(rows.c))),
        shape=(rows.n, lay.n_cols),
    )
    a.sum_duplicates()
    col_lb, col_ub = column_bounds(cp, lay)
    return (
        LpArrays(
            c=objective(cp, lay, settings),
            col_lb=col_lb,
            col_ub=col_ub,
            a=a,
            row_lb=np.concatenate(rows.lb),
            row_ub=np.concatenate(rows.ub),
        ),
        lay,
    )


def objective(cp: CompiledProblem, lay: Layout, settings: PlannerSettings) -> FloatArray:
    """Cost per unit of each column: [currency/kW per slot] or [currency/kWh] for sf."""
    dt, mwh = cp.dt_h, 1000.0
    c = np.zeros(lay.n_cols)
    c[lay.slice("pd")] = cp.degradation_per_mwh * dt / mwh
    c[lay.slice("sf")] = settings.shortfall_penalty_per_mwh / mwh
    # The earliness tie-breaker rides on site import: among equal-cost plans, import earlier.
    early = settings.earliness_per_mwh_per_slot * np.arange(cp.n_slots)
    p_imp = np.tile(cp.price_import + early, cp.n_sites) * dt / mwh
    p_exp = np.tile(cp.price_export, cp.n_sites) * dt / mwh
    over = settings.site_limit_penalty_per_mwh * dt / mwh
    c[lay.slice("imp")] = p_imp
    c[lay.slice("imp_over")] = p_imp + over
    c[lay.slice("exp")] = -p_exp
    c[lay.slice("exp_over")] = -p_exp + over
    c[lay.slice("ev_slack")] = settings.event_penalty_per_mwh * dt / mwh
    return c


def column_bounds(cp: CompiledProblem, lay: Layout) -> tuple[FloatArray, FloatArray]:
    """Lower and upper bound of each column (unbounded above is ``INF``)."""
    n_t = cp.n_slots
    lb = np.zeros(lay.n_cols)
    ub = np.full(lay.n_cols, INF)
    ub[lay.slice("pc")] = cp.pc_ub_kw
    vk = cp.v2g_k
    ub[lay.slice("pd")] = cp.pd_ub_kw[vk]
    lb[lay.slice("e")] = cp.e_floor_kwh[cp.k_sess[vk]]
    ub[lay.slice("e")] = cp.e_cap_kwh[cp.k_sess[vk]]
    ub[lay.slice("imp")] = cp.import_limit_kw.ravel()
    ub[lay.slice("exp")] = cp.export_limit_kw.ravel()
    ub[lay.slice("bc")] = np.repeat(cp.batt_c_max_kw, n_t)
    ub[lay.slice("bd")] = np.repeat(cp.batt_d_max_kw, n_t)
    eb_lb = np.repeat(cp.batt_floor_kwh, n_t).reshape(-1, n_t)
    # The battery ends the horizon no emptier than it began.
    eb_lb[:, -1] = np.maximum(eb_lb[:, -1], cp.batt_e0_kwh)
    lb[lay.slice("eb")] = eb_lb.ravel()
    ub[lay.slice("eb")] = np.repeat(cp.batt_cap_kwh, n_t)
    return lb, ub
