"""The pure site model: setpoints, fail-safe, limits, batteries, plug events and telemetry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.domain import Charger, FleetProblem, Prices, Session, Site, TimeGrid, Vehicle
from aggregator.scenario import load_scenario
from aggregator.simulation.model import SimulatedSite
from tests.simulation.sim_builders import SITE, T0, at, problem, setpoint

ROOT = Path(__file__).resolve().parents[2]


def energy(site: SimulatedSite) -> float:
    plugged = site.chargers["c0"].plugged
    assert plugged is not None
    return plugged.energy_kwh


def test_setpoint_is_integrated_with_charge_efficiency() -> None:
    site = SimulatedSite(problem(charge_efficiency=0.9), SITE)
    assert site.apply_setpoint(setpoint(10.0, valid_min=120))
    site.advance(at(60))
    assert energy(site) == pytest.approx(12.0 + 10.0 * 0.9)
    (reading,) = site.telemetry(at(60))
    assert reading.power_kw == pytest.approx(10.0)
    assert reading.status == "charging"


def test_discharge_draws_more_from_the_battery_than_it_exports() -> None:
    site = SimulatedSite(
        problem(v2g=True, charger_max_discharge_kw=10.0, discharge_efficiency=0.8, arrival_soc=0.5),
        SITE,
    )
    site.apply_setpoint(setpoint(-8.0, valid_min=120))
    site.advance(at(60))
    assert energy(site) == pytest.approx(30.0 - 8.0 / 0.8)
    (reading,) = site.telemetry(at(60))
    assert reading.power_kw == pytest.approx(-8.0)
    assert reading.status == "discharging"


def test_expired_setpoint_falls_back_to_safe_power_exactly_at_valid_until() -> None:
    site = SimulatedSite(problem(charge_efficiency=0.9), SITE, safe_power_kw=2.0)
    site.apply_setpoint(setpoint(10.0, valid_min=30))
    # One call across the expiry: the integration splits at valid_until.
    site.advance(at(60))
    assert energy(site) == pytest.approx(12.0 + (10.0 * 0.5 + 2.0 * 0.5) * 0.9)


def test_telemetry_switches_to_fallback_at_valid_until() -> None:
    site = SimulatedSite(problem(), SITE, safe_power_kw=2.0)
    site.apply_setpoint(setpoint(10.0, valid_min=30))
    (before,) = site.telemetry(at(30) - timedelta(microseconds=1))
    (after,) = site.telemetry(at(30))
    assert (before.power_kw, before.status) == (10.0, "charging")
    assert (after.power_kw, after.status) == (2.0, "fallback")


def test_no_setpoint_runs_on_safe_power_default_zero() -> None:
    site = SimulatedSite(problem(), SITE)
    (reading,) = site.telemetry(at(60))
    assert (reading.power_kw, reading.status) == (0.0, "fallback")
    assert energy(site) == pytest.approx(12.0)


def test_safe_power_can_be_set_per_charger() -> None:
    site = SimulatedSite(problem(), SITE, safe_power_kw={"c0": 3.0, "other": 9.0})
    site.advance(at(60))
    assert energy(site) == pytest.approx(15.0)


def test_stale_or_repeated_seq_is_ignored() -> None:
    site = SimulatedSite(problem(), SITE)
    assert site.apply_setpoint(setpoint(6.0, seq=5, valid_min=120))
    assert not site.apply_setpoint(setpoint(1.0, seq=3, valid_min=120))
    assert not site.apply_setpoint(setpoint(1.0, seq=5, valid_min=120))
    (reading,) = site.telemetry(at(10))
    assert reading.power_kw == 6.0
    assert site.apply_setpoint(setpoint(4.0, seq=6, valid_min=120))
    assert site.telemetry(at(10))[0].power_kw == 4.0


def test_setpoint_for_another_site_or_unknown_charger_is_ignored() -> None:
    site = SimulatedSite(problem(), SITE)
    assert not site.apply_setpoint(setpoint(6.0, site_id="elsewhere"))
    assert not site.apply_setpoint(setpoint(6.0, charger_id="c9"))
    assert site.chargers["c0"].setpoint is None


def test_apply_setpoint_at_a_time_keeps_the_old_setpoint_until_then() -> None:
    site = SimulatedSite(problem(), SITE)
    site.apply_setpoint(setpoint(10.0, seq=1, valid_min=120))
    site.apply_setpoint(setpoint(4.0, seq=2, valid_min=120), at=at(30))
    site.advance(at(60))
    assert energy(site) == pytest.approx(12.0 + 10.0 * 0.5 + 4.0 * 0.5)


@pytest.mark.parametrize(
    ("vehicle_max_kw", "charger_max_kw", "expected_kw"),
    [(7.0, 11.0, 7.0), (22.0, 11.0, 11.0)],
)
def test_charge_power_is_clipped_to_vehicle_and_charger_limits(
    vehicle_max_kw: float, charger_max_kw: float, expected_kw: float
) -> None:
    site = SimulatedSite(
        problem(vehicle_max_kw=vehicle_max_kw, charger_max_kw=charger_max_kw), SITE
    )
    site.apply_setpoint(setpoint(50.0, valid_min=120))
    (reading,) = site.telemetry(at(60))
    assert reading.power_kw == pytest.approx(expected_kw)
    assert energy(site) == pytest.approx(12.0 + expected_kw)


def test_discharge_power_is_clipped_to_vehicle_and_charger_limits() -> None:
    site = SimulatedSite(
        problem(
            v2g=True, arrival_soc=0.5, vehicle_max_discharge_kw=7.0, charger_max_discharge_kw=5.0
        ),
        SITE,
    )
    site.apply_setpoint(setpoint(-50.0, valid_min=120))
    assert site.telemetry(at(60))[0].power_kw == pytest.approx(-5.0)


@pytest.mark.parametrize(
    ("v2g", "charger_max_discharge_kw"),
    [(False, 10.0), (True, 0.0)],
    ids=["vehicle-without-v2g", "unidirectional-charger"],
)
def test_no_discharge_unless_vehicle_and_charger_allow_v2g(
    v2g: bool, charger_max_discharge_kw: float
) -> None:
    site = SimulatedSite(
        problem(v2g=v2g, charger_max_discharge_kw=charger_max_discharge_kw, arrival_soc=0.5),
        SITE,
    )
    site.apply_setpoint(setpoint(-10.0, valid_min=120))
    (reading,) = site.telemetry(at(60))
    assert reading.power_kw == 0.0
    assert reading.status == "idle"
    assert energy(site) == pytest.approx(30.0)


def test_full_battery_stops_charging() -> None:
    # 1 kWh of headroom at 10 kW: full after 6 minutes, then no more power.
    site = SimulatedSite(problem(battery_kwh=10.0, arrival_soc=0.9), SITE)
    site.apply_setpoint(setpoint(10.0, valid_min=120))
    (reading,) = site.telemetry(at(60))
    assert energy(site) == pytest.approx(10.0)
    assert reading.soc == pytest.approx(1.0)
    assert (reading.power_kw, reading.status) == (0.0, "idle")


def test_empty_battery_stops_discharging() -> None:
    site = SimulatedSite(
        problem(battery_kwh=10.0, arrival_soc=0.1, v2g=True, charger_max_discharge_kw=10.0),
        SITE,
    )
    site.apply_setpoint(setpoint(-10.0, valid_min=120))
    (reading,) = site.telemetry(at(60))
    assert energy(site) == 0.0
    assert reading.power_kw == 0.0


def test_vehicle_plugs_in_at_arrival_and_out_at_departure() -> None:
    site = SimulatedSite(problem(arrival_min=60, departure_min=180, target_soc=0.5), SITE)
    site.apply_setpoint(setpoint(10.0, valid_min=8 * 60, issued_min=60))
    (before,) = site.telemetry(at(59))
    assert (before.plugged, before.vehicle_id, before.power_kw, before.soc) == (
        False,
        None,
        0.0,
        None,
    )
    (arrived,) = site.telemetry(at(60))
    assert (arrived.plugged, arrived.vehicle_id) == (True, "v0")
    assert arrived.soc == pytest.approx(0.2)
    (left,) = site.telemetry(at(180))
    assert (left.plugged, left.power_kw, left.status) == (False, 0.0, "idle")
    (result,) = site.report()
    # Charged only while plugged: two hours at 10 kW.
    assert result.departed
    assert result.energy_kwh == pytest.approx(32.0)
    assert result.delivered_kwh == pytest.approx(20.0)
    assert result.target_kwh == pytest.approx(30.0)
    assert result.reached


def test_one_advance_across_arrival_and_departure_integrates_only_the_plugged_time() -> None:
    site = SimulatedSite(problem(arrival_min=90, departure_min=150), SITE)
    site.apply_setpoint(setpoint(10.0, valid_min=8 * 60, issued_min=90))
    site.advance(at(8 * 60))
    (result,) = site.report()
    assert result.energy_kwh == pytest.approx(12.0 + 10.0)
    assert result.soc == pytest.approx(22.0 / 60.0)
    assert not result.reached
    assert result.shortfall_kwh == pytest.approx(48.0 - 22.0)


def test_report_lists_plugged_sessions_only_when_asked() -> None:
    site = SimulatedSite(problem(), SITE)
    site.advance(at(30))
    assert site.report() == []
    (result,) = site.report(include_plugged=True)
    assert not result.departed
    assert result.soc == pytest.approx(0.2)


def test_session_that_arrived_before_start_is_plugged_at_start() -> None:
    site = SimulatedSite(problem(arrival_min=0, departure_min=300), SITE, start=at(120))
    assert site.now == at(120)
    (reading,) = site.telemetry(at(120))
    assert reading.plugged
    assert reading.soc == pytest.approx(0.2)


def test_session_gone_before_start_is_skipped() -> None:
    site = SimulatedSite(problem(arrival_min=0, departure_min=60), SITE, start=at(120))
    assert not site.telemetry(at(120))[0].plugged
    assert site.report() == []


def test_back_to_back_sessions_share_a_charger() -> None:
    vehicles = tuple(Vehicle(f"v{i}", 50.0, 10.0, charge_efficiency=1.0) for i in range(2))
    fleet = FleetProblem(
        grid=TimeGrid(T0, timedelta(hours=1), 4),
        sites=(Site(SITE, 100.0),),
        chargers=(Charger("c0", SITE, 10.0),),
        vehicles=vehicles,
        sessions=(
            Session("a", "v0", "c0", at(0), at(60), arrival_soc=0.1, target_soc=0.3),
            Session("b", "v1", "c0", at(60), at(120), arrival_soc=0.5, target_soc=0.9),
        ),
        prices=Prices.flat(1.0, 4),
    )
    site = SimulatedSite(fleet, SITE)
    site.apply_setpoint(setpoint(10.0, valid_min=240))
    (reading,) = site.telemetry(at(60))
    assert reading.vehicle_id == "v1"
    assert reading.soc == pytest.approx(0.5)
    site.advance(at(120))
    first, second = site.report()
    assert (first.session_id, first.reached, second.session_id) == ("a", True, "b")
    assert first.energy_kwh == pytest.approx(15.0)
    # The setpoint was issued for the first vehicle; the second stays on safe power (0 kW).
    assert second.energy_kwh == pytest.approx(25.0)


def test_telemetry_omits_soc_for_a_charger_that_cannot_read_it() -> None:
    site = SimulatedSite(problem(), SITE, reports_soc={"c0": False})
    (reading,) = site.telemetry(at(5))
    assert reading.plugged
    assert reading.vehicle_id == "v0"
    assert reading.soc is None
    assert (reading.site_id, reading.charger_id, reading.ts) == (SITE, "c0", at(5))


def test_site_power_adds_base_load_and_subtracts_pv_of_the_slot() -> None:
    site = SimulatedSite(
        problem(base_load_kw=(5.0, 7.0, 0, 0), pv_kw=(0, 3.0, 0, 0), n_slots=4), SITE
    )
    site.apply_setpoint(setpoint(10.0, valid_min=400))
    assert site.site_power_kw(at(30)) == pytest.approx(15.0)
    assert site.site_power_kw(at(90)) == pytest.approx(14.0)
    assert site.ev_power_kw(at(90)) == pytest.approx(10.0)
    # Beyond the horizon only the chargers count.
    assert site.site_power_kw(at(250)) == pytest.approx(10.0)


def test_time_never_goes_back() -> None:
    site = SimulatedSite(problem(), SITE)
    site.advance(at(10))
    with pytest.raises(ValueError, match="cannot go back"):
        site.advance(at(5))


def test_unknown_site_is_rejected() -> None:
    with pytest.raises(ValueError, match="not in the problem"):
        SimulatedSite(problem(), "nowhere")


@pytest.mark.parametrize("name", ["depot_v2g_dr.yaml", "caltech_day.yaml"])
def test_shipped_scenarios_simulate_a_whole_day_on_safe_power(name: str) -> None:
    fleet = load_scenario(ROOT / "config" / "scenarios" / name)
    sites = [SimulatedSite(fleet, s.site_id, safe_power_kw=3.0) for s in fleet.sites]
    end = fleet.grid.end
    readings = [r for site in sites for r in site.telemetry(end)]
    assert len(readings) == len(fleet.chargers)
    results = [r for site in sites for r in site.report(include_plugged=True)]
    in_horizon = {s.session_id for s in fleet.sessions}
    assert {r.session_id for r in results} == in_horizon
    assert all(0.0 <= r.soc <= 1.0 for r in results)


def test_a_setpoint_issued_before_the_vehicle_arrived_is_not_applied_to_it() -> None:
    # It was meant for the previous vehicle: the new one starts on safe power until the
    # aggregator has seen it arrive and sent a fresh setpoint.
    site = SimulatedSite(problem(arrival_min=60, departure_min=180), SITE, safe_power_kw=1.0)
    site.apply_setpoint(setpoint(10.0, valid_min=8 * 60, issued_min=30))
    (reading,) = site.telemetry(at(90))
    assert (reading.power_kw, reading.status) == (1.0, "fallback")
    site.apply_setpoint(setpoint(7.0, seq=2, valid_min=8 * 60, issued_min=91), at=at(91))
    (reading,) = site.telemetry(at(100))
    assert (reading.power_kw, reading.status) == (7.0, "charging")
