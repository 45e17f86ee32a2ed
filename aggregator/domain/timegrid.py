"""The time grid: the one way to index planning slots ``[start + i*step, start + (i+1)*step)``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.domain._checks import require_utc
from aggregator.domain.errors import ValidationError


@dataclass(frozen=True, slots=True)
class TimeGrid:
    """``n_slots`` slots of length ``step`` from ``start`` (aware UTC)."""

    start: datetime
    step: timedelta
    n_slots: int

    def __post_init__(self) -> None:
        require_utc("time grid", "start", self.start)
        if self.step <= timedelta(0):
            raise ValidationError("time grid", "step", f"must be positive, got {self.step}")
        if self.n_slots < 1:
            raise ValidationError("time grid", "n_slots", f"must be >= 1, got {self.n_slots}")

    @property
    def end(self) -> datetime:
        return self.start + self.step * self.n_slots

    @property
    def step_hours(self) -> float:
        """Slot length. [h]"""
        return self.step.total_seconds() / 3600.0

    def slot_start(self, index: int) -> datetime:
        if not 0 <= index < self.n_slots:
            raise IndexError(f"slot {index} outside 0..{self.n_slots - 1}")
        return self.start + self.step * index

    def slot_starts(self) -> Iterator[datetime]:
        for i in range(self.n_slots):
            yield self.start + self.step * i

    def position(self, when: datetime) -> float:
        """Fractional slot position of ``when`` (0.0 at ``start``, ``n_slots`` at ``end``)."""
        return (when - self.start) / self.step

    def index_of(self, when: datetime) -> int:
        """Index of the slot containing ``when``; IndexError outside the grid."""
        pos = self.position(when)
        index = int(pos // 1)
        if not 0 <= index < self.n_slots:
            raise IndexError(f"{when.isoformat()} is outside the grid")
        return index

    def overlap_fraction(self, index: int, begin: datetime, end: datetime) -> float:
        """Share of slot ``index`` covered by ``[begin, end)``, in [0, 1]."""
        s = self.slot_start(index)
        e = s + self.step
        covered = min(e, end) - max(s, begin)
        return max(0.0, covered / self.step)
