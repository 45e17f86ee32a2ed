"""The fleet's flexibility envelope: per slot, the least and most EV power that keeps targets.

This is the per-slot *outer* bound: each slot's min and max assume every other slot adjusts
(charging at full power before or after it, as needed). The bounds of different slots are not
jointly reachable: a fleet held at its minimum in one slot must charge harder in others. It is
what a trader can offer for one slot at a time, not a feasible set for a whole profile.

For one session with charge limit ``P_t`` and discharge limit ``D_t`` (0 unless V2G) in slot
``t``, write ``H_{t-1}`` for the energy before ``t`` when charging at full power since plug-in
(capped at the battery), ``A_t`` for the most energy still chargeable after ``t`` and
``need_t = max(e_floor, e_req - A_t)`` for the least energy the battery may hold after ``t``:

* least power: the most negative ``p >= -D_t`` with ``H_{t-1} + stored(p) >= need_t``; when
  even ``P_t`` cannot make it (the target is out of reach), least = most = ``P_t``;
* most power: ``min(P_t, (e_cap - L_{t-1}) / (eta_c dt))`` with ``L`` the lowest feasible
  energy path: ``L_t = max(L_{t-1} - dt D_t / eta_d, need_t)``, ``L_{-1} = e0``.

Both are exact per-slot extremes of the session's feasible set (its energy paths form a
lattice, so ``L`` and ``H`` are its lowest and highest paths). Sessions are summed per site,
the site sum is clipped to the site's headroom ``[-export_limit - net_base, import_limit -
net_base]`` (itself kept within what the chargers can physically do), then sites are summed.
Event caps are not applied: the envelope is what the fleet can do, events are what it is asked.
"""

from __future__ import annotations

import numpy as np

from aggregator.domain import FleetProblem, FlexibilityEnvelope
from models.planner.compiled import CompiledProblem, FloatArray, compile_problem
from models.planner.settings import PlannerSettings

# Slack below this counts as none when deciding a target is out of reach. [kWh]
_TOL_KWH = 1e-9


