"""The SQL ``TimeSeriesStore`` (embedded default): points in ``timeseries_points``.

``write`` only appends to an in-memory queue; one background thread inserts the points in
batches (one transaction each) every ``flush_interval_s``, or sooner once ``batch_size``
points are waiting. While the database is away the points stay queued, retried with capped
backoff, up to ``max_pending`` points; beyond that the oldest are dropped and counted
(``dropped``). The queue lives in memory: what is still queued when the service stops with
the database away is lost (and counted). Queries read what is stored; ``flush()`` first to
see your own writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import insert, select

from aggregator.domain import Point
from connectors.sql.repository import SqlRepository
from connectors.sql.schema import TimeSeriesPointRow

log = logging.getLogger(__name__)

_LOG_EVERY_S = 60.0


class SqlTimeSeriesStore:
    """Time series in the SQL store's database, written off the caller's thread."""

    def __init__(
        self,
        repo: SqlRepository,
        *,
        batch_size: int = 2000,
        flush_interval_s: float = 1.0,
        max_pending: int = 1_000_000,
        max_backoff_s: float = 30.0,
    ) -> None:
        if batch_size < 1 or max_pending < 1 or flush_interval_s <= 0:
            raise ValueError("batch_size, max_pending and flush_interval_s must be positive")
        self.repo = repo
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_pending = max_pending
        self.max_backoff_s = max_backoff_s
        self._pending: deque[Point] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._done = threading.Condition(self._lock)
        self._requested = 0  # flush rounds asked for
        self._completed = 0  # flush rounds finished (each covers what was queued before it)
        self._clean = True  # the last round left nothing behind
        self._closing = False
        self._closed = False
        self._dropped = 0
        self._written = 0
        self._failures = 0
        self._logged_drop_at = 0.0
        self._thread = threading.Thread(target=self._run, name="timeseries-sql", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the port
    def write(self, points: Sequence[Point]) -> None:
        """Queue ``points``; never blocks on the database, never raises on an outage."""
        if not points:
            return
        with self._lock:
            if self._closed:
                self._drop(len(points), "the store is closed")
                return
            self._pending.extend(points)
            excess = len(self._pending) - self.max_pending
            if excess > 0:
                for _ in range(excess):
                    self._pending.popleft()
                self._drop(excess, f"more than {self.max_pending} points queued")
            full = len(self._pending) >= self.batch_size
        if full:
            self._wake.set()

    def query(
        self,
        measurement: str,
        start: datetime,
        stop: datetime,
        tags: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        """Points of ``measurement`` with ``start <= ts < stop`` (and these tag values), as a
        DataFrame: UTC ``DatetimeIndex`` named ``ts``, tag columns then field columns."""
        q = select(TimeSeriesPointRow.ts, TimeSeriesPointRow.tags, TimeSeriesPointRow.fields)
        q = q.where(
            TimeSeriesPointRow.measurement == measurement,
            TimeSeriesPointRow.ts >= start,
            TimeSeriesPointRow.ts < stop,
        )
        for key, value in (tags or {}).items():
            q = q.where(TimeSeriesPointRow.tags[key].as_string() == value)
        q = q.order_by(TimeSeriesPointRow.ts, TimeSeriesPointRow.id)
        with self.repo.reader.begin() as s:
            rows = s.execute(q).all()
        return points_frame([(ts, tags_, fields) for ts, tags_, fields in rows])

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Write everything queued now; True when nothing is left. Blocks (not on the loop)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            if self._closed:
                return not self._pending
            self._requested += 1
            target = self._requested
        self._wake.set()
        with self._done:
            while self._completed < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._done.wait(left)
            return self._clean and not self._pending

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (trying for ``timeout_s``), then stop the writer thread."""
        if self._closed:
            return
        self.flush(timeout_s)
        with self._lock:
            self._closing = True
        self._wake.set()
        self._thread.join(timeout_s)
        with self._lock:
            self._closed = True
            if self._pending:
                self._drop(len(self._pending), "still queued when the store closed")
                self._pending.clear()

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def written(self) -> int:
        """Points stored so far."""
        return self._written

    @property
    def pending(self) -> int:
        """Points queued, not stored yet."""
        return len(self._pending)

    # ------------------------------------------------------------------ the writer thread
    def _drop(self, n: int, why: str) -> None:
        """Count ``n`` lost points (lock held); log at most once a minute."""
        self._dropped += n
        now = time.monotonic()
        if now - self._logged_drop_at >= _LOG_EVERY_S:
            self._logged_drop_at = now
            log.error("time series: dropped %d points (%s; %d so far)", n, why, self._dropped)

    def _run(self) -> None:
        while True:
            backoff = min(self.max_backoff_s, self.flush_interval_s * 2**self._failures)
            self._wake.wait(backoff if self._failures else self.flush_interval_s)
            self._wake.clear()
            with self._lock:
                requested, closing = self._requested, self._closing
            clean = self._drain()
            with self._done:
                self._clean = clean
                self._completed = max(self._completed, requested)
                self._done.notify_all()
            if closing:
                return

    def _drain(self) -> bool:
        """Insert queued points batch by batch until none are left (True) or one fails."""
        while True:
            with self._lock:
                n = min(self.batch_size, len(self._pending))
                batch = [self._pending.popleft() for _ in range(n)]
            if not batch:
                self._failures = 0
                return True
            try:
                with self.repo.writer.begin() as s:
                    s.execute(insert(TimeSeriesPointRow), [_row(p) for p in batch])
            except Exception as exc:
                self._failures += 1
                with self._lock:
                    self._pending.extendleft(reversed(batch))
                    excess = len(self._pending) - self.max_pending
                    if excess > 0:
                        for _ in range(excess):
                            self._pending.popleft()
                        self._drop(excess, f"more than {self.max_pending} points queued")
                    queued = len(self._pending)
                if self._failures == 1 or self._failures % 20 == 0:
                    log.warning(
                        "time series: storing %d points failed (%s: %s); %d queued, retrying",
                        len(batch),
                        type(exc).__name__,
                        str(exc).splitlines()[0] if str(exc) else "",
                        queued,
                    )
                return False
            if self._failures:
                log.info("time series: the database takes points again")
            self._failures = 0
            self._written += len(batch)


def _row(p: Point) -> dict[str, Any]:
    return {
        "measurement": p.measurement,
        "ts": p.ts,
        "tags": dict(p.tags),
        "fields": dict(p.fields),
    }


def points_frame(
    rows: Sequence[tuple[datetime, Mapping[str, Any], Mapping[str, Any]]],
) -> pd.DataFrame:
    """(ts, tags, fields) rows as the port's DataFrame: UTC index ``ts``, tag columns (sorted)
    then field columns (sorted); a value a row does not have is missing (NaN/None)."""
    tag_names = sorted({k for _, tags, _ in rows for k in tags})
    field_names = sorted({k for _, _, fields in rows for k in fields} - set(tag_names))
    index = pd.DatetimeIndex([ts for ts, _, _ in rows], name="ts")
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    if not rows:
        return pd.DataFrame(index=index)
    records = [{**fields, **tags} for _, tags, fields in rows]
    return pd.DataFrame.from_records(records, index=index, columns=tag_names + field_names)
