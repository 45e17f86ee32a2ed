"""Grid signals: prices per slot and demand-response events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from aggregator.domain._checks import require_non_negative, require_series, require_utc
from aggregator.domain.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Prices:
    """Import and export prices per slot of the planning grid. [currency/MWh]

    Negative prices are allowed (they occur in day-ahead markets).
    """

    import_per_mwh: tuple[float, ...]
    export_per_mwh: tuple[float, ...]

    def __post_init__(self) -> None:
        require_series("prices", "import_per_mwh", self.import_per_mwh)
        require_series("prices", "export_per_mwh", self.export_per_mwh)
        if len(self.import_per_mwh) != len(self.export_per_mwh):
            raise ValidationError(
                "prices", "export_per_mwh", "must have as many slots as import_per_mwh"
            )

    @classmethod
    def flat(cls, price_per_mwh: float, n_slots: int) -> Prices:
        values = (price_per_mwh,) * n_slots
        return cls(values, values)


@dataclass(frozen=True, slots=True)
class GridEvent:
    """A demand-response event over ``[start, end)``.

    Either ``cap_kw``: the affected sites' aggregate net import stays at or below it; or
    ``shed_kw``: it stays that far below what the plan without the event would import.
    Empty ``site_ids`` means every site of the fleet.
    """

    event_id: str
    start: datetime
    end: datetime
    site_ids: frozenset[str] = field(default_factory=frozenset)
    cap_kw: float | None = None
    shed_kw: float | None = None

    def __post_init__(self) -> None:
        entity = f"event {self.event_id}"
        if not self.event_id:
            raise ValidationError("event", "event_id", "must not be empty")
        require_utc(entity, "start", self.start)
        require_utc(entity, "end", self.end)
        if self.end <= self.start:
            raise ValidationError(entity, "end", "must be after start")
        if (self.cap_kw is None) == (self.shed_kw is None):
            raise ValidationError(entity, "cap_kw", "give exactly one of cap_kw, shed_kw")
        if self.shed_kw is not None:
            require_non_negative(entity, "shed_kw", self.shed_kw)
        if self.cap_kw is not None:
            # A negative cap (forced export) is a legitimate request; only reject nonsense.
            require_series(entity, "cap_kw", (self.cap_kw,))
