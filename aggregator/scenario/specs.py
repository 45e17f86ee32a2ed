"""Vehicle model specs (ev2gym's ``ev_specs`` JSON layout) used as defaults for vehicles."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aggregator.scenario.errors import DataError


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What a vehicle model brings: battery [kWh], AC power limits [kW], charge efficiency."""

    battery_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float | None


def _number(model: str, spec: dict[str, Any], key: str, shown: str) -> float:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"{shown}: model {model!r}: {key} must be a number, got {value!r}")
    return float(value)


def _charge_efficiency(spec: dict[str, Any]) -> float | None:
    # The curve is per charging current; zeros mark currents the car does not support. The
    # last supported point is the efficiency at full AC power, which is how fleets charge.
    curve = spec.get("3ph_ch_efficiency")
    if not isinstance(curve, list):
        return None
    points = [p for p in curve if isinstance(p, int | float) and not isinstance(p, bool) and p > 0]
    return float(points[-1]) / 100.0 if points else None


def read_vehicle_specs(path: Path, shown: str) -> dict[str, ModelSpec]:
    """Specs by model name. ``shown`` names the file in errors."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise DataError(f"cannot read {shown}: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"cannot parse {shown}: {err}") from None
    if not isinstance(raw, dict):
        raise DataError(f"{shown}: must map model names to specs")
    specs: dict[str, ModelSpec] = {}
    for model, spec in raw.items():
        if not isinstance(spec, dict):
            raise DataError(f"{shown}: model {model!r}: must be a mapping")
        specs[model] = ModelSpec(
            battery_kwh=_number(model, spec, "battery_capacity", shown),
            max_charge_kw=_number(model, spec, "max_ac_charge_power", shown),
            max_discharge_kw=_number(model, spec, "max_ac_discharge_power", shown),
            charge_efficiency=_charge_efficiency(spec),
        )
    return specs
