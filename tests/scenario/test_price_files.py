"""Price files with bad rows: normalised where the intent is clear, else rejected naming the line.

Gaps, repeated hours, DST transitions in local-time files, and mixed timestamp formats.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from aggregator.domain import TimeGrid
from aggregator.scenario.errors import DataError
from aggregator.scenario.prices import load_price_file, prices_on_grid, read_price_csv
from tests.scenario.scenario_data import write_price_csv


def _utc(*hours: tuple[int, int, int, int]) -> list[pd.Timestamp]:
    return [pd.Timestamp(datetime(y, m, d, h, tzinfo=UTC)) for y, m, d, h in hours]


def _load(tmp_path, rows, **kwargs):
    return load_price_file(write_price_csv(tmp_path / "p.csv", rows), "p.csv", **kwargs)


# ------------------------------------------------------------------ mixed timestamp formats


def test_mixed_iso_forms_with_offsets_are_normalised_to_utc(tmp_path) -> None:
    rows = [
        ("2024-05-14T00:00:00Z", 10.0),
        ("2024-05-14 01:00:00+00:00", 11.0),
        ("2024-05-14T04:00+02:00", 12.0),  # 02:00Z
        ("2024-05-14T03:00:00.000+0000", 13.0),
    ]
    got = _load(tmp_path, rows)

    assert list(got.prices.index) == _utc(*[(2024, 5, 14, h) for h in range(4)])
    assert list(got.prices) == [10.0, 11.0, 12.0, 13.0]
    assert got.notes == ()


@pytest.mark.parametrize(
    "bad",
    ["14/05/2024 01:00", "1715648400", "May 14 2024 1am", "2024-05-14T25:00:00Z", ""],
)
def test_a_time_in_another_format_is_rejected_with_its_line(tmp_path, bad) -> None:
    rows = [("2024-05-14T00:00:00Z", 10.0), (bad, 11.0), ("2024-05-14T02:00:00Z", 12.0)]

    with pytest.raises(DataError, match=r"^p\.csv line 3: start '.*' is not an ISO-8601 time"):
        _load(tmp_path, rows)


def test_a_time_without_offset_is_rejected_unless_the_zone_is_given(tmp_path) -> None:
    rows = [("2024-05-14T00:00:00Z", 10.0), ("2024-05-14T03:00:00", 11.0)]

    with pytest.raises(DataError, match=r"p\.csv line 3: .* with offset \(give the offset, or"):
        _load(tmp_path, rows)
    got = _load(tmp_path, rows, timezone="Europe/Amsterdam")  # 03:00 CEST = 01:00Z
    assert list(got.prices.index) == _utc((2024, 5, 14, 0), (2024, 5, 14, 1))


def test_a_date_without_a_time_is_not_taken_for_an_offset(tmp_path) -> None:
    # "2024-05-14" ends in "-14", which looks like an offset; it is a naive date.
    with pytest.raises(DataError, match="line 2: start '2024-05-14' is not an ISO-8601 time"):
        _load(tmp_path, [("2024-05-14", 10.0), ("2024-05-14T01:00:00Z", 11.0)])


def test_an_unknown_time_zone_is_named(tmp_path) -> None:
    with pytest.raises(DataError, match="time zone 'Europe/Atlantis'"):
        _load(tmp_path, [("2024-05-14 00:00", 1.0)], timezone="Europe/Atlantis")


# ------------------------------------------------------------------ DST in local-time files


def test_the_autumn_hour_written_twice_in_local_time_becomes_two_utc_hours(tmp_path) -> None:
    # 29 Oct 2023, Amsterdam: 02:00-03:00 happens twice (CEST, then CET).
    rows = [(f"2023-10-29 0{h}:00", float(i)) for i, h in enumerate([0, 1, 2, 2, 3, 4])]
    got = _load(tmp_path, rows, timezone="Europe/Amsterdam")

    expected = pd.date_range("2023-10-28T22:00Z", periods=6, freq="h")
    assert list(got.prices.index) == list(expected)
    assert list(got.prices) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert got.notes == ()  # regular hours: nothing was missing or repeated


def test_the_spring_day_in_local_time_has_23_hours_and_no_gap(tmp_path) -> None:
    # 31 Mar 2024, Amsterdam: 02:00 does not exist; 01:00 is followed by 03:00.
    hours = [h for h in range(24) if h != 2]
    rows = [(f"2024-03-31T{h:02d}:00:00", float(h)) for h in hours]
    got = _load(tmp_path, rows, timezone="Europe/Amsterdam")

    assert list(got.prices.index) == list(pd.date_range("2024-03-30T23:00Z", periods=23, freq="h"))
    assert got.notes == ()


def test_a_local_hour_that_does_not_exist_is_rejected_with_its_line(tmp_path) -> None:
    rows = [("2024-03-31 01:00", 1.0), ("2024-03-31 02:00", 2.0), ("2024-03-31 03:00", 3.0)]

    with pytest.raises(
        DataError,
        match=r"p\.csv line 3: start '2024-03-31 02:00' does not exist in Europe/Amsterdam",
    ):
        _load(tmp_path, rows, timezone="Europe/Amsterdam")


def test_offsets_across_the_autumn_transition_need_no_zone(tmp_path) -> None:
    rows = [
        ("2023-10-29T01:00:00+02:00", 1.0),
        ("2023-10-29T02:00:00+02:00", 2.0),
        ("2023-10-29T02:00:00+01:00", 3.0),
        ("2023-10-29T03:00:00+01:00", 4.0),
    ]
    got = _load(tmp_path, rows)

    assert list(got.prices.index) == list(pd.date_range("2023-10-28T23:00Z", periods=4, freq="h"))


# ------------------------------------------------------------------ repeated hours


def test_an_hour_repeated_with_the_same_price_is_dropped_and_noted(tmp_path) -> None:
    rows = [
        ("2024-05-14T00:00:00Z", 10.0),
        ("2024-05-14T01:00:00Z", 11.0),
        ("2024-05-14T03:00:00+02:00", 11.0),  # 01:00Z again, same price
        ("2024-05-14T02:00:00Z", 12.0),
    ]
    got = _load(tmp_path, rows)

    assert list(got.prices) == [10.0, 11.0, 12.0]
    assert got.notes == ("line 4 repeats line 3 (2024-05-14T01:00:00+00:00): dropped",)


def test_an_hour_repeated_with_another_price_is_rejected_naming_both_lines(tmp_path) -> None:
    rows = [
        ("2024-05-14T00:00:00Z", 10.0),
        ("2024-05-14T01:00:00Z", 11.0),
        ("2024-05-14T01:00:00Z", 99.0),
    ]

    with pytest.raises(
        DataError,
        match=r"p\.csv line 4: start 2024-05-14T01:00:00\+00:00 appears twice "
        r"\(line 3 has 11, this line 99\)",
    ):
        _load(tmp_path, rows)


def test_a_local_hour_written_three_times_is_a_conflict(tmp_path) -> None:
    rows = [("2023-10-29 02:00", 1.0), ("2023-10-29 02:00", 2.0), ("2023-10-29 02:00", 3.0)]

    with pytest.raises(DataError, match=r"line 4: start .* appears twice \(line 3 has 2"):
        _load(tmp_path, rows, timezone="Europe/Amsterdam")


# ------------------------------------------------------------------ gaps


def test_a_short_gap_holds_the_previous_price_and_is_noted(tmp_path) -> None:
    rows = [(f"2024-05-14T{h:02d}:00:00Z", float(h)) for h in (0, 1, 2, 5, 6)]
    got = _load(tmp_path, rows)

    assert got.notes == (
        "line 5 (2024-05-14T05:00:00+00:00) comes 3 h after line 4 "
        "(2024-05-14T02:00:00+00:00): 2 h missing, the previous price holds",
    )
    grid = TimeGrid(datetime(2024, 5, 14, tzinfo=UTC), timedelta(hours=1), 7)
    assert prices_on_grid(got.prices, grid, "p.csv") == (0.0, 1.0, 2.0, 2.0, 2.0, 5.0, 6.0)


def test_a_gap_longer_than_allowed_is_rejected_with_its_line(tmp_path) -> None:
    rows = [(f"2024-05-14T{h:02d}:00:00Z", float(h)) for h in (0, 1, 2, 12, 13)]

    with pytest.raises(
        DataError,
        match=r"p\.csv line 5: line 5 \(2024-05-14T12:00:00\+00:00\) comes 10 h after line 4 .*: "
        r"9 h missing, more than the 6 h that hold the previous price",
    ):
        _load(tmp_path, rows)
    # The limit is the caller's.
    assert len(_load(tmp_path, rows, max_gap=timedelta(hours=9)).prices) == 5


def test_rows_out_of_order_are_not_gaps(tmp_path) -> None:
    rows = [(f"2024-05-14T{h:02d}:00:00Z", float(h)) for h in (3, 0, 2, 1)]
    got = _load(tmp_path, rows)

    assert list(got.prices) == [0.0, 1.0, 2.0, 3.0]
    assert got.notes == ()


def test_read_price_csv_returns_the_normalised_series(tmp_path) -> None:
    path = write_price_csv(
        tmp_path / "p.csv", [("2024-05-14T00:00:00Z", 1.0), ("2024-05-14T00:00:00Z", 1.0)]
    )

    assert list(read_price_csv(path, "p.csv")) == [1.0]
