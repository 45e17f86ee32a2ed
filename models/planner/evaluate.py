"""Turn per-session-slot charge/discharge power into a full ``Plan``.

Every planner path (LP, heuristic) ends here, so costs, shortfalls and event results are
computed one way and are comparable across paths.
"""

from __future__ import annotations

import numpy as np

from aggregator.domain import (
    CostBreakdown,
    EventResult,
    Plan,
    SessionOutcome,
    SessionSchedule,
    SolverPath,
)
from models.planner.compiled import CompiledProblem, FloatArray
from models.planner.settings import PlannerSettings

_TOL_KWH = 1e-3
_TOL_KW = 1e-3


def energy_trajectory(cp: CompiledProblem, pc: FloatArray, pd: FloatArray) -> FloatArray:
    """Battery energy at the end of each session-slot. [kWh]"""
    dt = cp.dt_h
    delta = cp.eta_c[cp.k_sess] * dt * pc - dt / cp.eta_d[cp.k_sess] * pd
    csum = np.cumsum(delta)
    # Restart the running sum at each session's first slot.
    before = np.concatenate(([0.0], csum))[cp.k_start[:-1]]
    return np.asarray(cp.e0_kwh[cp.k_sess] + csum - before[cp.k_sess], dtype=float)


def site_net_power(
    cp: CompiledProblem, pc: FloatArray, pd: FloatArray, batt_kw: FloatArray
) -> FloatArray:
    """Net import per site and slot, base load and PV included. (S, T) [kW]"""
    n_s, n_t = cp.n_sites, cp.n_slots
    flat = cp.sess_site[cp.k_sess] * n_t + cp.k_slot
    ev = np.bincount(flat, weights=pc - pd, minlength=n_s * n_t).reshape(n_s, n_t)
    net = cp.net_base_kw + ev
    if cp.batt_site.size:
        np.add.at(net, cp.batt_site, batt_kw)
    return np.asarray(net, dtype=float)


def instant_excess_kw(
    cp: CompiledProblem, pc: FloatArray, pd: FloatArray, batt_kw: FloatArray
) -> FloatArray:
    """Per site-slot (flat), how far instantaneous power breaks a limit (0 where no partial
    session is in the slot, or none is broken). [kW]"""
    n_s, n_t = cp.n_sites, cp.n_slots
    out = np.zeros(n_s * n_t)
    keys = cp.instant_site_slots
    if keys.size == 0:
        return out
    flat = cp.sess_site[cp.k_sess] * n_t + cp.k_slot
    ev = np.bincount(flat, weights=(pc - pd) / cp.k_share, minlength=n_s * n_t)
    inst: FloatArray = np.asarray(ev, dtype=float) + cp.net_base_kw.ravel()
    if cp.batt_site.size:
        batt = np.zeros((n_s, n_t))
        np.add.at(batt, cp.batt_site, batt_kw)
        inst = inst + batt.ravel()
    excess = np.maximum(inst[keys] - cp.import_limit_kw.ravel()[keys], 0.0) + np.maximum(
        -cp.export_limit_kw.ravel()[keys] - inst[keys], 0.0
    )
    out[keys] = excess
    return out


def _shortfall_reason(cp: CompiledProblem, i: int, net: FloatArray, path: SolverPath) -> str:
    ks = slice(cp.k_start[i], cp.k_start[i + 1])
    reachable = cp.e0_kwh[i] + cp.eta_c[i] * cp.dt_h * float(cp.pc_ub_kw[ks].sum())
    if cp.e_req_kwh[i] > reachable + _TOL_KWH:
        return (
            f"unreachable: needs {cp.e_req_kwh[i]:.2f} kWh, at most {reachable:.2f} kWh "
            "possible at full power while plugged in"
        )
    site, slots = int(cp.sess_site[i]), cp.k_slot[ks]
    causes = []
    if np.any(net[site, slots] >= cp.import_limit_kw[site, slots] - _TOL_KW):
        causes.append(f"site {cp.site_ids[site]} import limit")
    for cap in cp.caps:
        overlap = np.isin(cap.slots, slots)
        if site in cap.site_index and overlap.any():
            agg = net[cap.site_index][:, cap.slots[overlap]].sum(axis=0)
            if np.any(agg >= cap.cap_kw[overlap] - _TOL_KW):
                causes.append(f"grid event {cap.event.event_id}")
    if causes:
        return "limited by " + " and ".join(causes)
    return f"not reached by the {path} plan"


