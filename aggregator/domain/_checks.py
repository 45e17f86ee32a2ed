"""Small validation helpers shared by the domain dataclasses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from aggregator.domain.errors import ValidationError


def require_utc(entity: str, field: str, value: datetime) -> None:
    """Reject naive datetimes and any offset other than UTC."""
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValidationError(entity, field, f"must be a timezone-aware UTC time, got {value!r}")


def require_finite(entity: str, field: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValidationError(entity, field, f"must be a finite number, got {value!r}")


def require_non_negative(entity: str, field: str, value: float) -> None:
    require_finite(entity, field, value)
    if value < 0:
        raise ValidationError(entity, field, f"must be >= 0, got {value}")


def require_fraction(entity: str, field: str, value: float) -> None:
    require_finite(entity, field, value)
    if not 0.0 <= value <= 1.0:
        raise ValidationError(entity, field, f"must be within [0, 1], got {value}")


def require_efficiency(entity: str, field: str, value: float) -> None:
    require_finite(entity, field, value)
    if not 0.0 < value <= 1.0:
        raise ValidationError(entity, field, f"must be within (0, 1], got {value}")


def require_series(
    entity: str, field: str, values: Sequence[float], *, non_negative: bool = False
) -> None:
    for i, v in enumerate(values):
        if non_negative:
            require_non_negative(entity, f"{field}[{i}]", v)
        else:
            require_finite(entity, f"{field}[{i}]", v)


def require_departure_need(
    entity: str, target_soc: float | None, energy_kwh: float | None, min_soc: float
) -> None:
    """Exactly one of target SoC and energy; the floor never above the target."""
    require_fraction(entity, "min_soc", min_soc)
    if (target_soc is None) == (energy_kwh is None):
        raise ValidationError(entity, "target_soc", "give one of target_soc, energy_kwh")
    if target_soc is not None:
        require_fraction(entity, "target_soc", target_soc)
        if min_soc > target_soc:
            raise ValidationError(entity, "min_soc", "must be <= target_soc")
    if energy_kwh is not None:
        require_non_negative(entity, "energy_kwh", energy_kwh)
