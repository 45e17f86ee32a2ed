"""Item bases (EMIX units) of oadr event signals -> factors to our kW and per-MWh units.

openleadr delivers a signal's item base as ``measurement: {name, unit, scale}``, except that
its normaliser only does so up to the first signal without one; later signals keep the raw
``{"powerReal": {"item_units", "si_scale_code", ...}}`` shape. Both are read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.openadr.mapping import PriceUnit

SI_SCALE = {
    "p": 1e-12,
    "n": 1e-9,
    "micro": 1e-6,
    "m": 1e-3,
    "c": 1e-2,
    "d": 1e-1,
    "none": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
}
_POWER_UNITS_IN_W = {"W": 1.0, "kW": 1e3, "MW": 1e6}
# Raw keys openleadr may leave on a signal; "currency_per_kw" is its snake-cased currencyPerKW.
_RAW_NAMES = {
    "powerReal": "powerReal",
    "powerApparent": "powerApparent",
    "powerReactive": "powerReactive",
    "energyReal": "energyReal",
    "currency": "currency",
    "currencyPerKWh": "currencyPerKWh",
    "currency_per_kw": "currencyPerKW",
    "currencyPerThm": "currencyPerThm",
    "customUnit": "customUnit",
}


@dataclass(frozen=True, slots=True)
class ItemBase:
    """What a signal's payload is denominated in: ``powerReal`` in ``W`` at scale ``k``..."""

    name: str
    unit: str | None
    scale: str | None


def item_base(signal: dict[str, Any]) -> ItemBase | None:
    """The signal's item base, in either shape openleadr produces, or None if it has none."""
    measurement = signal.get("measurement")
    if isinstance(measurement, dict) and measurement.get("name"):
        return ItemBase(str(measurement["name"]), _text(measurement, "unit"), _scale(measurement))
    for key, name in _RAW_NAMES.items():
        raw = signal.get(key)
        if isinstance(raw, dict):
            return ItemBase(name, _text(raw, "item_units"), _text(raw, "si_scale_code"))
    return None


def kw_factor(base: ItemBase | None) -> tuple[float, str | None]:
    """Multiply a power payload by this to get kW; or (0, why) if it is not a real power.

    No item base means the payload is in kW already.
    """
    if base is None:
        return 1.0, None
    if base.name != "powerReal":
        return 0.0, f"item base {base.name} is not a real power"
    unit_w = _POWER_UNITS_IN_W.get(base.unit or "W")
    scale = SI_SCALE.get(base.scale or "none")
    if unit_w is None or scale is None:
        return 0.0, f"power unit {base.unit!r} with scale {base.scale!r} is not understood"
    return unit_w * scale / 1e3, None


def price_factor(base: ItemBase | None, default_unit: PriceUnit) -> tuple[float, str | None]:
    """Multiply a price payload by this to get a price per MWh; or (0, why).

    ``currencyPerKWh`` is per kWh (x1000); no item base means the program's ``price_unit``.
    """
    if base is None:
        return (1e3 if default_unit == "per_kwh" else 1.0), None
    if base.name != "currencyPerKWh":
        return 0.0, f"item base {base.name} is not an energy price"
    if (base.scale or "none") != "none":
        return 0.0, f"price scale {base.scale!r} is not understood"
    return 1e3, None


def _text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return None if value is None else str(value)


def _scale(measurement: dict[str, Any]) -> str | None:
    return _text(measurement, "scale") or _text(measurement, "si_scale_code")
