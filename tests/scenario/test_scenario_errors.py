"""Bad input: `aggregator plan` exits with code 2 and one line naming file, entry and reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aggregator.cli import app
from aggregator.scenario import ScenarioError, load_scenario
from tests.scenario.scenario_data import base_doc, write_price_csv

Doc = dict[str, Any]


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    """A mutation setting ``doc[a][b]...`` from a dotted path with list indices as numbers."""

    def mutate(doc: Doc) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = doc
        for key in parents:
            target = target[key]
        target[last] = value

    return mutate


def _delete(path: str) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = doc
        for key in parents:
            target = target[key]
        del target[last]

    return mutate


# (mutation, expected "<entry>: <reason>" part of the message)
CASES: dict[str, tuple[Callable[[Doc], None], str]] = {
    "unknown charger": (
        _set("sessions.1.charger", "c9"),
        "sessions[1] (id s2): charger: unknown charger 'c9'",
    ),
    "departure before arrival": (
        _set("sessions.2.departure", "2024-05-14T02:00:00Z"),
        "sessions[2] (id s3): departure: must be after arrival",
    ),
    "soc above one": (
        _set("sessions.0.target_soc", 1.2),
        "sessions[0] (id s1): target_soc: must be within [0, 1], got 1.2",
    ),
    "negative limit": (
        _set("sites.0.import_limit_kw", -5),
        "sites[0] (id depot): import_limit_kw: must be >= 0, got -5.0",
    ),
    "overlapping sessions on one charger": (
        _set("sessions.1.charger", "c1"),
        "sessions[1] (id s2): arrival: overlaps session s1 on charger c1",
    ),
    "missing price file": (
        _set("prices", {"csv": "missing.csv"}),
        "prices.csv: cannot read missing.csv: No such file or directory",
    ),
    "missing field": (
        _delete("sites.0.import_limit_kw"),
        "sites[0] (id depot): import_limit_kw: field required",
    ),
    "missing top-level field": (_delete("start"), "start: field required"),
    "wrong type": (
        _set("vehicles.0.battery_kwh", "lots"),
        "vehicles[0] (id v1): battery_kwh: input should be a valid number, unable to parse string "
        "as a number, got 'lots'",
    ),
    "wrong type in a series": (
        _set("sites.0.pv_kw", [1, "sunny"]),
        "sites[0] (id depot): pv_kw: must be a list of numbers: must be a number, got 'sunny'",
    ),
    "misspelt key": (
        _set("vehicles.0.batery_kwh", 60),
        "vehicles[0] (id v1): batery_kwh: extra inputs are not permitted",
    ),
    "naive start time": (
        _set("start", "2024-05-14T00:00:00"),
        "start: input should have timezone info, got '2024-05-14T00:00:00'",
    ),
    "naive session time": (
        _set("sessions.0.arrival", "2024-05-14T00:00:00"),
        "sessions[0] (id s1): arrival: input should have timezone info, got '2024-05-14T00:00:00'",
    ),
    "step not positive": (
        _set("step_minutes", 0),
        "step_minutes: input should be greater than 0, got 0",
    ),
    "horizon not whole slots": (
        _set("horizon_hours", 4.1),
        "horizon_hours: 4.1 h is not a whole number of 15-minute slots",
    ),
    "price list of wrong length": (
        _set("prices", {"import": [1, 2, 3]}),
        "prices: import: has 3 values, the horizon has 16 slots",
    ),
    "prices with two sources": (
        _set("prices", {"import": 1, "csv": "p.csv"}),
        "prices: give either import (inline prices) or csv (a price file)",
    ),
    "series of wrong length": (
        _set("sites.0.base_load_kw", [1, 2]),
        "sites[0] (id depot): base_load_kw: has 2 slots, grid has 16",
    ),
    "duplicate id": (_set("vehicles.1.id", "v1"), "vehicles[1] (id v1): id: is not unique"),
    "unknown event site": (
        _set("events.0.sites", ["nowhere"]),
        "events[0] (id e1): sites: unknown site 'nowhere'",
    ),
    "event with cap and shed": (
        _set("events.0.shed_kw", 5),
        "events[0] (id e1): cap_kw: give exactly one of cap_kw, shed_kw",
    ),
    "session outside the horizon": (
        lambda doc: doc["sessions"][2].update(
            arrival="2024-05-14T05:00:00Z", departure="2024-05-14T06:00:00Z"
        ),
        "sessions[2] (id s3): arrival: lies outside the planning horizon",
    ),
    "battery floor above start": (
        _set(
            "sites.0.battery",
            {
                "capacity_kwh": 10,
                "max_charge_kw": 5,
                "max_discharge_kw": 5,
                "initial_soc": 0.2,
                "min_soc": 0.5,
            },
        ),
        "sites[0] (id depot): battery.min_soc: must be <= initial_soc",
    ),
    "vehicle model without specs": (
        _set("vehicles.1.model", "Kia Niro"),
        "vehicles[1] (id v2): model: needs a top-level vehicle_specs file",
    ),
    "vehicle without battery": (
        _delete("vehicles.1.battery_kwh"),
        "vehicles[1] (id v2): battery_kwh: field required (or give model)",
    ),
    "sessions file missing": (
        _set("sessions_csv", {"path": "nope.csv", "site": "depot"}),
        "sessions_csv.path: cannot read nope.csv: No such file or directory",
    ),
    "sessions file at unknown site": (
        _set("sessions_csv", {"path": "nope.csv", "site": "elsewhere"}),
        "sessions_csv: site: unknown site 'elsewhere'",
    ),
}


def _run(*args: str):
    return CliRunner().invoke(app, ["plan", *args])


def _assert_one_line_error(result, scenario: Path, expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == f"{scenario}: {expected}"


@pytest.mark.parametrize("case", CASES, ids=CASES.keys())
def test_bad_scenario_exits_2_with_one_line_naming_file_entry_and_reason(
    case: str, tmp_path: Path, write_scenario
) -> None:
    mutate, expected = CASES[case]
    doc = base_doc()
    mutate(doc)
    scenario = write_scenario(doc)

    result = _run(str(scenario), "--out", str(tmp_path / "out"))

    _assert_one_line_error(result, scenario, expected)
    assert not (tmp_path / "out").exists()


def test_loader_raises_one_scenario_error_with_its_parts(write_scenario) -> None:
    doc = base_doc()
    doc["sessions"][1]["charger"] = "c9"

    with pytest.raises(ScenarioError) as caught:
        load_scenario(write_scenario(doc))

    assert caught.value.entry == "sessions[1] (id s2)"
    assert caught.value.reason == "charger: unknown charger 'c9'"


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    scenario = tmp_path / "broken.yaml"
    scenario.write_text("start: 2024-05-14T00:00:00Z\nsites: [\n  {id: a\n")

    result = _run(str(scenario), "--out", str(tmp_path / "out"))

    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{scenario}: line 4 column 1: invalid YAML: ")


@pytest.mark.parametrize(("text", "got"), [("", "an empty file"), ("- 1\n- 2\n", "list")])
def test_scenario_that_is_not_a_mapping_is_rejected(tmp_path: Path, text: str, got: str) -> None:
    scenario = tmp_path / "list.yaml"
    scenario.write_text(text)

    result = _run(str(scenario), "--out", str(tmp_path / "out"))

    _assert_one_line_error(result, scenario, f"top level: must be a mapping of keys, got {got}")


def test_missing_scenario_file_is_one_line(tmp_path: Path) -> None:
    scenario = tmp_path / "nope.yaml"

    result = _run(str(scenario), "--out", str(tmp_path / "out"))

    _assert_one_line_error(result, scenario, "cannot read: No such file or directory")


def test_price_file_not_covering_the_horizon_is_rejected(tmp_path: Path, write_scenario) -> None:
    write_price_csv(
        tmp_path / "p.csv", [("2024-05-14T00:00:00Z", 1.0), ("2024-05-14T01:00:00Z", 2.0)]
    )
    doc = base_doc()
    doc["prices"] = {"csv": "p.csv"}
    scenario = write_scenario(doc)

    result = _run(str(scenario), "--out", str(tmp_path / "out"))

    _assert_one_line_error(
        result,
        scenario,
        "prices.csv: p.csv covers 2024-05-14T00:00:00+00:00 to 2024-05-14T02:00:00+00:00, "
        "not the horizon 2024-05-14T00:00:00+00:00 to 2024-05-14T04:00:00+00:00",
    )


def test_bad_row_in_sessions_file_names_its_line(tmp_path: Path, write_scenario) -> None:
    (tmp_path / "s.csv").write_text(
        "session_id,station_id,arrival,departure,energy_requested_kwh,max_power_kw\n"
        "a,X,2024-05-14T01:00:00+00:00,2024-05-14T02:00:00+00:00,3,6.6\n"
        "b,Y,2024-05-14T03:00:00+00:00,2024-05-14T02:00:00+00:00,3,6.6\n"
    )
    doc = base_doc()
    doc["sessions_csv"] = {"path": "s.csv", "site": "depot"}
    scenario = write_scenario(doc)

    result = _run(str(scenario), "--out", str(tmp_path / "out"))

    _assert_one_line_error(
        result,
        scenario,
        "sessions_csv s.csv line 3 (session_id b): departure: must be after arrival",
    )


def test_unwritable_out_folder_exits_2_with_one_line(tmp_path: Path, write_scenario) -> None:
    scenario = write_scenario(base_doc())
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "out"

    result = _run(str(scenario), "--out", str(out))

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"{out}: cannot write output folder: Not a directory"]


def test_non_positive_time_limit_exits_2_with_one_line(tmp_path: Path, write_scenario) -> None:
    scenario = write_scenario(base_doc())

    result = _run(str(scenario), "--out", str(tmp_path / "out"), "--time-limit", "0")

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "--time-limit: must be a positive number of seconds, got 0"
    ]
