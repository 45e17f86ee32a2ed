"""`aggregator plan` end to end: the real planner on a shipped scenario, and its three files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from aggregator.cli import app
from aggregator.scenario import load_scenario
from tests.scenario.scenario_data import SCENARIOS, SUMMARY_KEYS

DEPOT = SCENARIOS / "depot_v2g_dr.yaml"
SCHEDULE_HEADER = [
    "slot_start",
    "session_id",
    "vehicle_id",
    "charger_id",
    "site_id",
    "power_kw",
    "soc",
]


def test_plan_writes_schedule_summary_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "out"

    result = CliRunner().invoke(app, ["plan", str(DEPOT), "--out", str(out), "--time-limit", "60"])

    assert result.exit_code == 0, result.output
    assert "status" in result.stdout and "depot-north" in result.stdout
    with (out / "schedule.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == SCHEDULE_HEADER
    session_ids = {s.session_id for s in load_scenario(DEPOT).sessions}
    assert {row[1] for row in rows[1:]} == session_ids
    assert all(row[0].endswith("Z") for row in rows[1:])
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == SUMMARY_KEYS
    assert summary["solver_path"] == "lp"
    assert summary["status"] == "ok"
    assert {s["site_id"] for s in summary["sites"]} == {"depot-north", "office-south"}
    assert len(summary["sessions"]) == 13
    assert [e["event_id"] for e in summary["events"]] == ["dr-evening-cap", "dr-morning-shed"]
    png = (out / "plan.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_json_flag_prints_exactly_the_summary_on_stdout(tmp_path: Path) -> None:
    out = tmp_path / "out"

    result = CliRunner().invoke(app, ["plan", str(DEPOT), "--out", str(out), "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((out / "summary.json").read_text())


def test_caltech_day_plans_on_the_lp_path_within_the_site_limit(tmp_path: Path) -> None:
    out = tmp_path / "caltech"
    result = CliRunner().invoke(
        app, ["plan", str(SCENARIOS / "caltech_day.yaml"), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["solver_path"], summary["status"]) == ("lp", "ok")
    (site,) = summary["sites"]
    assert site["peak_import_kw"] <= site["import_limit_kw"] + 1e-6
    assert all(s["shortfall_kwh"] == 0 for s in summary["sessions"])
