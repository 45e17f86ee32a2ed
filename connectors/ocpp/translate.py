"""Wire translation: OCPP meter values to our units, setpoints to charging profiles.

Pure functions over the snake_case dicts the ``ocpp`` library hands to handlers and the
camelCase dicts it sends (it leaves camelCase keys alone).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aggregator.domain import Setpoint
from connectors.ocpp.settings import OcppChargerSettings

# One fixed id and stack level per purpose and connector: a new TxProfile replaces the old
# one (same id), so a stale profile can never sit above a fresh one.
DEFAULT_PROFILE_ID = 1
DEFAULT_STACK_LEVEL = 0
TX_PROFILE_ID = 2
TX_STACK_LEVEL = 1

_PLUGGED_16 = {"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"}


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def plugged_from_status(version: str, status: str) -> bool | None:
    """Whether a StatusNotification says a vehicle is connected; None when it does not tell."""
    if version == "1.6":
        if status in _PLUGGED_16:
            return True
        if status == "Available":
            return False
        return None
    if status == "Occupied":
        return True
    if status == "Available":
        return False
    return None


@dataclass(frozen=True)
class MeterReading:
    power_kw: float | None = None
    soc: float | None = None


def _value(sample: Mapping[str, Any]) -> tuple[float, str]:
    """The sample's value and unit (1.6: string value and ``unit``; 2.x: ``unit_of_measure``)."""
    value = float(sample["value"])
    unit = sample.get("unit")
    uom = sample.get("unit_of_measure")
    if isinstance(uom, Mapping):
        unit = uom.get("unit", unit)
        value *= 10.0 ** int(uom.get("multiplier", 0))
    return value, str(unit or "")


def read_meter_values(meter_values: Iterable[Mapping[str, Any]]) -> MeterReading:
    """Power (import minus export, kW) and SoC (0..1) from the last meter value that has them.

    A measurand given as a total is used as it is; given only per phase, the phases are added.
    """
    power: float | None = None
    soc: float | None = None
    for mv in meter_values:
        totals: dict[str, float] = {}
        phases: dict[str, float] = {}
        for sample in mv.get("sampled_value", []):
            measurand = sample.get("measurand", "Energy.Active.Import.Register")
            value, unit = _value(sample)
            if measurand == "SoC":
                soc = min(max(value / 100.0, 0.0), 1.0)
                continue
            if not measurand.startswith("Power.Active."):
                continue
            kw = value / 1000.0 if unit in ("W", "") else value
            phase = sample.get("phase")
            if phase is None:
                totals[measurand] = totals.get(measurand, 0.0) + kw
            elif phase in ("L1", "L2", "L3", "L1-N", "L2-N", "L3-N"):
                phases[measurand] = phases.get(measurand, 0.0) + kw
        found = False
        total = 0.0
        for measurand, sign in (("Power.Active.Import", 1.0), ("Power.Active.Export", -1.0)):
            if measurand in totals:
                total += sign * totals[measurand]
                found = True
            elif measurand in phases:
                total += sign * phases[measurand]
                found = True
        if found:
            power = total
    return MeterReading(power, soc)


def _rate(kw: float, charger: OcppChargerSettings) -> float:
    """kW in the charger's unit, rounded toward zero to 0.1 (never above what was planned)."""
    watts = kw * 1000.0
    rate = watts if charger.unit == "W" else watts / (charger.voltage * charger.phases)
    return math.trunc(rate * 10.0) / 10.0


def _period(kw: float, charger: OcppChargerSettings, version: str) -> dict[str, Any]:
    period: dict[str, Any] = {"startPeriod": 0}
    if charger.unit == "A":
        period["numberPhases"] = charger.phases
    if kw < 0 and charger.bidirectional and version == "2.1":
        # V2X (OCPP 2.1): the central system's setpoint, negative = discharge, and the same
        # value as discharge limit; no charging in this period.
        rate = _rate(kw, charger)
        period.update(
            operationMode="CentralSetpoint", setpoint=rate, dischargeLimit=rate, limit=0.0
        )
        return period
    period["limit"] = _rate(max(kw, 0.0), charger)
    return period


def tx_profile(
    sp: Setpoint, charger: OcppChargerSettings, version: str, transaction_id: str | int
) -> dict[str, Any]:
    """The setpoint as a TxProfile valid from issue to ``valid_until``."""
    duration = max(1, math.ceil((sp.valid_until - sp.issued_at).total_seconds()))
    schedule: dict[str, Any] = {
        "chargingRateUnit": charger.unit,
        "chargingSchedulePeriod": [_period(sp.power_kw, charger, version)],
        "startSchedule": iso(sp.issued_at),
        "duration": duration,
    }
    profile: dict[str, Any] = {
        "stackLevel": TX_STACK_LEVEL,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "validFrom": iso(sp.issued_at),
        "validTo": iso(sp.valid_until),
        "transactionId": transaction_id if version == "1.6" else str(transaction_id),
    }
    if version == "1.6":
        profile["chargingProfileId"] = TX_PROFILE_ID
        profile["chargingSchedule"] = schedule
    else:
        profile["id"] = TX_PROFILE_ID
        profile["chargingSchedule"] = [{"id": TX_PROFILE_ID, **schedule}]
    return profile


def default_profile(charger: OcppChargerSettings, version: str) -> dict[str, Any]:
    """The TxDefaultProfile at the charger's safe limit (what it runs on without a TxProfile)."""
    schedule: dict[str, Any] = {
        "chargingRateUnit": charger.unit,
        "chargingSchedulePeriod": [_period(charger.safe_limit_kw, charger, version)],
    }
    profile: dict[str, Any] = {
        "stackLevel": DEFAULT_STACK_LEVEL,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
    }
    if version == "1.6":
        profile["chargingProfileId"] = DEFAULT_PROFILE_ID
        profile["chargingSchedule"] = schedule
    else:
        profile["id"] = DEFAULT_PROFILE_ID
        profile["chargingSchedule"] = [{"id": DEFAULT_PROFILE_ID, **schedule}]
    return profile


def profile_limit(profile: Mapping[str, Any]) -> float:
    """The first period's ``limit`` of a profile we built (camelCase)."""
    schedule = profile["chargingSchedule"]
    schedule = schedule[0] if isinstance(schedule, list) else schedule
    return float(schedule["chargingSchedulePeriod"][0]["limit"])


def composite_limit(result: Any) -> float | None:
    """The limit at the start of a GetCompositeSchedule answer (1.6 or 2.x), None if absent.

    The ``ocpp`` library hands the answer over with snake_case keys.
    """
    if getattr(result, "status", None) != "Accepted":
        return None
    schedule = getattr(result, "charging_schedule", None) or getattr(result, "schedule", None)
    if not isinstance(schedule, Mapping):
        return None
    periods = schedule.get("charging_schedule_period") or []
    if not periods:
        return None
    first = min(periods, key=lambda p: p.get("start_period", 0))
    return float(first["limit"])
