"""Per-vehicle arrival, departure and energy: habits on the local clock, unknown vehicles named."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from aggregator.domain import ValidationError
from models.forecast import SessionForecaster
from models.forecast.sessions import day_records

ZONE = "America/Los_Angeles"


def _local(day: date, hour: float) -> pd.Timestamp:
    return (pd.Timestamp(day) + pd.Timedelta(hours=hour)).tz_localize(ZONE).tz_convert("UTC")


def _habits(first: date = date(2019, 2, 25), days: int = 28) -> pd.DataFrame:
    """Commuter "a": weekdays 08:00-17:00 local, 20 kWh. "b": Saturdays 10:00-12:00, 5 kWh."""
    rows = []
    for i in range(days):
        d = first + timedelta(days=i)
        if d.weekday() < 5:
            rows.append(("a", _local(d, 8), _local(d, 17), 20.0))
        if d.weekday() == 5:
            rows.append(("b", _local(d, 10), _local(d, 12), 5.0))
    return pd.DataFrame(rows, columns=["vehicle_id", "arrival", "departure", "energy_kwh"])


def test_a_regular_commuter_is_forecast_at_its_habits_on_the_local_clock() -> None:
    # The history ends on Friday 22 March 2019; DST began on 10 March: 08:00 stays 08:00.
    f = SessionForecaster(timezone=ZONE).fit(_habits())
    monday = date(2019, 3, 25)
    got = f.predict(["a"], [monday]).iloc[0]

    assert got["vehicle_id"] == "a"
    assert got["day"] == monday
    assert got["arrival_q50"] == _local(monday, 8)
    assert got["departure_q50"] == _local(monday, 17)
    assert got["energy_kwh_q50"] == pytest.approx(20.0)
    assert got["p_session"] > 0.8
    assert got["arrival_q10"] <= got["arrival_q50"] <= got["arrival_q90"]


def test_a_weekend_vehicle_is_unlikely_on_a_weekday() -> None:
    f = SessionForecaster(timezone=ZONE).fit(_habits())
    got = f.predict(["b"], [date(2019, 3, 27), date(2019, 3, 30)]).set_index("day")

    assert got.loc[date(2019, 3, 27), "p_session"] < 0.3
    assert got.loc[date(2019, 3, 30), "p_session"] > 0.6
    assert got.loc[date(2019, 3, 30), "arrival_q50"] == _local(date(2019, 3, 30), 10)


def test_rows_come_vehicle_by_vehicle_in_the_order_asked() -> None:
    f = SessionForecaster(timezone=ZONE).fit(_habits())
    days = [date(2019, 3, 25), "2019-03-26", pd.Timestamp("2019-03-27T12:00", tz=ZONE)]
    got = f.predict(["b", "a"], days, quantiles=(0.25, 0.75))

    assert list(got["vehicle_id"]) == ["b"] * 3 + ["a"] * 3
    assert list(got["day"]) == [date(2019, 3, 25), date(2019, 3, 26), date(2019, 3, 27)] * 2
    assert [c for c in got.columns if c.startswith("arrival")] == ["arrival_q25", "arrival_q75"]


def test_an_unknown_vehicle_is_named_in_the_error() -> None:
    f = SessionForecaster(timezone=ZONE).fit(_habits())

    with pytest.raises(ValidationError) as err:
        f.predict(["a", "ghost"], [date(2019, 3, 25)])
    assert err.value.field == "vehicle_id"
    assert err.value.entity == "vehicle ghost"


def test_bad_session_input_is_rejected_with_the_row() -> None:
    sessions = _habits()
    with pytest.raises(ValidationError, match="predict called before fit"):
        SessionForecaster().predict(["a"], [date(2019, 3, 25)])
    swapped = sessions.copy()
    swapped.loc[3, ["arrival", "departure"]] = swapped.loc[3, ["departure", "arrival"]].to_numpy()
    with pytest.raises(ValidationError, match="sessions row 3: departure: must be after arrival"):
        SessionForecaster().fit(swapped)
    with pytest.raises(ValidationError, match="missing column energy_kwh"):
        SessionForecaster().fit(sessions.drop(columns="energy_kwh"))
    naive = sessions.assign(arrival=sessions["arrival"].dt.tz_localize(None))
    with pytest.raises(ValidationError, match="timezone-aware"):
        SessionForecaster().fit(naive)


def test_a_vehicle_seen_twice_borrows_the_fleet_spread(sessions) -> None:
    # On real data every known station gets finite, ordered quantiles, however few its days.
    history = sessions[sessions["arrival"] < "2019-03-15T08:00Z"]
    f = SessionForecaster(timezone=ZONE).fit(history)
    got = f.predict(f.vehicle_ids, [date(2019, 3, 15)])

    for name in ("arrival", "departure", "energy_kwh"):
        q10, q50, q90 = (got[f"{name}_q{p}"] for p in (10, 50, 90))
        assert (q10 <= q50).all() and (q50 <= q90).all()
    assert got["p_session"].between(0, 1).all()
    assert (got["energy_kwh_q10"] >= 0).all()


def test_only_the_first_session_of_a_day_counts() -> None:
    day = date(2019, 3, 4)
    sessions = pd.DataFrame(
        [
            ("a", _local(day, 13), _local(day, 15), 3.0),
            ("a", _local(day, 8), _local(day, 12), 10.0),
        ],
        columns=["vehicle_id", "arrival", "departure", "energy_kwh"],
    )
    from zoneinfo import ZoneInfo

    records = day_records(sessions, ZoneInfo(ZONE))
    assert len(records) == 1
    assert records.iloc[0]["arrival"] == 8.0
    assert np.isclose(records.iloc[0]["energy_kwh"], 10.0)
