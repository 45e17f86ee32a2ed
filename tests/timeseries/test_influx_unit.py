"""The InfluxDB adapter without a real server: line protocol, Flux text, the frame, how it
treats each kind of server answer (a stub HTTP server), the disk buffer."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from aggregator.domain import Point
from connectors.influxdb import BufferInUseError, InfluxTimeSeriesStore, line_protocol
from connectors.influxdb.buffer import DiskBuffer
from connectors.influxdb.flux import flux_frame, flux_query, flux_string
from tests.timeseries.victoria import free_port

T0 = datetime(2025, 1, 6, 8, tzinfo=UTC)


def test_line_protocol_escapes_and_types() -> None:
    p = Point(
        "tele metry",
        datetime(2025, 1, 6, 8, 0, 0, 123456, tzinfo=UTC),
        {"x": 1.0, "on": True, "seq": 3, "note": 'he said "hi" \\', "tiny": 1e-20},
        {"site id": "a,b=c", "empty": "", "charger_id": "c1"},
    )
    assert line_protocol(p) == (
        "tele\\ metry,charger_id=c1,site\\ id=a\\,b\\=c "
        'note="he said \\"hi\\" \\\\",on=true,seq=3i,tiny=1e-20,x=1.0 '
        "1736150400123456000"
    )


def test_flux_query_text() -> None:
    text = flux_query(
        "fleet",
        "telemetry",
        T0,
        T0 + timedelta(hours=1, microseconds=5),
        {"site_id": 'de"pot', "charger_id": "c${1}\\"},
    )
    assert text == "\n".join(
        [
            'from(bucket: "fleet")',
            "  |> range(start: 2025-01-06T08:00:00.000000Z, stop: 2025-01-06T09:00:00.000005Z)",
            '  |> filter(fn: (r) => r._measurement == "telemetry")',
            '  |> filter(fn: (r) => r["charger_id"] == "c\\${1}\\\\")',
            '  |> filter(fn: (r) => r["site_id"] == "de\\"pot")',
            '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")',
            "  |> group()",
            '  |> sort(columns: ["_time"])',
        ]
    )
    assert flux_string("a\nb\tc") == '"a\\nb\\tc"'
    with pytest.raises(ValueError, match="naive"):
        flux_query("b", "m", datetime(2025, 1, 1), T0)


def test_flux_frame_is_the_ports_frame() -> None:
    """What query_data_frame returns after the pivot (Flux's own columns included)."""
    times = pd.to_datetime(["2025-01-06T08:00:01Z", "2025-01-06T08:00:00Z"], utc=True)
    raw = pd.DataFrame(
        {
            "result": ["_result"] * 2,
            "table": [0, 0],
            "_start": [pd.Timestamp(T0)] * 2,
            "_stop": [pd.Timestamp(T0 + timedelta(hours=1))] * 2,
            "_time": times,
            "_measurement": ["telemetry"] * 2,
            "site_id": ["depot", "depot"],
            "power_kw": [2.0, 1.0],
        }
    )
    frame = flux_frame([raw, raw.iloc[0:0]])
    assert list(frame.columns) == ["site_id", "power_kw"]
    assert frame.index.name == "ts" and str(frame.index.tz) == "UTC"
    assert list(frame.index) == [T0, T0 + timedelta(seconds=1)]
    assert frame["power_kw"].tolist() == [1.0, 2.0]
    empty = flux_frame(pd.DataFrame())
    assert empty.empty and str(empty.index.tz) == "UTC" and empty.index.name == "ts"


def test_disk_buffer_keeps_order_bound_and_survives_reopening(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path / "buf", max_points=5)
    assert buf.append(["a", "b", "c"]) == 0
    assert buf.append(["d", "e", "f", "g"]) == 2  # the two oldest make room
    last, lines = buf.head(2)
    assert lines == ["c", "d"]
    buf.remove_through(last)
    assert buf.count == 3
    with pytest.raises(BufferInUseError, match="in use"):
        DiskBuffer(tmp_path / "buf", max_points=5)
    buf.close()
    again = DiskBuffer(tmp_path / "buf", max_points=5)
    try:
        assert again.count == 3
        assert again.head(10)[1] == ["e", "f", "g"]
        assert again.append([str(i) for i in range(8)]) == 6  # 3 new ones too many, 3 old
        assert again.head(10)[1] == ["3", "4", "5", "6", "7"]
    finally:
        again.close()


class Stub(http.server.BaseHTTPRequestHandler):
    """Answers /api/v2/write with the status the test sets; records the bodies."""

    status = 204
    bodies: list[str]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length).decode()
        self.server.bodies.append(body)
        code = self.server.status
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Stub)
    server.bodies = []
    server.status = 204
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _store(url: str, folder: Path, **kw: object) -> InfluxTimeSeriesStore:
    options: dict[str, object] = {"flush_interval_s": 0.05, "max_backoff_s": 0.1, **kw}
    return InfluxTimeSeriesStore(
        url,
        org="o",
        bucket="b",
        token="t",
        buffer_dir=folder,
        **options,
    )


def _points(n: int, first: int = 0) -> list[Point]:
    return [Point("m", T0 + timedelta(seconds=i), {"v": float(i)}) for i in range(first, n)]


def test_a_refused_batch_is_dropped_and_counted_not_retried(
    stub: http.server.ThreadingHTTPServer, tmp_path: Path
) -> None:
    stub.status = 400
    store = _store(f"http://127.0.0.1:{stub.server_port}", tmp_path / "buf", batch_size=10)
    try:
        store.write(_points(25))
        assert store.flush(5)
        assert store.dropped == 25
        assert store.pending == 0
        assert len(stub.bodies) == 3
    finally:
        store.close()


def test_server_errors_buffer_to_disk_and_resend_in_order(
    stub: http.server.ThreadingHTTPServer, tmp_path: Path
) -> None:
    stub.status = 503
    store = _store(f"http://127.0.0.1:{stub.server_port}", tmp_path / "buf", batch_size=10)
    try:
        store.write(_points(25))
        assert not store.flush(5)
        assert store.buffer.count == 25
        stub.bodies.clear()
        stub.status = 204
        store.write(_points(30, first=25))
        assert store.flush(5)
        assert store.dropped == 0 and store.pending == 0 and store.sent == 30
        sent = [line for b in stub.bodies for line in b.splitlines()]
        assert sent == [line_protocol(p) for p in _points(30)]
    finally:
        store.close()


def test_a_hanging_server_holds_the_stop_once_and_the_points_stay_on_disk(tmp_path: Path) -> None:
    """A server that takes the connection and never answers: each try costs the timeout;
    close() tries once, then keeps what is left on disk for the next start."""
    import socket

    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)  # connections complete in the kernel; nobody ever reads
        url = f"http://127.0.0.1:{hole.getsockname()[1]}"
        store = _store(url, tmp_path / "buf", timeout_s=0.5, flush_interval_s=60.0)
        store.write(_points(10))
        started = time.perf_counter()
        store.close(timeout_s=5.0)
        took = time.perf_counter() - started
    assert 0.4 < took < 1.5
    assert store.dropped == 0
    again = DiskBuffer(tmp_path / "buf", 100)
    try:
        assert again.head(100)[1] == [line_protocol(p) for p in _points(10)]
    finally:
        again.close()
