"""A ``DrEventStore`` in memory (not durable: the SQL store's table comes next)."""

from __future__ import annotations

import threading

from aggregator.domain import DrEventRecord


class InMemoryDrEventStore:
    def __init__(self) -> None:
        self._records: dict[str, DrEventRecord] = {}
        self._lock = threading.Lock()

    def get(self, event_id: str) -> DrEventRecord | None:
        with self._lock:
            return self._records.get(event_id)

    def save(self, record: DrEventRecord) -> None:
        with self._lock:
            self._records[record.event.event_id] = record

    def all(self) -> list[DrEventRecord]:
        with self._lock:
            return list(self._records.values())
