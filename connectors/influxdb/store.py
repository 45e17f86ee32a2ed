"""The InfluxDB ``TimeSeriesStore``: v2 write API (line protocol) and Flux queries.

``write`` appends to an in-memory queue and returns. One writer thread, every
``flush_interval_s`` (or once ``batch_size`` points wait), turns the points into line
protocol and sends them in batches. While the server does not take them (connection refused,
timeout, 5xx, 429, 401/403/404), the batches go to the on-disk buffer (``buffer.py``), and
everything after them too, so order is kept; the server is tried again with capped backoff,
and the buffer is sent oldest first, each batch removed only once the server accepted it:
every point arrives once, in order. A full buffer drops its oldest points; a batch the server
refuses as invalid (400, 413, 422: retrying cannot help, and a partial write must not be sent
twice) is dropped too. Both are counted in ``dropped`` and logged.

Crash window: a batch accepted by the server but not yet removed from the buffer when the
process dies is sent again at the next start. InfluxDB keeps one value per series, field and
time, so such a repeat overwrites itself rather than doubling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

import pandas as pd
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from aggregator.domain import Point
from connectors.influxdb.buffer import DiskBuffer
from connectors.influxdb.flux import flux_frame, flux_query
from connectors.influxdb.lines import line_protocol

log = logging.getLogger(__name__)

Outcome = Literal["sent", "refused", "failed"]

# Answers that retrying the same batch cannot fix (malformed, too large, unprocessable).
_REFUSED = frozenset({400, 413, 422})
_LOG_EVERY_S = 60.0


class InfluxTimeSeriesStore:
    """Time series in InfluxDB 2.x (or 3.x through its v2 compatibility), never blocking."""

    def __init__(
        self,
        url: str,
        *,
        org: str,
        bucket: str,
        token: str | None,
        buffer_dir: Path,
        buffer_max_points: int = 1_000_000,
        batch_size: int = 2000,
        flush_interval_s: float = 1.0,
        timeout_s: float = 10.0,
        max_backoff_s: float = 30.0,
        max_queued: int = 100_000,
    ) -> None:
        if batch_size < 1 or max_queued < 1 or flush_interval_s <= 0:
            raise ValueError("batch_size, max_queued and flush_interval_s must be positive")
        self.url, self.org, self.bucket = url, org, bucket
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_backoff_s = max_backoff_s
        self.max_queued = max_queued
        self.buffer = DiskBuffer(buffer_dir, buffer_max_points)
        self._client = InfluxDBClient(
            url=url, token=token or "", org=org, timeout=int(timeout_s * 1000)
        )
        self._writer = self._client.write_api(write_options=SYNCHRONOUS)
        self._queue: deque[Point] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._done = threading.Condition(self._lock)
        self._requested = 0
        self._completed = 0
        self._clean = True
        self._closing = False
        self._closed = False
        self._dropped = 0
        self._sent = 0
        self._failures = 0
        self._next_try = 0.0  # monotonic time before which the server is not tried
        self._logged_drop_at = 0.0
        if self.buffer.count:
            log.info(
                "time series: %d points buffered in %s from before; sending them first",
                self.buffer.count,
                buffer_dir,
            )
        self._thread = threading.Thread(target=self._run, name="timeseries-influx", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"InfluxTimeSeriesStore({self.url!r}, bucket={self.bucket!r})"

    # ------------------------------------------------------------------ the port
    def write(self, points: Sequence[Point]) -> None:
        """Queue ``points``; never blocks on the server, never raises on an outage."""
        if not points:
            return
        with self._lock:
            if self._closed:
                self._drop(len(points), "the store is closed")
                return
            self._queue.extend(points)
            excess = len(self._queue) - self.max_queued
            if excess > 0:
                for _ in range(excess):
                    self._queue.popleft()
                self._drop(excess, f"more than {self.max_queued} points waiting in memory")
            full = len(self._queue) >= self.batch_size
        if full:
            self._wake.set()

    def query(
        self,
        measurement: str,
        start: datetime,
        stop: datetime,
        tags: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        """Flux (``flux.flux_query``): ``start <= ts < stop``, these tag values; UTC index."""
        text = flux_query(self.bucket, measurement, start, stop, tags)
        return flux_frame(self._client.query_api().query_data_frame(text, org=self.org))

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Try to send everything queued and buffered now, without waiting for the backoff;
        True when nothing is left. Blocks (not on the event loop)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            if self._closed:
                return not self._queue and not self.buffer.count
            self._requested += 1
            target = self._requested
        self._wake.set()
        with self._done:
            while self._completed < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._done.wait(left)
            return self._clean

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what can be sent within ``timeout_s``; the rest stays in the disk buffer for
        the next start. Stops the writer thread and closes the client."""
        if self._closed:
            return
        self.flush(timeout_s)
        with self._lock:
            self._closing = True
        self._wake.set()
        self._thread.join(timeout_s)
        with self._lock:
            self._closed = True
        if self._thread.is_alive():
            log.error("time series: the writer did not stop within %.0f s", timeout_s)
            return
        self.buffer.close()
        self._client.close()  # type: ignore[no-untyped-call]

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def sent(self) -> int:
        """Points the server accepted."""
        return self._sent

    @property
    def pending(self) -> int:
        """Points queued in memory or held in the disk buffer."""
        return len(self._queue) + self.buffer.count

    # ------------------------------------------------------------------ the writer thread
    def _drop(self, n: int, why: str) -> None:
        """Count ``n`` lost points; log at most once a minute."""
        self._dropped += n
        now = time.monotonic()
        if now - self._logged_drop_at >= _LOG_EVERY_S:
            self._logged_drop_at = now
            log.error("time series: dropped %d points (%s; %d so far)", n, why, self._dropped)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            with self._lock:
                requested, closing = self._requested, self._closing
            # A flush tries the server now, whatever the backoff; the closing round only if
            # the last try did not fail (a hanging server must not hold the stop twice).
            if requested > self._completed:
                may_send = True
            elif closing:
                may_send = not self._failures
            else:
                may_send = time.monotonic() >= self._next_try
            try:
                clean = self._round(may_send)
            except Exception:  # the writer must outlive anything (a full disk, a bug)
                log.exception("time series: writer round failed; trying again next round")
                clean = False
            with self._done:
                self._clean = clean
                self._completed = max(self._completed, requested)
                self._done.notify_all()
            if closing:
                return

    def _take(self) -> list[Point]:
        with self._lock:
            n = min(self.batch_size, len(self._queue))
            return [self._queue.popleft() for _ in range(n)]

    def _lines(self, points: list[Point]) -> list[str]:
        out = []
        for p in points:
            try:
                out.append(line_protocol(p))
            except Exception as exc:
                with self._lock:
                    self._drop(1, f"point {p.measurement} not convertible: {exc}")
        return out

    def _to_disk(self, lines: list[str]) -> None:
        try:
            lost = self.buffer.append(lines)
        except Exception as exc:  # a full or broken disk: these points are gone
            lost = len(lines)
            log.error("time series: cannot write the disk buffer: %s", exc)
        if lost:
            with self._lock:
                self._drop(lost, f"disk buffer full ({self.buffer.max_points} points)")

    def _round(self, may_send: bool) -> bool:
        """Send or buffer what is queued, then send the buffer; True when nothing is left.
        After a failure in this round, no more tries until the next."""
        while batch := self._take():
            lines = self._lines(batch)
            if not lines:
                continue
            if self.buffer.count == 0 and may_send:
                if self._send(lines) != "failed":
                    continue
                may_send = False
            self._to_disk(lines)
        while self.buffer.count and may_send:
            last_id, lines = self.buffer.head(self.batch_size)
            if self._send(lines) == "failed":
                may_send = False
                break
            self.buffer.remove_through(last_id)
            # Points queued meanwhile go behind the backlog, keeping the order.
            while batch := self._take():
                self._to_disk(self._lines(batch))
        with self._lock:
            return not self._queue and not self.buffer.count

    def _send(self, lines: list[str]) -> Outcome:
        try:
            # The lines carry nanoseconds: the client's default precision (WritePrecision.NS).
            self._writer.write(bucket=self.bucket, org=self.org, record=lines)
        except ApiException as exc:
            if exc.status in _REFUSED:
                reason = str(exc.body or exc.reason or "").strip().splitlines()
                with self._lock:
                    self._drop(
                        len(lines), f"refused by the server: {exc.status} {reason[:1] or ''}"
                    )
                self._succeeded()
                return "refused"
            self._failed(len(lines), f"HTTP {exc.status} {exc.reason}")
            return "failed"
        except Exception as exc:  # connection refused, timeout, DNS, TLS: the server is away
            self._failed(len(lines), f"{type(exc).__name__}: {exc}")
            return "failed"
        self._sent += len(lines)
        self._succeeded()
        return "sent"

    def _failed(self, n: int, why: str) -> None:
        self._failures += 1
        delay = min(self.max_backoff_s, self.flush_interval_s * 2 ** min(self._failures, 16))
        self._next_try = time.monotonic() + delay
        if self._failures == 1 or self._failures % 20 == 0:
            log.warning(
                "time series: InfluxDB at %s did not take %d points (%s); buffering to disk "
                "(%d held), next try in %.0f s",
                self.url,
                n,
                why.splitlines()[0],
                self.buffer.count,
                delay,
            )

    def _succeeded(self) -> None:
        if self._failures:
            log.info(
                "time series: InfluxDB at %s takes points again; sending %d buffered",
                self.url,
                self.buffer.count,
            )
        self._failures = 0
        self._next_try = 0.0
