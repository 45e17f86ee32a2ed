"""Loading scenario files into FleetProblems: the shipped scenarios and the format's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aggregator.scenario import load_scenario
from tests.scenario.scenario_data import SCENARIOS, base_doc, write_price_csv


def test_depot_scenario_loads_with_expected_fleet() -> None:
    problem = load_scenario(SCENARIOS / "depot_v2g_dr.yaml")

    assert problem.grid.start == datetime(2024, 5, 14, 12, tzinfo=UTC)  # 14:00 CEST
    assert problem.grid.step == timedelta(minutes=15)
    assert problem.grid.n_slots == 96
    assert [s.site_id for s in problem.sites] == ["depot-north", "office-south"]
    assert len(problem.chargers) == 11
    assert len(problem.vehicles) == 11
    assert len(problem.sessions) == 13
    assert [b.site_id for b in problem.batteries] == ["depot-north"]
    assert sum(c.bidirectional for c in problem.chargers) == 5
    assert sum(v.v2g_allowed for v in problem.vehicles) == 5
    kinds = {e.event_id: (e.cap_kw is not None, e.shed_kw is not None) for e in problem.events}
    assert kinds == {"dr-evening-cap": (True, False), "dr-morning-shed": (False, True)}
    assert problem.degradation_cost_per_mwh == 40


def test_depot_scenario_takes_vehicle_defaults_from_model_specs() -> None:
    problem = load_scenario(SCENARIOS / "depot_v2g_dr.yaml")

    id4 = problem.vehicle_by_id["ev-01"]  # Volkswagen ID.4 in the ev2gym specs
    assert (id4.battery_kwh, id4.max_charge_kw, id4.max_discharge_kw) == (77.0, 11.0, 11.0)
    assert id4.charge_efficiency == 0.9
    assert problem.vehicle_by_id["ev-08"].max_charge_kw == 7.4  # Peugeot 208
    # Explicit keys win over defaults.
    assert problem.vehicle_by_id["ev-10"].charge_efficiency == 0.9


def test_depot_scenario_prices_are_the_real_hourly_prices_held_per_slot() -> None:
    problem = load_scenario(SCENARIOS / "depot_v2g_dr.yaml")

    prices = problem.prices.import_per_mwh
    # 2024-05-14 12:00Z and 13:00Z in the NL day-ahead data.
    assert prices[:8] == (-57.02,) * 4 + (-35.0,) * 4
    assert problem.prices.export_per_mwh == prices


def test_caltech_scenario_keeps_the_sessions_plugged_in_during_the_day() -> None:
    problem = load_scenario(SCENARIOS / "caltech_day.yaml")

    grid = problem.grid
    assert grid.start == datetime(2019, 3, 5, 8, tzinfo=UTC)  # midnight PST
    assert grid.n_slots == 96
    assert len(problem.sessions) == 38  # of 110 rows in the shipped file
    assert all(s.departure > grid.start and s.arrival < grid.end for s in problem.sessions)
    assert len(problem.chargers) == 31  # one per station with a session that day
    assert {c.site_id for c in problem.chargers} == {"caltech"}
    assert {c.max_charge_kw for c in problem.chargers} == {6.6}
    assert len(problem.vehicles) == 38
    assert all(s.energy_kwh is not None and s.target_soc is None for s in problem.sessions)
    assert all(s.arrival_soc == 0.2 for s in problem.sessions)


def test_times_with_offsets_are_converted_to_utc(write_scenario) -> None:
    doc = base_doc()
    doc["start"] = "2024-05-14T02:00:00+02:00"
    doc["sessions"][0]["arrival"] = "2024-05-14T02:30:00+02:00"

    problem = load_scenario(write_scenario(doc))

    assert problem.grid.start == datetime(2024, 5, 14, 0, tzinfo=UTC)
    assert problem.grid.start.utcoffset() == timedelta(0)
    assert problem.sessions[0].arrival == datetime(2024, 5, 14, 0, 30, tzinfo=UTC)


def test_scalar_series_expand_to_every_slot_and_lists_pass_through(write_scenario) -> None:
    doc = base_doc()
    doc["sites"][0]["base_load_kw"] = 5
    doc["sites"][0]["pv_kw"] = [float(i) for i in range(16)]
    doc["prices"] = {"import": 80, "export": 30}

    problem = load_scenario(write_scenario(doc))

    site = problem.sites[0]
    assert site.base_load_kw == (5.0,) * 16
    assert site.pv_kw == tuple(float(i) for i in range(16))
    assert problem.prices.import_per_mwh == (80.0,) * 16
    assert problem.prices.export_per_mwh == (30.0,) * 16


def test_optional_fields_get_their_defaults(write_scenario) -> None:
    problem = load_scenario(write_scenario(base_doc()))

    site = problem.sites[0]
    assert (site.export_limit_kw, site.base_load_kw, site.pv_kw) == (0.0, (), ())
    assert problem.charger_by_id["c2"].max_discharge_kw == 0.0
    v2 = problem.vehicle_by_id["v2"]
    assert (v2.max_discharge_kw, v2.v2g_allowed) == (0.0, False)
    assert problem.sessions[0].min_soc == 0.0
    assert problem.degradation_cost_per_mwh == 0.0
    assert problem.events[0].site_ids == frozenset()


def test_site_battery_is_built_from_the_site_entry(write_scenario) -> None:
    doc = base_doc()
    doc["sites"][0]["battery"] = {
        "capacity_kwh": 100,
        "max_charge_kw": 40,
        "max_discharge_kw": 30,
        "initial_soc": 0.6,
    }

    problem = load_scenario(write_scenario(doc))

    (battery,) = [b for b in problem.batteries if b.site_id == "depot"]
    assert (battery.capacity_kwh, battery.max_charge_kw, battery.max_discharge_kw) == (
        100,
        40,
        30,
    )
    assert battery.initial_soc == 0.6


def test_price_csv_path_is_relative_to_the_yaml_folder(tmp_path, write_scenario) -> None:
    (tmp_path / "data").mkdir()
    hours = [f"2024-05-14T{h:02d}:00:00Z" for h in range(5)]
    write_price_csv(tmp_path / "data" / "p.csv", [(h, 10.0 * i) for i, h in enumerate(hours)])
    write_price_csv(tmp_path / "data" / "x.csv", [(h, 1.0) for h in hours])
    doc = base_doc()
    doc["prices"] = {"csv": "data/p.csv", "export_csv": "data/x.csv"}

    problem = load_scenario(write_scenario(doc))

    assert problem.prices.import_per_mwh == tuple(10.0 * (i // 4) for i in range(16))
    assert problem.prices.export_per_mwh == (1.0,) * 16


def test_price_csv_column_can_be_chosen(tmp_path, write_scenario) -> None:
    rows = "\n".join(f"2024-05-14T{h:02d}:00:00Z,1,{h}" for h in range(5))
    (tmp_path / "p.csv").write_text(f"start,price_eur_per_mwh,other\n{rows}\n")
    doc = base_doc()
    doc["prices"] = {"csv": "p.csv", "column": "other"}

    problem = load_scenario(write_scenario(doc))

    assert problem.prices.import_per_mwh[::4] == (0.0, 1.0, 2.0, 3.0)


def test_numeric_ids_are_read_as_text(write_scenario) -> None:
    doc = base_doc()
    doc["chargers"][1]["id"] = 42
    doc["sessions"][1]["charger"] = 42

    problem = load_scenario(write_scenario(doc))

    assert problem.sessions[1].charger_id == "42"
