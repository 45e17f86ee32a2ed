"""Points of the time-series store: one measurement, its tags, its fields, at one UTC time.

Measurements and their tags and fields are listed in docs/timeseries.md (the contract both
adapters and the Grafana dashboard follow).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from aggregator.domain._checks import require_utc
from aggregator.domain.errors import ValidationError

FieldValue = float | int | bool | str


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    ts: datetime
    fields: Mapping[str, FieldValue]
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        entity = f"point {self.measurement}"
        if not self.measurement:
            raise ValidationError("point", "measurement", "must not be empty")
        require_utc(entity, "ts", self.ts)
        if not self.fields:
            raise ValidationError(entity, "fields", "must not be empty")
        for name, value in self.fields.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValidationError(entity, f"fields.{name}", "must be finite")
