"""``aggregator backtest``: a table and JSON on a small slice; bad input exits 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aggregator.cli import app
from tests.forecast.conftest import PRICES_SLICE, ROOT, SESSIONS

SLICE = [
    "--prices",
    str(PRICES_SLICE),
    "--start",
    "2023-12-01",
    "--end",
    "2023-12-07",
    "--sessions",
    str(SESSIONS),
    "--session-start",
    "2019-03-25",
    "--session-end",
    "2019-03-27",
]


def _invoke(*args: str):
    return CliRunner().invoke(app, ["backtest", *args])


def test_backtest_prints_tables_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "results" / "backtest.json"
    result = _invoke(*SLICE, "--out", str(out))

    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())  # rich wraps titles to the terminal
    assert "Prices (EUR/MWh): 7 daily origins 2023-12-01 to 2023-12-07, next 48 h" in text
    assert "Sessions: 3 days 2019-03-25 to 2019-03-27" in text
    assert "arrival (h)" in text and "energy (kWh)" in text and "ratio" in text
    report = json.loads(out.read_text())
    assert report["prices"]["origins"] == 7
    assert report["prices"]["timezone"] == "Europe/Amsterdam"
    assert set(report["prices"]["overall"]) == {"model", "naive", "ratio_model_to_naive"}
    assert report["prices"]["normalised"] == [
        "line 2905 (2023-12-31T00:00:00+00:00) comes 2 h after line 2904 "
        "(2023-12-30T22:00:00+00:00): 1 h missing, the previous price holds"
    ]
    assert report["sessions"]["days"] == 3
    assert report["sessions"]["first_day"] == "2019-03-25"
    for key in ("arrival_hours", "departure_hours", "energy_kwh"):
        assert report["sessions"][key]["model"]["pinball"].keys() == {"q10", "q50", "q90"}


def test_json_only_on_stdout(tmp_path: Path) -> None:
    out = str(tmp_path / "b.json")
    result = _invoke(
        *SLICE, "--no-sessions", "--json", "--quantiles", "0.25,0.5,0.75", "--out", out
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"prices"}
    assert report["prices"]["quantiles"] == [0.25, 0.5, 0.75]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prices", "nowhere.csv", "--no-sessions"], "--prices: nowhere.csv: no such file"),
        (["--no-prices", "--sessions", "nowhere.csv"], "--sessions: nowhere.csv: no such file"),
        (["--no-prices", "--no-sessions"], "nothing left to backtest"),
        (["--quantiles", "0.1,x"], "--quantiles: '0.1,x' is not a comma-separated list"),
        (["--quantiles", "0.5,1"], "--quantiles: every level must lie strictly between 0 and 1"),
        (["--start", "1 Dec"], "--start: '1 Dec' is not a date (YYYY-MM-DD)"),
        (["--price-timezone", "Mars/Olympus", "--no-sessions"], "unknown zone 'Mars/Olympus'"),
        (["--horizon-hours", "0", "--no-sessions"], "horizon_hours: must be 1 to 336"),
        (["--start", "2030-01-01", "--no-sessions"], "too short: no origin"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, tmp_path: Path) -> None:
    defaults = ["--prices", str(PRICES_SLICE), "--sessions", str(SESSIONS)]
    result = _invoke(*defaults, *args, "--out", str(tmp_path / "b.json"))

    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_a_bad_price_file_exits_2_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "p.csv"
    bad.write_text("start,price_eur_per_mwh\n2024-01-01T00:00:00Z,1\n01/01/2024 01:00,2\n")
    result = _invoke("--prices", str(bad), "--no-sessions", "--out", str(tmp_path / "b.json"))

    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{bad} line 3: start '01/01/2024 01:00' is not an ISO-8601 time with offset "
        "(give the offset, or the file's time zone)"
    )


def test_a_bad_sessions_file_exits_2_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "s.csv"
    bad.write_text(
        "session_id,station_id,arrival,departure,energy_requested_kwh,max_power_kw\n"
        "a,CA-1,2019-03-01T10:00:00+00:00,2019-03-01T09:00:00+00:00,5,6.6\n"
    )
    result = _invoke("--no-prices", "--sessions", str(bad), "--out", str(tmp_path / "b.json"))

    assert result.exit_code == 2
    assert result.stderr.strip() == f"{bad} line 2: departure: must be after arrival"


def test_the_default_price_file_is_the_one_beside_the_repository(full_prices, tmp_path) -> None:
    # Run from the repository root, as documented: ../shared/data/... is the default --prices.
    import os

    here = Path.cwd()
    os.chdir(ROOT)
    try:
        out = str(tmp_path / "b.json")
        result = _invoke(
            "--start", "2024-12-01", "--end", "2024-12-02", "--no-sessions", "--json", "--out", out
        )
    finally:
        os.chdir(here)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["prices"]["file"] == "../shared/data/nl_day_ahead_prices_2015-2024.csv"
    assert report["prices"]["origins"] == 2
