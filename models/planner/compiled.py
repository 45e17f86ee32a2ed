"""A fleet problem flattened into index arrays, shared by every planner path.

Sessions become contiguous runs of *session-slots* ``k`` (only slots where the vehicle is
plugged in). V2G-capable sessions keep a per-slot energy state; unidirectional sessions only
ever gain energy, so their capacity and departure target bind at the end of the window alone
and need no per-slot state. This is what keeps the LP small.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from aggregator.domain import FleetProblem, GridEvent, Session

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Slots a session covers by less than this share are dropped (rounding noise of timestamps).
_MIN_OVERLAP = 1e-6


@dataclass(frozen=True)
class EventCap:
    """An event resolved to a cap per slot on the aggregate net import of some sites. [kW]"""

    event: GridEvent
    site_index: IntArray
    slots: IntArray
    cap_kw: FloatArray
    baseline_kw: FloatArray | None = None


@dataclass(frozen=True)
class CompiledProblem:
    problem: FleetProblem
    dt_h: float
    n_slots: int
    # --- sessions (index i) ---
    sessions: tuple[Session, ...]
    sess_site: IntArray
    first_slot: IntArray
    k_start: IntArray  # session i owns session-slots k_start[i] : k_start[i + 1]
    e0_kwh: FloatArray
    e_floor_kwh: FloatArray
    e_cap_kwh: FloatArray
    e_req_kwh: FloatArray  # energy wanted at the end of the window inside the horizon
    eta_c: FloatArray
    eta_d: FloatArray
    v2g: BoolArray
    # --- session-slots (index k) ---
    k_sess: IntArray
    k_slot: IntArray
    pc_ub_kw: FloatArray
    pd_ub_kw: FloatArray
    # Share of the slot the vehicle is plugged in (1 except at arrival/departure). Power in a
    # slot is its average; while plugged in the charger draws power / share.
    k_share: FloatArray
    # --- sites (index s) ---
    site_ids: tuple[str, ...]
    net_base_kw: FloatArray  # (S, T) base load minus PV
    # (S, T): the limit that holds per slot, min(static connection limit, per-slot capacity)
    import_limit_kw: FloatArray
    export_limit_kw: FloatArray
    # --- site batteries (index b) ---
    batt_site: IntArray
    batt_cap_kwh: FloatArray
    batt_c_max_kw: FloatArray
    batt_d_max_kw: FloatArray
    batt_eta_c: FloatArray
    batt_eta_d: FloatArray
    batt_e0_kwh: FloatArray
    batt_floor_kwh: FloatArray
    # --- context ---
    price_import: FloatArray  # per MWh
    price_export: FloatArray  # per MWh, never above the import price
    degradation_per_mwh: float
    caps: tuple[EventCap, ...]

    @property
    def n_sessions(self) -> int:
        return len(self.sessions)

    @property
    def n_session_slots(self) -> int:
        return int(self.k_sess.shape[0])

    @property
    def n_sites(self) -> int:
        return len(self.site_ids)

    @property
    def partial_k(self) -> IntArray:
        """Session-slots where the vehicle is plugged in for part of the slot only."""
        return np.flatnonzero(self.k_share < 1.0 - 1e-9)

    @property
    def instant_site_slots(self) -> IntArray:
        """Site-slots (site * n_slots + slot) holding a partly plugged-in session, sorted."""
        partial = self.partial_k
        keys = self.sess_site[self.k_sess[partial]] * self.n_slots + self.k_slot[partial]
        return np.unique(keys).astype(np.int64)

    @property
    def v2g_k(self) -> IntArray:
        """Session-slots of V2G-capable sessions, in k order."""
        return np.flatnonzero(self.v2g[self.k_sess])

    def with_caps(self, caps: Sequence[EventCap]) -> CompiledProblem:
        return replace(self, caps=tuple(caps))


def _series(values: tuple[float, ...], n: int) -> FloatArray:
    return np.asarray(values, dtype=float) if values else np.zeros(n)


def event_slots(problem: FleetProblem, event: GridEvent) -> IntArray:
    """Slots of the grid that the event window touches."""
    grid = problem.grid
    lo = max(0, math.floor(grid.position(event.start)))
    hi = min(grid.n_slots, math.ceil(grid.position(event.end)))
    idx = [t for t in range(lo, hi) if grid.overlap_fraction(t, event.start, event.end) > 0]
    return np.asarray(idx, dtype=np.int64)


def cap_events(problem: FleetProblem, site_index: dict[str, int]) -> list[EventCap]:
    """Events given as a cap, resolved to per-slot caps (sheds need a baseline: see planner)."""
    out = []
    for event in problem.events:
        if event.cap_kw is None:
            continue
        slots = event_slots(problem, event)
        if slots.size == 0:
            continue
        sites = np.asarray([site_index[s] for s in problem.event_sites(event)], dtype=np.int64)
        out.append(EventCap(event, sites, slots, np.full(slots.size, event.cap_kw)))
    return out


def compile_problem(problem: FleetProblem) -> CompiledProblem:
    """Flatten ``problem``; shed events are left for the planner to resolve against a baseline."""
    grid = problem.grid
    n, dt_h = grid.n_slots, grid.step_hours
    site_ids = tuple(s.site_id for s in problem.sites)
    site_index = {sid: i for i, sid in enumerate(site_ids)}

    # Per session: scalars from the domain objects (one Python pass), then the plugged-in
    # slots of every session expanded at once with numpy (no Python loop per slot).
    grid_end = grid.end
    all_sessions = problem.sessions
    m = len(all_sessions)
    pos_a, pos_d = np.empty(m), np.empty(m)
    p_c, p_d = np.empty(m), np.empty(m)
    cap, start_e, target = np.empty(m), np.empty(m), np.empty(m)
    min_soc, eff_c, eff_d = np.empty(m), np.empty(m), np.empty(m)
    bidir = np.zeros(m, dtype=bool)
    site_of = np.empty(m, dtype=np.int64)
    vehicles, chargers = problem.vehicle_by_id, problem.charger_by_id
    for i, s in enumerate(all_sessions):
        vehicle = vehicles[s.vehicle_id]
        charger = chargers[s.charger_id]
        pos_a[i], pos_d[i] = grid.position(s.arrival), grid.position(s.departure)
        pc_i = min(vehicle.max_charge_kw, charger.max_charge_kw)
        bi = vehicle.v2g_allowed and vehicle.max_discharge_kw > 0 and charger.bidirectional
        p_c[i] = pc_i
        p_d[i] = min(vehicle.max_discharge_kw, charger.max_discharge_kw) if bi else 0.0
        bidir[i] = bi
        c_i = vehicle.battery_kwh
        cap[i] = c_i
        start_e[i] = s.arrival_soc * c_i
        # A departure beyond the horizon: ask only for what could not be caught up afterwards.
        after_h = max(0.0, (s.departure - grid_end).total_seconds() / 3600.0)
        target[i] = s.target_energy_kwh(c_i) - vehicle.charge_efficiency * pc_i * after_h
        min_soc[i] = s.min_soc
        eff_c[i], eff_d[i] = vehicle.charge_efficiency, vehicle.discharge_efficiency
        site_of[i] = site_index[charger.site_id]

    # Candidate slots lo..hi-1 of every session, then the share of each plugged in (from
    # positions in slot units), dropping rounding-noise overlaps.
    lo = np.maximum(0, np.floor(pos_a)).astype(np.int64)
    hi = np.minimum(n, np.ceil(pos_d)).astype(np.int64)
    count = np.maximum(hi - lo, 0)
    cand_sess = np.repeat(np.arange(m, dtype=np.int64), count)
    run_start = np.cumsum(count) - count
    cand_slot = lo[cand_sess] + np.arange(cand_sess.size, dtype=np.int64) - run_start[cand_sess]
    t_f = cand_slot.astype(float)
    f_all = np.minimum(t_f + 1.0, pos_d[cand_sess]) - np.maximum(t_f, pos_a[cand_sess])
    keep = f_all > _MIN_OVERLAP
    kept_sess, k_slot, f = cand_sess[keep], cand_slot[keep], f_all[keep]
    per_sess = np.bincount(kept_sess, minlength=m)
    has = per_sess > 0
    idx = np.flatnonzero(has)  # sessions that stay, in problem order
    new_of_old = np.cumsum(has) - 1
    k_sess = new_of_old[kept_sess]
    k_start = np.concatenate(([0], np.cumsum(per_sess[idx]))).astype(np.int64)
    sessions = tuple(all_sessions[i] for i in idx.tolist())

    e0 = start_e[idx]
    cap_k = cap[idx]
    # V2G never takes the battery below min SoC (or below where it arrived, if lower).
    e_floor = np.minimum(min_soc[idx] * cap_k, e0)
    # Never below the floor: a target beyond reach of the horizon is "keep the floor".
    e_req = np.minimum(np.maximum(target[idx], e_floor), cap_k)

    net_base = np.zeros((len(site_ids), n))
    for i, site in enumerate(problem.sites):
        net_base[i] = _series(site.base_load_kw, n) - _series(site.pv_kw, n)

    batts = problem.batteries
    p_imp = np.asarray(problem.prices.import_per_mwh, dtype=float)
    # A meter cannot import and export in one slot: an export price above the import price
    # would let the LP fake both at once, so it is clamped (documented in the README).
    p_exp = np.minimum(np.asarray(problem.prices.export_per_mwh, dtype=float), p_imp)

    def ints(x: Sequence[int]) -> IntArray:
        return np.asarray(x, dtype=np.int64)

    def floats(x: Sequence[float]) -> FloatArray:
        return np.asarray(x, dtype=float)

    return CompiledProblem(
        problem=problem,
        dt_h=dt_h,
        n_slots=n,
        sessions=sessions,
        sess_site=site_of[idx],
        first_slot=k_slot[k_start[:-1]],
        k_start=k_start,
        e0_kwh=e0,
        e_floor_kwh=e_floor,
        e_cap_kwh=cap_k,
        e_req_kwh=e_req,
        eta_c=eff_c[idx],
        eta_d=eff_d[idx],
        v2g=bidir[idx],
        k_sess=k_sess,
        k_slot=k_slot,
        pc_ub_kw=p_c[kept_sess] * f,
        pd_ub_kw=p_d[kept_sess] * f,
        k_share=np.minimum(1.0, f),
        site_ids=site_ids,
        net_base_kw=net_base,
        import_limit_kw=np.asarray(
            [s.import_limits_kw(n) for s in problem.sites], dtype=float
        ).reshape(len(site_ids), n),
        export_limit_kw=np.asarray(
            [s.export_limits_kw(n) for s in problem.sites], dtype=float
        ).reshape(len(site_ids), n),
        batt_site=ints([site_index[b.site_id] for b in batts]),
        batt_cap_kwh=floats([b.capacity_kwh for b in batts]),
        batt_c_max_kw=floats([b.max_charge_kw for b in batts]),
        batt_d_max_kw=floats([b.max_discharge_kw for b in batts]),
        batt_eta_c=floats([b.charge_efficiency for b in batts]),
        batt_eta_d=floats([b.discharge_efficiency for b in batts]),
        batt_e0_kwh=floats([b.initial_soc * b.capacity_kwh for b in batts]),
        batt_floor_kwh=floats([b.min_soc * b.capacity_kwh for b in batts]),
        price_import=p_imp,
        price_export=p_exp,
        degradation_per_mwh=problem.degradation_cost_per_mwh,
        caps=tuple(cap_events(problem, site_index)),
    )
