"""ACN-style session files: rows become sessions, vehicles and chargers within the horizon."""

from __future__ import annotations

from pathlib import Path

from aggregator.scenario import load_scenario
from tests.scenario.scenario_data import base_doc

HEADER = "session_id,station_id,arrival,departure,energy_requested_kwh,max_power_kw"
ROWS = [
    # Before the horizon (2024-05-14 00:00 to 04:00 UTC): dropped.
    "early,A,2024-05-13T20:00:00+00:00,2024-05-14T00:00:00+00:00,5.0,6.6",
    # Plugged in across the start: kept.
    "across-start,A,2024-05-13T22:00:00+00:00,2024-05-14T01:00:00+00:00,4.0,6.6",
    # Inside: kept.
    "inside,B,2024-05-14T01:00:00+00:00,2024-05-14T02:30:00+00:00,3.5,7.2",
    # Plugged in across the end: kept.
    "across-end,A,2024-05-14T03:00:00+00:00,2024-05-14T09:00:00+00:00,12.0,6.6",
    # After the horizon: dropped.
    "late,C,2024-05-14T04:00:00+00:00,2024-05-14T06:00:00+00:00,2.0,6.6",
]


def _scenario(tmp_path: Path, write_scenario, **cfg) -> Path:
    (tmp_path / "sessions.csv").write_text("\n".join([HEADER, *ROWS]) + "\n")
    doc = base_doc()
    doc["sessions_csv"] = {"path": "sessions.csv", "site": "depot", **cfg}
    return write_scenario(doc)


def test_only_sessions_overlapping_the_horizon_are_kept(tmp_path, write_scenario) -> None:
    problem = load_scenario(_scenario(tmp_path, write_scenario))

    from_csv = [s.session_id for s in problem.sessions if not s.session_id.startswith("s")]
    assert from_csv == ["across-start", "inside", "across-end"]


def test_each_row_becomes_a_session_with_its_own_vehicle(tmp_path, write_scenario) -> None:
    problem = load_scenario(_scenario(tmp_path, write_scenario))

    session = next(s for s in problem.sessions if s.session_id == "inside")
    assert session.energy_kwh == 3.5
    assert session.target_soc is None
    assert session.arrival_soc == 0.2
    assert session.charger_id == "B"
    vehicle = problem.vehicle_by_id[session.vehicle_id]
    assert vehicle.vehicle_id == "ev-inside"
    assert (vehicle.battery_kwh, vehicle.max_charge_kw, vehicle.v2g_allowed) == (75.0, 7.2, False)


def test_chargers_are_created_per_station_at_the_given_site(tmp_path, write_scenario) -> None:
    problem = load_scenario(_scenario(tmp_path, write_scenario))

    created = {c.charger_id: c for c in problem.chargers if c.charger_id in {"A", "B", "C"}}
    assert set(created) == {"A", "B"}  # C only has a session after the horizon
    assert {c.site_id for c in created.values()} == {"depot"}
    assert created["A"].max_charge_kw == 6.6
    assert created["B"].max_charge_kw == 7.2


def test_settings_override_the_file_defaults(tmp_path, write_scenario) -> None:
    cfg = {
        "charger_max_kw": 11,
        "vehicle": {"battery_kwh": 50, "arrival_soc": 0.4, "v2g": True, "max_discharge_kw": 5},
    }
    problem = load_scenario(_scenario(tmp_path, write_scenario, **cfg))

    assert problem.charger_by_id["A"].max_charge_kw == 11
    vehicle = problem.vehicle_by_id["ev-inside"]
    assert (vehicle.battery_kwh, vehicle.v2g_allowed, vehicle.max_discharge_kw) == (50, True, 5)
    assert next(s for s in problem.sessions if s.session_id == "inside").arrival_soc == 0.4


def test_declared_charger_is_used_instead_of_creating_one(tmp_path, write_scenario) -> None:
    path = _scenario(tmp_path, write_scenario)
    doc_text = path.read_text().replace(
        "chargers:\n", "chargers:\n- {id: B, site: depot, max_charge_kw: 22}\n", 1
    )
    path.write_text(doc_text)

    problem = load_scenario(path)

    assert [c.charger_id for c in problem.chargers].count("B") == 1
    assert problem.charger_by_id["B"].max_charge_kw == 22
