"""Event settlement: baselines, metered power, delivery and compliance, by hand-computed numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from aggregator.domain import GridEvent, Telemetry, TimeGrid, ValidationError
from models.settlement import (
    InsufficientHistoryError,
    MeterBaselineConfig,
    SameDayAdjustment,
    SlotPower,
    meter_baseline,
    settle_event,
    site_power_from_telemetry,
)

Q = timedelta(minutes=15)
DAY = date(2024, 6, 12)  # a Wednesday


def at(hour: float, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)


def quarter_hours(start: datetime, values: list[float]) -> pd.Series:
    index = pd.date_range(start, periods=len(values), freq="15min")
    return pd.Series(values, index=index, dtype=float)


def shed(h0: float, h1: float, kw: float, n: int = 0) -> GridEvent:
    return GridEvent(f"ev1/{n}", at(h0), at(h1), shed_kw=kw)


def cap(h0: float, h1: float, kw: float, n: int = 1) -> GridEvent:
    return GridEvent(f"ev1/{n}", at(h0), at(h1), cap_kw=kw)


# Plan without the event, half-hour slots from 16:00: 17:00-18:00 averages 95, 18:00-18:30 is 70.
PLAN = SlotPower(
    grid=TimeGrid(at(16), timedelta(minutes=30), 6),
    site_power_kw={"s1": (80.0, 80.0, 100.0, 90.0, 70.0, 60.0)},
)
LIMITS = [shed(17, 18, 20.0), cap(18, 18.5, 50.0)]


def test_perfect_compliance_against_the_plan_baseline():
    metered = quarter_hours(at(17), [75.0] * 4 + [50.0] * 2)
    result = settle_event("ev1", LIMITS, ["s1"], metered={"s1": metered}, plan=PLAN)
    assert result.baseline == "plan"
    assert [i.baseline_kw for i in result.intervals] == pytest.approx([95.0, 70.0])
    assert [i.committed_kw for i in result.intervals] == pytest.approx([20.0, 20.0])
    assert [i.delivered_kw for i in result.intervals] == pytest.approx([20.0, 20.0])
    assert [i.compliance for i in result.intervals] == pytest.approx([1.0, 1.0])
    assert [i.cap_met for i in result.intervals] == [None, True]
    assert result.delivered_kwh == pytest.approx(30.0)  # 20 kW * 1 h + 20 kW * 0.5 h
    assert result.committed_kwh == pytest.approx(30.0)
    assert result.compliance_pct == pytest.approx(100.0)
    assert result.caps_met is True
    assert result.alternative is None


def test_partial_delivery_is_time_weighted_and_pro_rata():
    # 80 kW for half an hour, 90 kW for the next: 85 kW mean, so 10 of 20 kW shed.
    metered = quarter_hours(at(17), [80.0, 80.0, 90.0, 90.0, 60.0, 60.0])
    result = settle_event("ev1", LIMITS, ["s1"], metered={"s1": metered}, plan=PLAN)
    assert [i.metered_kw for i in result.intervals] == pytest.approx([85.0, 60.0])
    assert [i.delivered_kw for i in result.intervals] == pytest.approx([10.0, 10.0])
    assert [i.compliance for i in result.intervals] == pytest.approx([0.5, 0.5])
    assert result.intervals[1].cap_met is False
    assert result.delivered_kwh == pytest.approx(15.0)
    assert result.compliance == pytest.approx(0.5)
    assert result.caps_met is False


def test_over_delivery_is_capped_at_full_compliance():
    metered = quarter_hours(at(17), [55.0] * 4)
    result = settle_event("ev1", [shed(17, 18, 20.0)], ["s1"], metered={"s1": metered}, plan=PLAN)
    assert result.intervals[0].delivered_kw == pytest.approx(40.0)
    assert result.intervals[0].compliance == 1.0
    assert result.delivered_kwh == pytest.approx(40.0)
    assert result.committed_kwh == pytest.approx(20.0)
    assert result.compliance == 1.0
    assert result.caps_met is None


def test_load_rise_during_a_shed_counts_as_negative_delivery():
    metered = quarter_hours(at(17), [105.0] * 4)
    result = settle_event("ev1", [shed(17, 18, 20.0)], ["s1"], metered={"s1": metered}, plan=PLAN)
    assert result.intervals[0].delivered_kw == pytest.approx(-10.0)
    assert result.intervals[0].compliance == 0.0
    assert result.compliance == 0.0


@pytest.mark.parametrize(
    ("metered_kw", "met", "compliance"), [(45.0, True, 1.0), (55.0, False, 0.0)]
)
def test_cap_above_the_baseline_commits_nothing_and_settles_on_the_cap(metered_kw, met, compliance):
    plan = SlotPower(PLAN.grid, {"s1": (40.0,) * 6})
    metered = quarter_hours(at(18), [metered_kw] * 2)
    result = settle_event("ev1", [cap(18, 18.5, 50.0)], ["s1"], metered={"s1": metered}, plan=plan)
    (interval,) = result.intervals
    assert interval.committed_kw == 0.0
    assert interval.delivered_kw == 0.0
    assert interval.cap_met is met
    assert interval.compliance == compliance
    assert result.committed_kwh == 0.0
    assert result.compliance == compliance


def test_sites_are_summed_and_a_cap_applies_to_their_aggregate():
    plan = SlotPower(PLAN.grid, {"a": (70.0,) * 6, "b": (60.0,) * 6})
    metered = {"a": quarter_hours(at(18), [40.0] * 2), "b": quarter_hours(at(18), [50.0] * 2)}
    result = settle_event("ev1", [cap(18, 18.5, 100.0)], {"b", "a"}, metered=metered, plan=plan)
    (interval,) = result.intervals
    assert result.site_ids == ("a", "b")
    assert (interval.baseline_kw, interval.metered_kw) == pytest.approx((130.0, 90.0))
    assert (interval.committed_kw, interval.delivered_kw) == pytest.approx((30.0, 40.0))
    assert interval.cap_met is True
    assert result.compliance == 1.0


# X-of-Y history: load between 17:00 and 18:00 per day; other hours 40 kW (60 on the event day).
EVENT_HOUR_LOAD = {
    date(2024, 6, 4): 900.0,  # Tuesday, beyond Y unless a closer day is skipped
    date(2024, 6, 5): 80.0,
    date(2024, 6, 6): 60.0,
    date(2024, 6, 7): 70.0,
    date(2024, 6, 8): 400.0,  # Saturday
    date(2024, 6, 9): 400.0,  # Sunday
    date(2024, 6, 10): 500.0,  # earlier event day
    date(2024, 6, 11): 50.0,
}


def history(first: date = date(2024, 6, 1)) -> pd.Series:
    index = pd.date_range(at(0, first), at(17), freq="15min", inclusive="left")
    values = [
        EVENT_HOUR_LOAD.get(ts.date(), 0.0)
        if ts.hour == 17
        else (60.0 if ts.date() == DAY else 40.0)
        for ts in index
    ]
    return pd.Series(values, index=index, dtype=float)


X2_OF_Y4 = MeterBaselineConfig(x_days=2, y_days=4, event_days=frozenset({date(2024, 6, 10)}))


def test_x_of_y_picks_the_highest_eligible_days_skipping_weekends_and_event_days():
    result = meter_baseline(history(), [at(17)], [at(18)], X2_OF_Y4)
    assert result.eligible_days == (
        date(2024, 6, 11),
        date(2024, 6, 7),
        date(2024, 6, 6),
        date(2024, 6, 5),
    )
    assert result.days == (date(2024, 6, 7), date(2024, 6, 5))
    assert result.baseline_kw == pytest.approx((75.0,))  # (70 + 80) / 2
    assert result.skipped[date(2024, 6, 8)] == "weekend"
    assert result.skipped[date(2024, 6, 10)] == "event day"


def test_x_of_y_skips_holidays_and_reaches_further_back():
    config = MeterBaselineConfig(
        x_days=2,
        y_days=4,
        event_days=frozenset({date(2024, 6, 10)}),
        holidays=frozenset({DAY - timedelta(days=6)}),
    )
    result = meter_baseline(history(), [at(17)], [at(18)], config)
    assert result.days == (date(2024, 6, 5), date(2024, 6, 4))
    assert result.baseline_kw == pytest.approx((490.0,))  # (80 + 900) / 2


def test_too_little_history_is_an_error_unless_a_reduced_y_is_allowed():
    short = history(first=date(2024, 6, 6))
    with pytest.raises(InsufficientHistoryError, match=r"needs 4 eligible days .* found 3"):
        meter_baseline(short, [at(17)], [at(18)], X2_OF_Y4)
    reduced = MeterBaselineConfig(x_days=2, y_days=4, event_days=X2_OF_Y4.event_days, min_days=3)
    result = meter_baseline(short, [at(17)], [at(18)], reduced)
    assert result.eligible_days == (date(2024, 6, 11), date(2024, 6, 7), date(2024, 6, 6))
    assert result.baseline_kw == pytest.approx((65.0,))  # (70 + 60) / 2
    assert result.skipped[date(2024, 6, 5)] == "missing data"


@pytest.mark.parametrize(
    ("cap_fraction", "cap_kw", "adjustment_kw"),
    [(0.2, None, 8.0), (1.0, None, 20.0), (1.0, 5.0, 5.0)],
)
def test_same_day_adjustment_is_additive_and_capped(cap_fraction, cap_kw, adjustment_kw):
    # 14:00-16:00: 60 kW on the event day, 40 kW on the baseline days: +20 kW before the cap.
    adjustment = SameDayAdjustment(
        window=timedelta(hours=2), gap=timedelta(hours=1), cap_fraction=cap_fraction, cap_kw=cap_kw
    )
    config = MeterBaselineConfig(
        x_days=2, y_days=4, event_days=X2_OF_Y4.event_days, adjustment=adjustment
    )
    result = meter_baseline(history(), [at(17)], [at(18)], config)
    assert result.unadjusted_kw == pytest.approx((75.0,))
    assert result.adjustment_kw == pytest.approx(adjustment_kw)
    assert result.baseline_kw == pytest.approx((75.0 + adjustment_kw,))


def test_meter_baseline_is_used_by_default_and_the_plan_is_the_alternative():
    metered = quarter_hours(at(17), [65.0] * 4)
    result = settle_event(
        "ev1",
        [shed(17, 18, 20.0)],
        ["s1"],
        metered={"s1": metered},
        plan=PLAN,
        meter_history={"s1": history()},
        config=X2_OF_Y4,
    )
    assert result.baseline == "meter"
    assert result.intervals[0].baseline_kw == pytest.approx(75.0)
    assert result.intervals[0].delivered_kw == pytest.approx(10.0)
    assert result.compliance == pytest.approx(0.5)
    assert result.meter_baselines["s1"].days == (date(2024, 6, 7), date(2024, 6, 5))
    alt = result.alternative
    assert alt is not None and alt.kind == "plan"
    assert alt.baseline_kw == pytest.approx((95.0,))
    assert alt.delivered_kwh == pytest.approx(30.0)
    assert alt.total_compliance == 1.0


def test_telemetry_of_chargers_reporting_at_different_instants_is_held_and_binned():
    def reading(charger: str, seconds: int, kw: float) -> Telemetry:
        return Telemetry("s1", charger, at(0) + timedelta(seconds=seconds), kw, plugged=True)

    readings = [
        reading("a", 30, 20.0),
        reading("a", 0, 10.0),
        reading("b", 45, 6.0),
        reading("b", 75, 0.0),
    ]
    power = site_power_from_telemetry(readings, base_load_kw=2.0)
    # Minute 0: a = (10 + 20) / 2, b = 6 kW for 15 s; minute 1: a = 20, b = 6 kW for 15 s.
    assert list(power.index) == [at(0), at(0) + timedelta(minutes=1)]
    assert power.to_list() == pytest.approx([15.0 + 1.5 + 2.0, 20.0 + 1.5 + 2.0])
    held = site_power_from_telemetry(readings, base_load_kw=2.0, max_hold=timedelta(seconds=60))
    # a's 20 kW from 00:00:30 lapses at 00:01:30: half of minute 1.
    assert held.to_list() == pytest.approx([18.5, 10.0 + 1.5 + 2.0])


def test_missing_metered_data_is_an_error_naming_the_site():
    metered = quarter_hours(at(17), [75.0] * 3)  # ends 17:45
    with pytest.raises(
        ValidationError, match="metered power of site s1: samples: no data for 0:15:00"
    ):
        settle_event("ev1", [shed(17, 18, 20.0)], ["s1"], metered={"s1": metered}, plan=PLAN)


def test_naive_times_are_rejected_naming_the_field():
    naive_pairs = [(datetime(2024, 6, 12, 17), 75.0)]
    with pytest.raises(
        ValueError, match=r"metered power of site s1: \[0\]\.ts: must be a timezone-aware"
    ):
        settle_event("ev1", [shed(17, 18, 20.0)], ["s1"], metered={"s1": naive_pairs}, plan=PLAN)
    naive_series = history().tz_localize(None)
    with pytest.raises(ValueError, match="meter history of site s1: index: must be timezone-aware"):
        settle_event(
            "ev1",
            [shed(17, 18, 20.0)],
            ["s1"],
            metered={"s1": quarter_hours(at(17), [75.0] * 4)},
            meter_history={"s1": naive_series},
        )
    paris = quarter_hours(at(17), [75.0] * 4).tz_convert("Europe/Paris")
    with pytest.raises(ValueError, match="index: must be UTC"):
        settle_event("ev1", [shed(17, 18, 20.0)], ["s1"], metered={"s1": paris}, plan=PLAN)


def test_overlapping_intervals_and_untargeted_sites_are_rejected():
    metered = {"s1": quarter_hours(at(17), [75.0] * 4)}
    with pytest.raises(ValidationError, match="limits: ev1/0 and ev1/1 overlap"):
        settle_event(
            "ev1", [shed(17, 18, 20.0), cap(17.5, 18.5, 50.0)], ["s1"], metered=metered, plan=PLAN
        )
    other = GridEvent("ev1/0", at(17), at(18), site_ids=frozenset({"s2"}), shed_kw=20.0)
    with pytest.raises(ValidationError, match="site_ids"):
        settle_event("ev1", [other], ["s1"], metered=metered, plan=PLAN)


def test_meter_samples_are_interval_means_not_points():
    # A 10 kW sample at 17:00 and 30 kW at 17:30 give a 20 kW mean (not a trapezoid).
    metered = [(at(17), 10.0), (at(17.25), 10.0), (at(17.5), 30.0), (at(17.75), 30.0)]
    result = settle_event("ev1", [shed(17, 18, 20.0)], ["s1"], metered={"s1": metered}, plan=PLAN)
    assert result.intervals[0].metered_kw == pytest.approx(20.0)
    assert np.isclose(result.intervals[0].delivered_kw, 75.0)


def test_x_of_y_windows_keep_the_local_time_of_day_across_dst():
    # 18:00-19:00 in Paris: 16:00 UTC on Monday 1 April (CEST), 17:00 UTC on Friday 29 March (CET).
    index = pd.date_range(at(0, date(2024, 3, 29)), at(0, date(2024, 3, 30)), freq="15min")
    load = pd.Series([100.0 if ts.hour == 17 else 0.0 for ts in index], index=index, dtype=float)
    config = MeterBaselineConfig(x_days=1, y_days=1, tz=ZoneInfo("Europe/Paris"))
    monday = date(2024, 4, 1)
    result = meter_baseline(load, [at(16, monday)], [at(17, monday)], config)
    assert result.days == (date(2024, 3, 29),)
    assert result.baseline_kw == pytest.approx((100.0,))
