"""Event price signals reach the prices the planner sees."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.app import FlatForecasts
from aggregator.domain import DrEvent, DrEventRecord, PriceSignal, TimeGrid
from aggregator.services.pricing import EventPriceOverlay
from connectors.sql import open_repository
from connectors.sql.dr_events import SqlDrEventStore

T0 = datetime(2025, 1, 6, tzinfo=UTC)
H = timedelta(hours=1)


def record(state: str, *prices: PriceSignal) -> DrEventRecord:
    ev = DrEvent(f"e-{state}-{len(prices)}", 0, "far", T0, T0 + 4 * H, frozenset(), prices=prices)
    return DrEventRecord(ev, "optIn", "", state, T0)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlDrEventStore]:
    repo = open_repository(f"sqlite:///{tmp_path / 'prices.db'}")
    yield SqlDrEventStore(repo)
    repo.dispose()


def test_active_event_prices_replace_or_add_and_others_do_not(store: SqlDrEventStore) -> None:
    store.save(
        record(
            "active",
            PriceSignal(T0 + H, T0 + 2 * H, 300.0, "replace"),
            PriceSignal(T0 + 2 * H, T0 + 3 * H, 25.0, "add"),
        )
    )
    store.save(record("opted_out", PriceSignal(T0, T0 + 4 * H, 999.0, "replace")))
    prices = EventPriceOverlay(FlatForecasts(50.0), store).prices(TimeGrid(T0, H, 4))
    assert prices.import_per_mwh == (50.0, 300.0, 75.0, 50.0)
    assert prices.export_per_mwh == (50.0, 300.0, 75.0, 50.0)


def test_without_events_the_base_forecast_is_unchanged(store: SqlDrEventStore) -> None:
    base = FlatForecasts(42.0)
    grid = TimeGrid(T0, H, 3)
    assert EventPriceOverlay(base, store).prices(grid) == base.prices(grid)