def _session_cumsum(cp: CompiledProblem, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per session-slot k: sum of ``x`` over the session's slots before k, and after k."""
    csum = np.cumsum(x)
    start = (csum - x)[cp.k_start[:-1]][cp.k_sess]
    end = csum[cp.k_start[1:] - 1][cp.k_sess]
    return np.asarray(csum - x - start, dtype=float), np.asarray(end - csum, dtype=float)


def uncontrolled_powers(cp: CompiledProblem) -> FloatArray:
    """Charge-as-soon-as-plugged power per session-slot (K,). [kW]

    Full power from plug-in until the departure energy ``e_req`` is reached, then nothing.
    Site limits are ignored on purpose: this is what dumb chargers do, the baseline.
    """
    if cp.n_session_slots == 0:
        return np.zeros(0)
    eta_dt = cp.eta_c[cp.k_sess] * cp.dt_h
    stored_before, _ = _session_cumsum(cp, eta_dt * cp.pc_ub_kw)
    # At full power so far, the energy before k is e0 + stored_before until the target is hit.
    left_kwh = np.maximum(cp.e_req_kwh[cp.k_sess] - cp.e0_kwh[cp.k_sess] - stored_before, 0.0)
    return np.asarray(np.minimum(cp.pc_ub_kw, left_kwh / eta_dt), dtype=float)


def uncontrolled_profile(cp: CompiledProblem) -> FloatArray:
    """Aggregate charge-as-soon-as-plugged EV power per slot (T,). [kW]"""
    return np.asarray(
        np.bincount(cp.k_slot, weights=uncontrolled_powers(cp), minlength=cp.n_slots),
        dtype=float,
    )


def session_bounds(cp: CompiledProblem) -> tuple[FloatArray, FloatArray]:
    """Least and most power of each session-slot, others adjusting (K,), (K,). [kW]"""
    n_k = cp.n_session_slots
    if n_k == 0:
        return np.zeros(0), np.zeros(0)
    i = cp.k_sess
    dt = cp.dt_h
    eta_dt = cp.eta_c[i] * dt
    p_c, p_d = cp.pc_ub_kw, cp.pd_ub_kw
    e0, e_cap = cp.e0_kwh[i], cp.e_cap_kwh[i]
    stored_before, stored_after = _session_cumsum(cp, eta_dt * p_c)
    high_before = np.minimum(e_cap, e0 + stored_before)
    need_after = np.maximum(cp.e_floor_kwh[i], cp.e_req_kwh[i] - stored_after)

    # Least power: start from the highest energy and go as low as the need after t allows.
    slack_kwh = high_before - need_after
    discharge = np.minimum(p_d, np.maximum(slack_kwh, 0.0) * cp.eta_d[i] / dt)
    must_charge = np.maximum(-slack_kwh, 0.0) / eta_dt
    out_of_reach = -slack_kwh > eta_dt * p_c + _TOL_KWH
    least = np.where(slack_kwh >= 0, -discharge, must_charge)

    # Lowest feasible energy before each slot, walking all sessions forward in lockstep.
    low_before = np.empty(n_k)
    low = cp.e0_kwh.astype(float, copy=True)
    lengths = np.diff(cp.k_start)
    drain_kwh = dt / cp.eta_d[i] * p_d
    for j in range(int(lengths.max())):
        alive = np.flatnonzero(lengths > j)
        ks = cp.k_start[alive] + j
        low_before[ks] = low[alive]
        low[alive] = np.maximum(low[alive] - drain_kwh[ks], need_after[ks])
    most = np.minimum(p_c, np.maximum(e_cap - low_before, 0.0) / eta_dt)

    # A target out of reach leaves one sensible schedule: flat out.
    least = np.where(out_of_reach, p_c, least)
    most = np.where(out_of_reach, p_c, most)
    return np.asarray(np.minimum(least, most), dtype=float), np.asarray(most, dtype=float)


def envelope_bounds(cp: CompiledProblem) -> tuple[FloatArray, FloatArray]:
    """Fleet EV power bounds per slot (T,), (T,), clipped to each site's headroom. [kW]"""
    n_s, n_t = cp.n_sites, cp.n_slots
    least, most = session_bounds(cp)
    flat = cp.sess_site[cp.k_sess] * n_t + cp.k_slot

    def per_site(weights: FloatArray) -> FloatArray:
        summed = np.bincount(flat, weights=weights, minlength=n_s * n_t)
        return np.asarray(summed.reshape(n_s, n_t), dtype=float)

    site_min, site_max = per_site(least), per_site(most)
    # Headroom kept within what the chargers can do: if base load alone breaks the import
    # limit, unidirectional chargers can only pause (0), not "discharge" to make up for it.
    phys_min, phys_max = -per_site(cp.pd_ub_kw), per_site(cp.pc_ub_kw)
    lo = np.clip(-cp.export_limit_kw - cp.net_base_kw, phys_min, phys_max)
    hi = np.clip(cp.import_limit_kw - cp.net_base_kw, phys_min, phys_max)
    # Clipping both into [lo, hi] keeps min <= max; when the fleet's own need and the site
    # limit conflict, the site limit wins (as in the planner's penalty ladder).
    min_kw = np.clip(site_min, lo, hi).sum(axis=0)
    max_kw = np.clip(site_max, lo, hi).sum(axis=0)
    return np.asarray(min_kw, dtype=float), np.asarray(max_kw, dtype=float)


class EnvelopeModel:
    """Computes the flexibility envelope of a problem (the ``EnvelopeCalculator`` port)."""

    def __init__(self, settings: PlannerSettings | None = None) -> None:
        # Closed form, no solver: settings are kept for a uniform constructor with the planner.
        self.settings = settings or PlannerSettings()

    def envelope(self, problem: FleetProblem) -> FlexibilityEnvelope:
        cp = compile_problem(problem)
        min_kw, max_kw = envelope_bounds(cp)
        baseline_kw = uncontrolled_profile(cp)
        return FlexibilityEnvelope(
            grid=problem.grid,
            min_kw=tuple(map(float, min_kw)),
            max_kw=tuple(map(float, max_kw)),
            baseline_kw=tuple(map(float, baseline_kw)),
        )
