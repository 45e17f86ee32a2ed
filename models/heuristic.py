"""Least-laxity-first fallback: a safe plan in a fraction of a second when the LP fails.

Slot by slot, the plugged-in sessions are served in order of laxity (hours of slack left at
full power), least first. Each takes the smallest of: its charger limit, what it still needs to
reach its departure energy, what its site's import limit leaves, and what every active event
cap over its site leaves. It never discharges and leaves site batteries idle, so a site import
limit or event cap that base load alone respects is never exceeded. Greedy per slot, it is not
cost-optimal and can leave a vehicle short where the LP (which can pre-charge) would not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

# Types only at import time: models.planner's package init imports this module for its
# fallback, so a runtime import of models.planner here would make the import circular.
if TYPE_CHECKING:
    from aggregator.domain import Plan
    from models.planner.compiled import CompiledProblem, FloatArray, IntArray
    from models.planner.settings import PlannerSettings

# A cap counts as binding only when it is exceeded by more than float noise. [kW]
_TOL_KW = 1e-9
# Below this a charger counts as off for laxity (dividing by it would overflow). [kW]
MIN_POWER_KW = 1e-9


def _charge_from_k_kwh(cp: CompiledProblem) -> FloatArray:
    """Energy a session can still store from the start of session-slot k on, at full power."""
    dt = cp.dt_h
    stored = cp.eta_c[cp.k_sess] * dt * cp.pc_ub_kw
    csum = np.cumsum(stored)
    session_total_end = csum[cp.k_start[1:] - 1][cp.k_sess]
    return np.asarray(session_total_end - (csum - stored), dtype=float)


def _allocate_sites(
    want_kw: FloatArray, site: IntArray, laxity_h: FloatArray, room_kw: FloatArray
) -> FloatArray:
    """Greedy least-laxity allocation under per-site headroom, vectorised per site group."""
    order = np.lexsort((laxity_h, site))  # stable: ties keep session order
    w, s = want_kw[order], site[order]
    before = np.cumsum(w) - w
    idx = np.arange(w.size)
    group_start = np.maximum.accumulate(np.where(np.r_[True, s[1:] != s[:-1]], idx, 0))
    before_in_site = before - before[group_start]
    alloc = np.empty_like(w)
    alloc[order] = np.clip(room_kw[s] - before_in_site, 0.0, w)
    return alloc


def _apply_caps(
    alloc_kw: FloatArray,
    site: IntArray,
    laxity_h: FloatArray,
    caps: list[tuple[float, IntArray]],
) -> FloatArray:
    """Cut allocations to the shared budgets of event caps, least laxity keeping the most.

    Reproduces the one-by-one greedy exactly: repeatedly find the cap that binds earliest in
    priority order, give the session where it binds what is left, and zero every later session
    under that cap (its budget is spent). Cutting only frees budget for others, so caps found
    not to bind never bind later; each round retires at least one cap.
    """
    order = np.argsort(laxity_h, kind="stable")
    x = alloc_kw[order]
    covered = [np.isin(site[order], sites) for _, sites in caps]
    budgets = [budget for budget, _ in caps]
    live = list(range(len(caps)))
    while live:
        first, binding = x.size, []
        for c in list(live):
            csum = np.cumsum(np.where(covered[c], x, 0.0))
            over = np.flatnonzero(csum > budgets[c] + _TOL_KW)
            if over.size == 0:
                live.remove(c)
            elif over[0] < first:
                first, binding = int(over[0]), [c]
            elif over[0] == first:
                binding.append(c)
        if not binding:
            break
        left = min(
            budgets[c] - float(np.where(covered[c][:first], x[:first], 0.0).sum()) for c in binding
        )
        x[first] = min(x[first], max(left, 0.0))
        for c in binding:
            x[first + 1 :][covered[c][first + 1 :]] = 0.0
            live.remove(c)
    out = np.empty_like(x)
    out[order] = x
    return out


def heuristic_powers(cp: CompiledProblem) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Least-laxity-first charge power per session-slot.

    Returns ``(pc, pd, batt_kw)``: charge power (K,) [kW], discharge power (K,) (all zero: the
    fallback never discharges) and site-battery power (B, T) (all zero: batteries stay idle).
    """
    n_k, n_t, dt = cp.n_session_slots, cp.n_slots, cp.dt_h
    pc = np.zeros(n_k)
    pd = np.zeros(n_k)
    batt_kw = np.zeros((cp.batt_site.size, n_t))
    if n_k == 0:
        return pc, pd, batt_kw

    target_kwh = np.minimum(cp.e_req_kwh, cp.e_cap_kwh)
    energy_kwh = cp.e0_kwh.astype(float, copy=True)
    p_max = np.maximum.reduceat(cp.pc_ub_kw, cp.k_start[:-1])
    # Laxity is in hours at the session's full power; a session that cannot charge sorts last.
    can_charge = p_max > MIN_POWER_KW
    full_rate_kwh_per_h = cp.eta_c * np.where(can_charge, p_max, 1.0)
    charge_from_k = _charge_from_k_kwh(cp)
    k_site = cp.sess_site[cp.k_sess]
    headroom_kw = np.maximum(cp.import_limit_kw - cp.net_base_kw, 0.0)

    # Session-slots grouped by grid slot once, so each slot is a slice.
    by_slot = np.argsort(cp.k_slot, kind="stable")
    bounds = np.searchsorted(cp.k_slot[by_slot], np.arange(n_t + 1))
    caps_at: list[list[tuple[float, IntArray]]] = [[] for _ in range(n_t)]
    for cap in cp.caps:
        for t, cap_kw in zip(cap.slots.tolist(), cap.cap_kw.tolist(), strict=True):
            budget = cap_kw - float(cp.net_base_kw[cap.site_index, t].sum())
            caps_at[t].append((max(budget, 0.0), cap.site_index))

    for t in range(n_t):
        ks = by_slot[bounds[t] : bounds[t + 1]]
        if ks.size == 0:
            continue
        i = cp.k_sess[ks]
        need_kwh = np.maximum(target_kwh[i] - energy_kwh[i], 0.0)
        want_kw = np.minimum(cp.pc_ub_kw[ks], need_kwh / (cp.eta_c[i] * dt))
        if not np.any(want_kw > 0):
            continue
        laxity_h = np.where(
            can_charge[i], (charge_from_k[ks] - need_kwh) / full_rate_kwh_per_h[i], np.inf
        )
        # Headroom is used at instantaneous power: a vehicle there for part of the slot
        # draws its average power / share while plugged in.
        share = cp.k_share[ks]
        alloc = share * _allocate_sites(want_kw / share, k_site[ks], laxity_h, headroom_kw[:, t])
        if caps_at[t]:
            alloc = _apply_caps(alloc, k_site[ks], laxity_h, caps_at[t])
        pc[ks] = alloc
        energy_kwh[i] += cp.eta_c[i] * dt * alloc
    return pc, pd, batt_kw


def plan_heuristic(
    cp: CompiledProblem,
    settings: PlannerSettings,
    *,
    solver_status: str,
    timings_s: dict[str, float] | None = None,
) -> Plan:
    """The least-laxity-first plan, costed and checked by the shared ``build_plan``."""
    # Imported here, not at module level: see the TYPE_CHECKING note above.
    from models.planner.evaluate import build_plan

    pc, pd, batt_kw = heuristic_powers(cp)
    return build_plan(
        cp,
        pc,
        pd,
        batt_kw,
        settings,
        solver_path="heuristic",
        solver_status=solver_status,
        timings_s=timings_s,
    )
