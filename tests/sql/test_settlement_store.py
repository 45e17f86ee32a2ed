"""Event baselines and settlements survive the store exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from aggregator.domain import (
    BaselineFigures,
    EventBaseline,
    MeterBaseline,
    Settlement,
    SettlementInterval,
    SettlementRecord,
    SiteSettlement,
    TimeGrid,
)
from connectors.sql import SqlRepository, open_repository
from connectors.sql.settlements import SqlSettlementStore

T0 = datetime(2025, 3, 4, 16, tzinfo=UTC)
Q = timedelta(minutes=15)


def _settlement() -> SettlementRecord:
    intervals = (
        SettlementInterval(T0, T0 + Q, 40.0, None, 52.5, 39.0, 12.5, 13.5, 1.0, True),
        SettlementInterval(T0 + Q, T0 + 2 * Q, None, 10.0, 50.0, 45.0, 10.0, 5.0, 0.5, None),
    )
    settlement = Settlement(
        event_id="ev-7",
        site_ids=("north", "south"),
        baseline="plan",
        intervals=intervals,
        delivered_kwh=4.625,
        committed_kwh=5.625,
        compliance=0.8222,
        caps_met=True,
        alternative=BaselineFigures(
            "meter", (55.0, 51.0), (15.0, 10.0), (16.0, 6.0), (1.0, 0.6), 5.5, 6.25, 0.88
        ),
        meter_baselines={
            "north": MeterBaseline(
                (30.0, 28.0),
                (29.0, 27.0),
                (date(2025, 3, 3), date(2025, 2, 28)),
                (date(2025, 3, 3), date(2025, 2, 28), date(2025, 2, 27)),
                1.0,
                {date(2025, 3, 2): "weekend"},
            )
        },
    )
    sites = (
        SiteSettlement("north", (30.0, 29.0), (22.0, 25.0), (8.0, 4.0), 3.0),
        SiteSettlement("south", (22.5, 21.0), (17.0, 20.0), (5.5, 1.0), 1.625),
    )
    return SettlementRecord(
        "ev-7", 2, T0 + timedelta(hours=1), "settled", "no meter baseline: x", settlement, sites
    )


def test_baselines_and_settlements_round_trip_and_are_replaced(repo: SqlRepository) -> None:
    store = SqlSettlementStore(repo)
    assert store.baseline("ev-7") is None and store.settlement("ev-7") is None
    grid = TimeGrid(T0 - Q, Q, 3)
    base = EventBaseline(
        "ev-7", 1, T0 - 2 * Q, grid, {"north": (1.5, 2.0, -3.25), "south": (0.0,) * 3}
    )
    store.save_baseline(base)
    assert store.baseline("ev-7") == base
    newer = EventBaseline("ev-7", 2, T0 - Q, grid, {"north": (4.0, 5.0, 6.0)})
    store.save_baseline(newer)
    assert store.baseline("ev-7") == newer

    failed = SettlementRecord("ev-7", 2, T0 + Q * 5, "failed", "site south: telemetry: none")
    store.save_settlement(failed)
    assert store.settlement("ev-7") == failed
    settled = _settlement()
    store.save_settlement(settled)
    assert store.settlements() == [settled]


def test_settlements_survive_reopening_the_store(db_url: str) -> None:
    first = open_repository(db_url)
    try:
        SqlSettlementStore(first).save_settlement(_settlement())
    finally:
        first.dispose()
    again = open_repository(db_url)
    try:
        assert SqlSettlementStore(again).settlement("ev-7") == _settlement()
    finally:
        again.dispose()
