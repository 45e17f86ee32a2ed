"""Price files onto the planning grid: each slot takes the price of the interval it starts in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.domain import TimeGrid
from aggregator.scenario.errors import DataError
from aggregator.scenario.prices import prices_on_grid, read_price_csv
from tests.scenario.scenario_data import write_price_csv

T0 = datetime(2024, 5, 14, tzinfo=UTC)


def _hourly(tmp_path, prices: list[float], first_hour: int = 0):
    rows = [(f"2024-05-14T{first_hour + i:02d}:00:00Z", p) for i, p in enumerate(prices)]
    return read_price_csv(write_price_csv(tmp_path / "p.csv", rows), "p.csv")


def test_quarter_hour_slots_take_the_hourly_price(tmp_path) -> None:
    series = _hourly(tmp_path, [10.0, 20.0, 30.0])
    grid = TimeGrid(T0, timedelta(minutes=15), 8)

    assert prices_on_grid(series, grid, "p.csv") == (10.0,) * 4 + (20.0,) * 4


def test_slots_starting_mid_interval_take_that_interval_price(tmp_path) -> None:
    series = _hourly(tmp_path, [10.0, 20.0, 30.0])
    grid = TimeGrid(T0 + timedelta(minutes=30), timedelta(minutes=15), 6)

    assert prices_on_grid(series, grid, "p.csv") == (10.0, 10.0, 20.0, 20.0, 20.0, 20.0)


def test_slots_longer_than_an_interval_take_the_price_at_their_start(tmp_path) -> None:
    series = _hourly(tmp_path, [10.0, 20.0, 30.0, 40.0])
    grid = TimeGrid(T0, timedelta(hours=2), 2)

    assert prices_on_grid(series, grid, "p.csv") == (10.0, 30.0)


def test_missing_hour_holds_the_previous_price(tmp_path) -> None:
    rows = [
        ("2024-05-14T00:00:00Z", 10.0),
        ("2024-05-14T01:00:00Z", 20.0),
        ("2024-05-14T03:00:00Z", 40.0),
        ("2024-05-14T04:00:00Z", 50.0),
    ]
    series = read_price_csv(write_price_csv(tmp_path / "p.csv", rows), "p.csv")
    grid = TimeGrid(T0, timedelta(hours=1), 4)

    assert prices_on_grid(series, grid, "p.csv") == (10.0, 20.0, 20.0, 40.0)


def test_rows_out_of_order_are_sorted_and_offsets_converted(tmp_path) -> None:
    rows = [
        ("2024-05-14T03:00:00+02:00", 20.0),  # 01:00Z
        ("2024-05-14T00:00:00Z", 10.0),
        ("2024-05-14T02:00:00Z", 30.0),
    ]
    series = read_price_csv(write_price_csv(tmp_path / "p.csv", rows), "p.csv")
    grid = TimeGrid(T0, timedelta(hours=1), 3)

    assert prices_on_grid(series, grid, "p.csv") == (10.0, 20.0, 30.0)


def test_file_ending_before_the_horizon_ends_is_rejected(tmp_path) -> None:
    series = _hourly(tmp_path, [10.0, 20.0])  # covers 00:00 to 02:00
    grid = TimeGrid(T0, timedelta(minutes=15), 12)  # to 03:00

    with pytest.raises(DataError, match=r"p\.csv covers .* not the horizon"):
        prices_on_grid(series, grid, "p.csv")


def test_file_starting_after_the_horizon_starts_is_rejected(tmp_path) -> None:
    series = _hourly(tmp_path, [10.0, 20.0, 30.0], first_hour=1)
    grid = TimeGrid(T0, timedelta(minutes=15), 4)

    with pytest.raises(DataError, match="not the horizon"):
        prices_on_grid(series, grid, "p.csv")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("2024-05-14T00:00:00", 1.0)], r"p\.csv line 2: start .* with offset"),
        ([("2024-05-14T00:00:00Z", 1.0), ("soon", 2.0)], r"p\.csv line 3: start 'soon'"),
        ([("2024-05-14T00:00:00Z", "cheap")], r"p\.csv line 2: price_eur_per_mwh 'cheap'"),
        (
            [("2024-05-14T00:00:00Z", 1.0), ("2024-05-14T00:00:00Z", 2.0)],
            "appears twice",
        ),
        ([], "has no rows"),
    ],
)
def test_bad_price_rows_are_rejected_with_their_line(tmp_path, rows, message) -> None:
    path = write_price_csv(tmp_path / "p.csv", rows)

    with pytest.raises(DataError, match=message):
        read_price_csv(path, "p.csv")


def test_missing_price_column_is_named(tmp_path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("time,eur\n2024-05-14T00:00:00Z,1\n")

    with pytest.raises(DataError, match="missing column start, price_eur_per_mwh"):
        read_price_csv(path, "p.csv")
