"""Random small fleets: the heuristic fallback stays within every hard limit it promises.

It is also checked against a one-session-at-a-time reference of the same greedy rule, so the
vectorised allocation cannot drift from what the module docstring says.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.domain import FleetProblem
from models.heuristic import MIN_POWER_KW, _charge_from_k_kwh, heuristic_powers
from models.planner.compiled import CompiledProblem, compile_problem
from models.planner.evaluate import energy_trajectory, instant_excess_kw, site_net_power
from tests.fleet_builders import cap_event, ev, make_problem

TOL = 1e-6
SITES = ("a", "b", "c")


@st.composite
def fleets(draw: st.DrawFn) -> FleetProblem:
    n_slots = draw(st.integers(1, 10))
    n_sites = draw(st.integers(1, 3))
    sites = SITES[:n_sites]
    limits = {s: draw(st.floats(0.0, 40.0)) for s in sites}
    # Base load may be negative (PV surplus) but never above the limit: the promised case.
    base = {s: [draw(st.floats(-10.0, limits[s])) for _ in range(n_slots)] for s in sites}
    specs = []
    for _ in range(draw(st.integers(0, 8))):
        arrival = draw(st.floats(0.0, n_slots - 0.25))
        departure = draw(st.floats(arrival + 0.1, n_slots + 2.0))
        arrival_soc = draw(st.floats(0.0, 1.0))
        specs.append(
            ev(
                arrival,
                departure,
                arrival_soc=arrival_soc,
                target_soc=draw(st.floats(0.0, 1.0)),
                min_soc=0.0,
                battery_kwh=draw(st.floats(5.0, 100.0)),
                max_charge_kw=draw(st.floats(0.0, 22.0)),
                v2g=draw(st.booleans()),
                charge_efficiency=draw(st.floats(0.8, 1.0)),
                discharge_efficiency=draw(st.floats(0.8, 1.0)),
                site=draw(st.sampled_from(sites)),
            )
        )
    events = []
    for n in range(draw(st.integers(0, 2))):
        start = draw(st.integers(0, n_slots - 1))
        end = draw(st.integers(start + 1, n_slots))
        covered = draw(st.sets(st.sampled_from(sites), min_size=1))
        # The cap sits at or above the base load of its sites, so it can always be met.
        floor = max(sum(base[s][t] for s in covered) for t in range(start, end))
        cap = floor + draw(st.floats(0.0, 30.0))
        events.append(cap_event(f"e{n}", start, end, cap_kw=cap, sites=sorted(covered)))
    return make_problem(
        specs,
        n_slots=n_slots,
        sites=sites,
        site_limit_kw=limits,
        export_limit_kw=100.0,
        base_load_kw=base,
        events=events,
    )


def _reference_powers(cp: CompiledProblem) -> np.ndarray:
    """The greedy rule written plainly: per slot, one session at a time, least laxity first."""
    dt = cp.dt_h
    pc = np.zeros(cp.n_session_slots)
    energy = cp.e0_kwh.copy()
    target = np.minimum(cp.e_req_kwh, cp.e_cap_kwh)
    p_max = [cp.pc_ub_kw[cp.k_start[i] : cp.k_start[i + 1]].max() for i in range(cp.n_sessions)]
    # Same float formula as the module so that ties in laxity break the same way.
    charge_from_k = _charge_from_k_kwh(cp)
    for t in range(cp.n_slots):
        site_left = np.maximum(cp.import_limit_kw[:, t] - cp.net_base_kw[:, t], 0.0)
        caps_left = []
        for cap in cp.caps:
            for j, slot in enumerate(cap.slots):
                if slot == t:
                    left = cap.cap_kw[j] - cp.net_base_kw[cap.site_index, t].sum()
                    caps_left.append([max(left, 0.0), set(cap.site_index.tolist())])
        here = [k for k in range(cp.n_session_slots) if cp.k_slot[k] == t]
        laxity = {}
        for k in here:
            i = cp.k_sess[k]
            need = max(target[i] - energy[i], 0.0)
            rate = cp.eta_c[i] * p_max[i]
            laxity[k] = (charge_from_k[k] - need) / rate if p_max[i] > MIN_POWER_KW else np.inf
        for k in sorted(here, key=lambda k: (laxity[k], k)):
            i, site = cp.k_sess[k], cp.sess_site[cp.k_sess[k]]
            need = max(target[i] - energy[i], 0.0)
            # A vehicle there for part of the slot uses headroom at power / share.
            share = cp.k_share[k]
            limits = [cp.pc_ub_kw[k], need / (cp.eta_c[i] * dt), site_left[site] * share]
            limits += [left for left, sites in caps_left if site in sites]
            power = max(min(limits), 0.0)
            site_left[site] -= power / share
            for budget in caps_left:
                if site in budget[1]:
                    budget[0] -= power
            pc[k] = power
            energy[i] += cp.eta_c[i] * dt * power
    return pc


@settings(max_examples=150, deadline=None)
@given(fleets())
def test_heuristic_plan_stays_within_site_limits_event_caps_and_charger_power(problem):
    cp = compile_problem(problem)
    pc, pd, batt_kw = heuristic_powers(cp)

    assert np.all(pd == 0.0)
    assert np.all(batt_kw == 0.0)
    assert np.all(pc >= 0.0)
    assert np.all(pc <= cp.pc_ub_kw + TOL)

    net = site_net_power(cp, pc, pd, batt_kw)
    assert np.all(net <= cp.import_limit_kw + TOL)
    # ...and instantaneously, where a vehicle is plugged in for part of a slot.
    assert np.all(instant_excess_kw(cp, pc, pd, batt_kw) <= TOL)
    for cap in cp.caps:
        assert np.all(net[cap.site_index][:, cap.slots].sum(axis=0) <= cap.cap_kw + TOL)

    if cp.n_sessions:
        soc = energy_trajectory(cp, pc, pd) / cp.e_cap_kwh[cp.k_sess]
        assert np.all(soc >= -TOL)
        assert np.all(soc <= 1.0 + TOL)


@settings(max_examples=150, deadline=None)
@given(fleets())
def test_vectorised_allocation_equals_the_one_by_one_greedy(problem):
    cp = compile_problem(problem)
    pc, _, _ = heuristic_powers(cp)
    np.testing.assert_allclose(pc, _reference_powers(cp), atol=1e-7)
