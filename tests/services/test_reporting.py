"""The report aggregates: per site, the latest fresh reading of each charger, summed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.domain import Telemetry
from aggregator.services.reporting import (
    TelemetryReports,
    latest_per_charger,
    site_power_kw,
    site_reading,
)

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
AGE = timedelta(minutes=5)


def t(
    charger: str, seconds_ago: float, kw: float, plugged: bool = True, site: str = "s1"
) -> Telemetry:
    return Telemetry(site, charger, NOW - timedelta(seconds=seconds_ago), kw, plugged)


def test_sums_the_latest_reading_of_each_charger() -> None:
    rows = [t("a", 200, 3.0), t("a", 10, 7.0), t("b", 60, 11.0)]
    assert site_power_kw(rows, "s1", NOW, AGE) == pytest.approx(18.0)


def test_order_of_the_rows_does_not_matter_but_time_does() -> None:
    rows = [t("a", 10, 7.0), t("a", 200, 3.0)]
    assert site_power_kw(rows, "s1", NOW, AGE) == pytest.approx(7.0)


def test_same_timestamp_later_row_wins() -> None:
    rows = [t("a", 10, 7.0), t("a", 10, 8.0)]
    assert site_power_kw(rows, "s1", NOW, AGE) == pytest.approx(8.0)


def test_stale_charger_counts_zero_even_if_it_was_drawing() -> None:
    rows = [t("a", 301, 50.0), t("b", 299, 4.0)]
    assert site_power_kw(rows, "s1", NOW, AGE) == pytest.approx(4.0)


def test_edges_of_the_window_are_inclusive_and_future_readings_ignored() -> None:
    rows = [t("a", 300, 1.0), t("b", 0, 2.0), t("c", -1, 100.0)]
    assert site_power_kw(rows, "s1", NOW, AGE) == pytest.approx(3.0)


def test_a_future_reading_does_not_hide_the_latest_fresh_one() -> None:
    # A reading stamped after now (clock skew) is outside the window and never considered.
    rows = [t("a", 100, 5.0), t("a", -30, 9.0)]
    assert latest_per_charger(rows, "s1", NOW, AGE)["a"].power_kw == 5.0


def test_other_sites_are_ignored() -> None:
    rows = [t("a", 10, 7.0), t("x", 10, 70.0, site="s2")]
    assert site_power_kw(rows, "s1", NOW, AGE) == pytest.approx(7.0)
    assert site_power_kw(rows, "s2", NOW, AGE) == pytest.approx(70.0)


def test_discharging_vehicles_lower_the_sum() -> None:
    rows = [t("a", 10, 7.0), t("b", 10, -10.0)]
    assert site_power_kw(rows, "s1", NOW, AGE) == pytest.approx(-3.0)


def test_no_readings_is_offline_and_zero() -> None:
    reading = site_reading([], "s1", NOW, AGE)
    assert (reading.power_kw, reading.online, reading.plugged, reading.chargers) == (
        0.0,
        False,
        0,
        0,
    )
    assert reading.at == NOW


def test_status_counts_plugged_chargers_by_their_latest_reading() -> None:
    rows = [
        t("a", 100, 0.0, plugged=True),
        t("a", 5, 0.0, plugged=False),  # unplugged since
        t("b", 5, 7.0, plugged=True),
        t("c", 5, -2.0, plugged=True),
        t("d", 400, 0.0, plugged=True),  # stale: not counted
    ]
    reading = site_reading(rows, "s1", NOW, AGE)
    assert reading.online
    assert reading.plugged == 2
    assert reading.chargers == 3
    assert reading.power_kw == pytest.approx(5.0)


def test_negative_max_age_is_refused() -> None:
    with pytest.raises(ValueError, match="max_age"):
        site_power_kw([], "s1", NOW, timedelta(seconds=-1))


class FakeRepo:
    """Only ``telemetry``, with the store's half-open window ``since <= ts < until``."""

    def __init__(self, rows: list[Telemetry]) -> None:
        self.rows = rows
        self.queries: list[tuple[datetime, datetime, str | None]] = []

    def telemetry(
        self, since: datetime, until: datetime, site_id: str | None = None
    ) -> list[Telemetry]:
        self.queries.append((since, until, site_id))
        return [
            r
            for r in self.rows
            if since <= r.ts < until and (site_id is None or r.site_id == site_id)
        ]


class Clock:
    def now(self) -> datetime:
        return NOW


def test_telemetry_reports_query_the_window_and_aggregate() -> None:
    repo = FakeRepo([t("a", 0, 7.0), t("b", 10, 4.0, plugged=False), t("c", 600, 9.0)])
    reports = TelemetryReports(repo, Clock(), AGE)  # type: ignore[arg-type]
    assert asyncio.run(reports.power_kw("s1")) == pytest.approx(11.0)  # a reading at now counts
    assert asyncio.run(reports.online("s1")) == 1.0
    assert asyncio.run(reports.plugged("s1")) == 1.0
    assert asyncio.run(reports.online("s2")) == 0.0
    since, until, site = repo.queries[0]
    assert (since, site) == (NOW - AGE, "s1")
    assert until > NOW


def test_telemetry_reports_need_a_positive_max_age() -> None:
    with pytest.raises(ValueError, match="max_age"):
        TelemetryReports(FakeRepo([]), Clock(), timedelta(0))  # type: ignore[arg-type]
