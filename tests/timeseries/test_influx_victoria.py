"""The InfluxDB adapter's write path against a real server speaking the v2 write API
(VictoriaMetrics), read back through its export: values, tags, types; an outage in the
middle of a stream (every point arrives exactly once); the disk buffer across a restart of
the adapter, and its bound."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.domain import Point
from connectors.influxdb import InfluxTimeSeriesStore
from tests.timeseries.victoria import Victoria


def _store(url: str, folder: Path, **kw: object) -> InfluxTimeSeriesStore:
    options: dict[str, object] = {
        "flush_interval_s": 0.05,
        "max_backoff_s": 0.2,
        "timeout_s": 2.0,
        **kw,
    }
    return InfluxTimeSeriesStore(
        url,
        org="aggregator",
        bucket="fleet",
        token="test",
        buffer_dir=folder,
        **options,
    )


def _base() -> datetime:
    # Recent (the server's retention), whole milliseconds (what it keeps).
    now = datetime.now(UTC) - timedelta(minutes=30)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def test_points_arrive_with_their_tags_values_and_types(victoria: Victoria, tmp_path: Path) -> None:
    base = _base()
    store = _store(victoria.url, tmp_path / "buf")
    try:
        store.write(
            [
                Point(
                    "telemetry",
                    base + timedelta(seconds=i),
                    {"power_kw": 1.5 * i, "plugged": 1, "soc": 0.25},
                    {"site_id": "depot", "charger_id": f"c{i % 2}", "vehicle_id": f"v{i % 2}"},
                )
                for i in range(6)
            ]
            + [
                Point(
                    "setpoint",
                    base,
                    {"power_kw": -3.0, "seq": 41, "valid_until": 1.5e9, "plan_id": "p1"},
                    {"site_id": "depot", "charger_id": "c0"},
                )
            ]
        )
        assert store.flush(10)
        assert store.sent == 7 and store.dropped == 0
    finally:
        store.close()
    power = victoria.samples('{__name__="telemetry_power_kw"}')
    c0 = (("__name__", "telemetry_power_kw"), ("charger_id", "c0"), ("site_id", "depot"))
    assert power[(*c0, ("vehicle_id", "v0"))] == [
        (_ms(base + timedelta(seconds=i)), 1.5 * i) for i in (0, 2, 4)
    ]
    assert sum(len(v) for v in power.values()) == 6
    assert {
        v for s in victoria.samples('{__name__="telemetry_plugged"}').values() for _, v in s
    } == {1}
    (seq,) = victoria.samples('{__name__="setpoint_seq"}').values()
    assert seq == [(_ms(base), 41)]
    (sp,) = victoria.samples('{__name__="setpoint_power_kw"}').values()
    assert sp == [(_ms(base), -3.0)]


def test_an_outage_mid_stream_loses_and_repeats_nothing(victoria: Victoria, tmp_path: Path) -> None:
    """Stop the server mid-stream, keep writing, start it again on the same data: every
    point arrives exactly once, and the writer never makes the caller wait."""
    base = _base()
    n_phase, chunk = 1000, 10
    store = _store(victoria.url, tmp_path / "buf", batch_size=200)
    slowest = 0.0
    peak_buffered = 0

    def stream(first: int) -> None:
        nonlocal slowest, peak_buffered
        for k in range(first, first + n_phase, chunk):
            points = [
                Point("outage", base + timedelta(milliseconds=10 * i), {"n": float(i)}, {"s": "a"})
                for i in range(k, k + chunk)
            ]
            started = time.perf_counter()
            store.write(points)
            slowest = max(slowest, time.perf_counter() - started)
            peak_buffered = max(peak_buffered, store.buffer.count)
            time.sleep(0.002)

    try:
        stream(0)
        deadline = time.monotonic() + 10
        while store.sent < n_phase // 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        sent_before = store.sent
        victoria.stop()
        stream(n_phase)
        down_buffered = store.buffer.count
        victoria.start()
        stream(2 * n_phase)
        assert store.flush(30)
    finally:
        store.close()
    written = 3 * n_phase
    (series,) = victoria.samples('{__name__="outage_n"}').values()
    print(
        f"\noutage: {written} points written, {sent_before} sent before the stop, "
        f"{down_buffered} on disk at the restart (peak {peak_buffered}), "
        f"{store.sent} accepted by the server, {len(series)} received, "
        f"{store.dropped} dropped; slowest write() {slowest * 1000:.2f} ms"
    )
    assert 0 < sent_before < written
    assert down_buffered > 0  # the outage was real: points waited on disk
    assert store.dropped == 0
    assert store.sent == written
    assert len(series) == written
    assert series == [
        (_ms(base + timedelta(milliseconds=10 * i)), float(i)) for i in range(written)
    ]
    assert slowest < 0.05


def test_the_buffer_outlives_the_adapter_and_keeps_the_newest_points(
    victoria: Victoria, tmp_path: Path
) -> None:
    base = _base()
    victoria.stop()
    first = _store(victoria.url, tmp_path / "buf", buffer_max_points=300, batch_size=100)
    first.write([Point("kept", base + timedelta(seconds=i), {"n": float(i)}) for i in range(500)])
    assert not first.flush(5)
    first.close()
    assert first.dropped == 200
    victoria.start()
    second = _store(victoria.url, tmp_path / "buf", buffer_max_points=300)
    try:
        assert second.pending == 300
        assert second.flush(10)
    finally:
        second.close()
    (series,) = victoria.samples('{__name__="kept_n"}').values()
    assert series == [(_ms(base + timedelta(seconds=i)), float(i)) for i in range(200, 500)]