def build_plan(
    cp: CompiledProblem,
    pc: FloatArray,
    pd: FloatArray,
    batt_kw: FloatArray,
    settings: PlannerSettings,
    *,
    solver_path: SolverPath,
    solver_status: str,
    timings_s: dict[str, float] | None = None,
) -> Plan:
    """Assemble the plan; ``batt_kw`` is (B, T) site-battery power, positive when charging."""
    dt, mwh = cp.dt_h, 1000.0
    energy = energy_trajectory(cp, pc, pd)
    net = site_net_power(cp, pc, pd, batt_kw)
    imp, exp = np.maximum(net, 0.0), np.maximum(-net, 0.0)
    over = np.maximum(imp - cp.import_limit_kw, 0.0) + np.maximum(exp - cp.export_limit_kw, 0.0)
    # Where a vehicle is there for part of a slot it draws power/share meanwhile: the limit
    # counts the larger of the slot's average and that instantaneous excess.
    inst_over = instant_excess_kw(cp, pc, pd, batt_kw)
    np.maximum(over.ravel(), inst_over, out=inst_over)
    over = inst_over.reshape(over.shape)
    last_k = cp.k_start[1:] - 1
    e_end = energy[last_k] if cp.n_sessions else np.zeros(0)
    shortfall = np.maximum(cp.e_req_kwh - e_end, 0.0)

    events, event_violation_kwh = [], 0.0
    for cap in cp.caps:
        agg = net[cap.site_index][:, cap.slots].sum(axis=0)
        viol = np.maximum(agg - cap.cap_kw, 0.0)
        event_violation_kwh += float(viol.sum()) * dt
        baseline = tuple(map(float, cap.baseline_kw)) if cap.baseline_kw is not None else None
        events.append(
            EventResult(
                event_id=cap.event.event_id,
                slots=tuple(map(int, cap.slots)),
                cap_kw=tuple(map(float, cap.cap_kw)),
                planned_import_kw=tuple(map(float, agg)),
                baseline_import_kw=baseline,
                violation_kwh=float(viol.sum()) * dt,
            )
        )

    cost = CostBreakdown(
        import_cost=float((imp.sum(axis=0) * cp.price_import).sum()) * dt / mwh,
        export_revenue=float((exp.sum(axis=0) * cp.price_export).sum()) * dt / mwh,
        degradation_cost=float(pd.sum()) * dt * cp.degradation_per_mwh / mwh,
        shortfall_penalty=float(shortfall.sum()) * settings.shortfall_penalty_per_mwh / mwh,
        event_penalty=event_violation_kwh * settings.event_penalty_per_mwh / mwh,
        site_limit_penalty=float(over.sum()) * dt * settings.site_limit_penalty_per_mwh / mwh,
    )

    # Per-session objects from whole-array conversions (one ``tolist`` per quantity), sliced
    # per session: the values are the same floats as converting slice by slice.
    power = np.asarray(pc - pd, dtype=float).tolist()
    soc = (energy / cp.e_cap_kwh[cp.k_sess]).tolist()
    bounds = cp.k_start.tolist()
    site_of = [cp.site_ids[j] for j in cp.sess_site.tolist()]
    first = cp.first_slot.tolist()
    target = cp.e_req_kwh.tolist()
    delivered = (e_end - cp.e0_kwh).tolist()
    soc_end = (e_end / cp.e_cap_kwh).tolist()
    short_kwh = np.where(shortfall > _TOL_KWH, shortfall, 0.0).tolist()
    schedules = [
        SessionSchedule(
            session_id=s.session_id,
            vehicle_id=s.vehicle_id,
            charger_id=s.charger_id,
            site_id=site_of[i],
            first_slot=first[i],
            power_kw=tuple(power[bounds[i] : bounds[i + 1]]),
            soc=tuple(soc[bounds[i] : bounds[i + 1]]),
        )
        for i, s in enumerate(cp.sessions)
    ]
    outcomes = [
        SessionOutcome(
            session_id=s.session_id,
            vehicle_id=s.vehicle_id,
            target_kwh=target[i],
            delivered_kwh=delivered[i],
            soc_at_departure=soc_end[i],
            shortfall_kwh=short_kwh[i],
            reason=_shortfall_reason(cp, i, net, solver_path) if short_kwh[i] else None,
        )
        for i, s in enumerate(cp.sessions)
    ]

    return Plan(
        grid=cp.problem.grid,
        schedules=tuple(schedules),
        site_power_kw=dict(zip(cp.site_ids, map(tuple, net.tolist()), strict=True)),
        site_battery_kw={
            cp.site_ids[site]: tuple(row)
            for site, row in zip(
                cp.batt_site.tolist(),
                np.asarray(batt_kw, dtype=float)[: cp.batt_site.size].tolist(),
                strict=True,
            )
        },
        outcomes=tuple(outcomes),
        events=tuple(events),
        cost=cost,
        solver_path=solver_path,
        solver_status=solver_status,
        timings_s=dict(timings_s or {}),
    )
