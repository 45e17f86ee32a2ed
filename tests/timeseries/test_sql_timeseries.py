"""The SQL time-series store on SQLite and PostgreSQL: batched writes, DataFrame queries."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from aggregator.domain import Point
from connectors.sql import SqlRepository, open_repository
from connectors.sql.timeseries import SqlTimeSeriesStore

T0 = datetime(2025, 1, 6, 8, tzinfo=UTC)


@pytest.fixture
def repo(db_url: str) -> Iterator[SqlRepository]:
    store = open_repository(db_url)
    try:
        yield store
    finally:
        store.dispose()


def reading(i: int, site: str = "depot", charger: str = "c1", **extra: Any) -> Point:
    fields: dict[str, Any] = {"power_kw": float(i), "plugged": i % 2, **extra}
    tags = {"site_id": site, "charger_id": charger}
    return Point("telemetry", T0 + timedelta(seconds=i), fields, tags)


def test_points_come_back_as_a_frame_with_a_utc_index(repo: SqlRepository) -> None:
    store = SqlTimeSeriesStore(repo, batch_size=7)
    try:
        store.write([reading(i, charger=f"c{i % 3}") for i in range(20)])
        store.write([Point("price", T0, {"import_per_mwh": 50.0, "export_per_mwh": 40.0})])
        assert store.flush()
        frame = store.query("telemetry", T0, T0 + timedelta(hours=1))
    finally:
        store.close()
    assert store.written == 21 and store.dropped == 0
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.name == "ts"
    assert str(frame.index.tz) == "UTC"
    assert list(frame.columns) == ["charger_id", "site_id", "plugged", "power_kw"]
    assert list(frame.index) == [T0 + timedelta(seconds=i) for i in range(20)]
    assert frame["power_kw"].tolist() == [float(i) for i in range(20)]
    assert frame["plugged"].tolist() == [i % 2 for i in range(20)]
    assert frame["charger_id"].tolist() == [f"c{i % 3}" for i in range(20)]


def test_range_is_half_open_and_tags_filter(repo: SqlRepository) -> None:
    store = SqlTimeSeriesStore(repo)
    try:
        store.write([reading(i, site="depot" if i < 10 else "yard") for i in range(20)])
        store.write([reading(i, site="yard", charger="c2") for i in range(20, 25)])
        assert store.flush()
        window = store.query("telemetry", T0 + timedelta(seconds=5), T0 + timedelta(seconds=12))
        yard = store.query("telemetry", T0, T0 + timedelta(hours=1), {"site_id": "yard"})
        yard_c2 = store.query(
            "telemetry", T0, T0 + timedelta(hours=1), {"site_id": "yard", "charger_id": "c2"}
        )
        none = store.query("telemetry", T0, T0 + timedelta(hours=1), {"site_id": "nowhere"})
        other = store.query("price", T0, T0 + timedelta(hours=1))
    finally:
        store.close()
    assert window["power_kw"].tolist() == [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]
    assert yard["power_kw"].tolist() == [float(i) for i in range(10, 25)]
    assert set(yard["site_id"]) == {"yard"}
    assert yard_c2["power_kw"].tolist() == [20.0, 21.0, 22.0, 23.0, 24.0]
    for empty in (none, other):
        assert empty.empty
        assert isinstance(empty.index, pd.DatetimeIndex)
        assert str(empty.index.tz) == "UTC" and empty.index.name == "ts"


def test_field_types_and_missing_values(repo: SqlRepository) -> None:
    store = SqlTimeSeriesStore(repo)
    try:
        store.write(
            [
                reading(1, soc=0.5, note="first", ok=True),
                Point("telemetry", T0 + timedelta(seconds=2), {"power_kw": 2.0}, {"site_id": "d"}),
            ]
        )
        assert store.flush()
        frame = store.query("telemetry", T0, T0 + timedelta(minutes=1))
    finally:
        store.close()
    first, second = frame.iloc[0], frame.iloc[1]
    assert first["soc"] == 0.5 and first["note"] == "first" and bool(first["ok"]) is True
    assert first["plugged"] == 1
    assert pd.isna(second["soc"]) and pd.isna(second["charger_id"])


def test_writes_never_wait_and_points_are_kept_while_the_database_is_away(
    repo: SqlRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses every write for a while: write() returns at once, the points
    stay queued (flush says so), and once it is back every point is stored once, in order."""
    store = SqlTimeSeriesStore(repo, batch_size=50, flush_interval_s=0.05, max_backoff_s=0.1)
    real = repo.writer

    class Away:
        def begin(self) -> Any:
            raise ConnectionError("database away")

    try:
        monkeypatch.setattr(repo, "writer", Away())
        slowest = 0.0
        for i in range(300):
            started = time.perf_counter()
            store.write([reading(i)])
            slowest = max(slowest, time.perf_counter() - started)
        assert not store.flush(timeout_s=2.0)
        assert store.pending == 300
        monkeypatch.setattr(repo, "writer", real)
        assert store.flush(timeout_s=10.0)
        frame = store.query("telemetry", T0, T0 + timedelta(hours=1))
    finally:
        store.close()
    assert slowest < 0.05
    assert frame["power_kw"].tolist() == [float(i) for i in range(300)]
    assert store.dropped == 0


def test_a_full_queue_drops_the_oldest_points_and_counts_them(
    repo: SqlRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqlTimeSeriesStore(repo, batch_size=10, max_pending=100, flush_interval_s=0.05)
    real = repo.writer
    gate = threading.Event()

    class Away:
        def begin(self) -> Any:
            gate.set()
            raise ConnectionError("database away")

    try:
        monkeypatch.setattr(repo, "writer", Away())
        store.write([reading(i) for i in range(150)])
        assert gate.wait(5)
        assert not store.flush(timeout_s=2.0)
        monkeypatch.setattr(repo, "writer", real)
        assert store.flush(timeout_s=10.0)
        frame = store.query("telemetry", T0, T0 + timedelta(hours=1))
    finally:
        store.close()
    assert store.dropped == 50
    assert frame["power_kw"].tolist() == [float(i) for i in range(50, 150)]


def test_closing_stores_what_is_queued(repo: SqlRepository) -> None:
    store = SqlTimeSeriesStore(repo, flush_interval_s=60.0)
    store.write([reading(i) for i in range(10)])
    store.close()
    store.write([reading(99)])  # after close: counted, not stored
    after = SqlTimeSeriesStore(repo)
    try:
        frame = after.query("telemetry", T0, T0 + timedelta(hours=1))
    finally:
        after.close()
    assert len(frame) == 10
    assert store.dropped == 1
