"""The flexibility envelope: per-slot session bounds, site clipping, the uncontrolled baseline."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from aggregator.ports import EnvelopeCalculator
from models.envelope import (
    EnvelopeModel,
    envelope_bounds,
    session_bounds,
    uncontrolled_powers,
    uncontrolled_profile,
)
from models.planner.compiled import CompiledProblem, compile_problem
from tests.fleet_builders import ev, make_problem


def _bounds(problem):
    return envelope_bounds(compile_problem(problem))


def test_min_at_most_baseline_at_most_max_when_site_limits_do_not_bind():
    problem = make_problem(
        [
            ev(0, 6, arrival_soc=0.2, target_soc=0.8),
            ev(1, 8, arrival_soc=0.5, target_soc=0.9, v2g=True),
            ev(2, 5, arrival_soc=0.1, energy_kwh=25.0),
        ],
        export_limit_kw=1000.0,
    )
    cp = compile_problem(problem)
    min_kw, max_kw = envelope_bounds(cp)
    baseline = uncontrolled_profile(cp)
    assert np.all(min_kw <= baseline + 1e-9)
    assert np.all(baseline <= max_kw + 1e-9)
    assert np.all(min_kw < max_kw)


def test_uncontrolled_baseline_charges_flat_out_until_the_target():
    # 12 -> 48 kWh at 10 kW: 10, 10, 10, 6, then nothing; site limit ignored on purpose.
    problem = make_problem([ev(0, 6, arrival_soc=0.2, target_soc=0.8)], site_limit_kw=5.0)
    cp = compile_problem(problem)
    assert uncontrolled_powers(cp) == pytest.approx([10.0, 10.0, 10.0, 6.0, 0.0, 0.0])
    assert uncontrolled_profile(cp) == pytest.approx([10.0, 10.0, 10.0, 6.0, 0, 0, 0, 0])


def test_least_power_of_a_one_way_session_is_what_its_slack_cannot_cover():
    # 55 kWh in 6 h at 10 kW leaves 5 kWh of slack: any one slot may drop to 5 kW, no lower.
    cp = compile_problem(make_problem([ev(0, 6, arrival_soc=0.0, energy_kwh=55.0)]))
    least, most = session_bounds(cp)
    assert least == pytest.approx([5.0] * 6)
    assert most == pytest.approx([10.0] * 6)


def test_session_without_slack_must_charge_flat_out():
    problem = make_problem([ev(0, 4, arrival_soc=0.0, energy_kwh=40.0)], n_slots=4)
    min_kw, max_kw = _bounds(problem)
    assert min_kw == pytest.approx([10.0] * 4)
    assert max_kw == pytest.approx([10.0] * 4)


def test_unreachable_target_pins_min_and_max_to_full_power():
    problem = make_problem([ev(0, 3, arrival_soc=0.0, energy_kwh=50.0)], n_slots=4)
    min_kw, max_kw = _bounds(problem)
    assert min_kw == pytest.approx([10.0, 10.0, 10.0, 0.0])
    assert max_kw == pytest.approx([10.0, 10.0, 10.0, 0.0])


def test_v2g_session_offers_discharge_down_to_its_limit():
    problem = make_problem(
        [ev(0, 8, arrival_soc=0.5, target_soc=0.6, v2g=True, max_discharge_kw=7.0)],
        export_limit_kw=100.0,
    )
    min_kw, max_kw = _bounds(problem)
    assert min_kw[0] == pytest.approx(-7.0)
    assert np.all(min_kw[:6] < 0)
    assert max_kw == pytest.approx([10.0] * 8)


def test_v2g_discharge_stops_at_min_soc():
    # 30 kWh in, floor 27 kWh, target below arrival: only 3 kWh may leave in slot 0.
    problem = make_problem(
        [ev(0, 4, arrival_soc=0.5, target_soc=0.45, min_soc=0.45, v2g=True)],
        export_limit_kw=100.0,
    )
    least, _ = session_bounds(compile_problem(problem))
    assert least[0] == pytest.approx(-3.0)


def test_battery_room_caps_the_maximum_unless_v2g_makes_room_first():
    full_ish = {"arrival_soc": 0.95, "target_soc": 0.95}
    one_way = compile_problem(make_problem([ev(0, 4, **full_ish)]))
    two_way = compile_problem(make_problem([ev(0, 4, v2g=True, **full_ish)]))
    assert session_bounds(one_way)[1] == pytest.approx([3.0] * 4)
    # Discharging 10 kWh in slot 0 leaves room to charge at full power afterwards.
    assert session_bounds(two_way)[1] == pytest.approx([3.0, 10.0, 10.0, 10.0])


def test_site_headroom_clips_both_bounds():
    # Two vehicles with no slack need 20 kW; limit 15 kW minus 5 kW base load leaves 10 kW.
    problem = make_problem(
        [ev(0, 2, arrival_soc=0.0, energy_kwh=20.0), ev(0, 2, arrival_soc=0.0, energy_kwh=20.0)],
        n_slots=2,
        site_limit_kw=15.0,
        base_load_kw=[5.0, 5.0],
    )
    min_kw, max_kw = _bounds(problem)
    assert min_kw == pytest.approx([10.0, 10.0])
    assert max_kw == pytest.approx([10.0, 10.0])


def test_sites_are_clipped_separately_then_summed():
    problem = make_problem(
        [ev(0, 4, site="tight"), ev(0, 4, site="roomy")],
        n_slots=4,
        site_limit_kw={"tight": 4.0, "roomy": 100.0},
    )
    _, max_kw = _bounds(problem)
    assert max_kw == pytest.approx([14.0] * 4)


def test_base_load_above_the_limit_pins_a_one_way_fleet_to_zero():
    problem = make_problem([ev(0, 2)], n_slots=2, site_limit_kw=10.0, base_load_kw=[12.0, 0.0])
    min_kw, max_kw = _bounds(problem)
    assert (min_kw[0], max_kw[0]) == (0.0, 0.0)
    assert max_kw[1] == pytest.approx(10.0)


def test_export_limit_bounds_the_v2g_minimum():
    problem = make_problem(
        [ev(0, 4, arrival_soc=0.8, target_soc=0.5, v2g=True)], n_slots=4, export_limit_kw=4.0
    )
    min_kw, _ = _bounds(problem)
    assert min_kw == pytest.approx([-4.0] * 4)


def test_pv_surplus_beyond_the_export_limit_raises_the_minimum():
    problem = make_problem([ev(0, 4)], n_slots=4, pv_kw=[6.0, 0.0, 0.0, 0.0])
    min_kw, _ = _bounds(problem)
    assert min_kw[0] == pytest.approx(6.0)


def test_envelope_model_serves_the_envelope_port():
    problem = make_problem([ev(0, 6, arrival_soc=0.2, target_soc=0.8)])
    calculator: EnvelopeCalculator = EnvelopeModel()
    envelope = calculator.envelope(problem)
    assert envelope.grid == problem.grid
    assert len(envelope.min_kw) == len(envelope.max_kw) == len(envelope.baseline_kw) == 8
    assert envelope.baseline_kw[:4] == pytest.approx((10.0, 10.0, 10.0, 6.0))
    assert all(isinstance(v, float) for v in envelope.min_kw)


def test_problem_without_sessions_has_a_zero_envelope():
    envelope = EnvelopeModel().envelope(make_problem([], n_slots=3))
    assert envelope.min_kw == envelope.max_kw == envelope.baseline_kw == (0.0, 0.0, 0.0)


def _lp_extremes(cp: CompiledProblem, j: int) -> tuple[float, float] | None:
    """Least and most power of session 0 in its j-th slot by LP, or None when infeasible."""
    n = cp.n_session_slots
    dt, eta_c, eta_d = cp.dt_h, float(cp.eta_c[0]), float(cp.eta_d[0])
    # Variables: pc_0..pc_{n-1}, pd_0..pd_{n-1}; energy after slot m = e0 + lower-tri sums.
    tri = np.tril(np.ones((n, n)))
    energy = np.hstack([eta_c * dt * tri, -dt / eta_d * tri])
    e0 = float(cp.e0_kwh[0])
    a_ub = np.vstack([energy, -energy, -energy[-1:]])
    b_ub = np.concatenate(
        [
            np.full(n, cp.e_cap_kwh[0] - e0),
            np.full(n, e0 - cp.e_floor_kwh[0]),
            [e0 - cp.e_req_kwh[0]],
        ]
    )
    bounds = [(0.0, float(u)) for u in cp.pc_ub_kw] + [(0.0, float(u)) for u in cp.pd_ub_kw]
    power = np.zeros(2 * n)
    power[j], power[n + j] = 1.0, -1.0
    # The most power does not discharge in slot j: the envelope leaves out burning energy by
    # charging and discharging at once (round-trip loss as a load). Cycling never lowers the
    # least power, so that side needs no such rule.
    no_discharge = list(bounds)
    no_discharge[n + j] = (0.0, 0.0)
    low = linprog(power, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    high = linprog(-power, A_ub=a_ub, b_ub=b_ub, bounds=no_discharge, method="highs")
    if low.status == 2:
        return None
    return float(low.fun), float(-high.fun)


@settings(max_examples=60, deadline=None)
@given(
    arrival=st.floats(0.0, 1.0),
    length=st.integers(1, 5),
    arrival_soc=st.floats(0.0, 1.0),
    target_soc=st.floats(0.0, 1.0),
    min_soc=st.floats(0.0, 1.0),
    v2g=st.booleans(),
    max_charge_kw=st.floats(1.0, 22.0),
    max_discharge_kw=st.floats(1.0, 22.0),
    charge_efficiency=st.floats(0.8, 1.0),
    discharge_efficiency=st.floats(0.8, 1.0),
)
def test_session_bounds_equal_the_per_slot_lp_extremes(
    arrival,
    length,
    arrival_soc,
    target_soc,
    min_soc,
    v2g,
    max_charge_kw,
    max_discharge_kw,
    charge_efficiency,
    discharge_efficiency,
):
    spec = ev(
        arrival,
        arrival + length,
        arrival_soc=arrival_soc,
        target_soc=target_soc,
        min_soc=min(min_soc, target_soc),
        battery_kwh=40.0,
        v2g=v2g,
        max_charge_kw=max_charge_kw,
        max_discharge_kw=max_discharge_kw,
        charge_efficiency=charge_efficiency,
        discharge_efficiency=discharge_efficiency,
    )
    cp = compile_problem(make_problem([spec], n_slots=7))
    least, most = session_bounds(cp)
    for j in range(cp.n_session_slots):
        extremes = _lp_extremes(cp, j)
        if extremes is None:  # out of reach: the envelope says "flat out"
            assert least[j] == pytest.approx(cp.pc_ub_kw[j])
            assert most[j] == pytest.approx(cp.pc_ub_kw[j])
        else:
            assert least[j] == pytest.approx(extremes[0], abs=1e-6)
            assert most[j] == pytest.approx(extremes[1], abs=1e-6)
