"""One simulated charger: its setpoint, its fail-safe power and the plugged vehicle's battery.

Pure physics, no I/O. Power follows the sign convention of DESIGN.md (positive = charging).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from aggregator.domain import Charger, Session, Setpoint, Telemetry, Vehicle

# Below this much energy headroom a battery counts as full (or empty). [kWh]
_EPS_KWH = 1e-9


@dataclass
class PluggedVehicle:
    """A vehicle plugged into a charger for one session, with its energy now. [kWh]"""

    session: Session
    vehicle: Vehicle
    energy_kwh: float
    arrival_energy_kwh: float

    @property
    def soc(self) -> float:
        return min(1.0, max(0.0, self.energy_kwh / self.vehicle.battery_kwh))


class SimCharger:
    """A charger following its latest setpoint until ``valid_until``, then ``safe_power_kw``."""

    def __init__(self, charger: Charger, *, safe_power_kw: float, reports_soc: bool) -> None:
        if not math.isfinite(safe_power_kw):
            raise ValueError(f"charger {charger.charger_id}: safe_power_kw must be finite")
        self.charger = charger
        self.safe_power_kw = safe_power_kw
        self.reports_soc = reports_soc
        self.setpoint: Setpoint | None = None
        self.plugged: PluggedVehicle | None = None

    @property
    def charger_id(self) -> str:
        return self.charger.charger_id

    def apply(self, sp: Setpoint) -> bool:
        """Keep ``sp`` unless it is not newer (by ``seq``) than the one applied last."""
        if self.setpoint is not None and sp.seq <= self.setpoint.seq:
            return False
        self.setpoint = sp
        return True

    def on_fallback(self, at: datetime) -> bool:
        """True when no setpoint is valid at ``at``: none came, it expired, or it was issued
        before the plugged-in vehicle arrived (it was meant for the one before)."""
        sp = self.setpoint
        if sp is None or at >= sp.valid_until:
            return True
        return self.plugged is not None and sp.issued_at < self.plugged.session.arrival

    def commanded_kw(self, at: datetime) -> float:
        """The power asked for at ``at``, before any limit. [kW]"""
        if self.setpoint is None or self.on_fallback(at):
            return self.safe_power_kw
        return self.setpoint.power_kw

    def expiry_after(self, at: datetime) -> datetime | None:
        """When the current setpoint stops being valid, if that lies after ``at``."""
        if self.setpoint is not None and self.setpoint.valid_until > at:
            return self.setpoint.valid_until
        return None

    def limited_kw(self, at: datetime) -> float:
        """Commanded power clipped to the charger's and vehicle's limits (0 when unplugged)."""
        if self.plugged is None:
            return 0.0
        vehicle = self.plugged.vehicle
        max_charge = min(self.charger.max_charge_kw, vehicle.max_charge_kw)
        max_discharge = 0.0
        if vehicle.v2g_allowed and self.charger.bidirectional:
            max_discharge = min(self.charger.max_discharge_kw, vehicle.max_discharge_kw)
        return min(max_charge, max(-max_discharge, self.commanded_kw(at)))

    def power_kw(self, at: datetime) -> float:
        """Power actually drawn at ``at``: a full battery takes nothing, an empty one gives none."""
        power = self.limited_kw(at)
        plugged = self.plugged
        if plugged is None:
            return 0.0
        if power > 0 and plugged.energy_kwh >= plugged.vehicle.battery_kwh - _EPS_KWH:
            return 0.0
        if power < 0 and plugged.energy_kwh <= _EPS_KWH:
            return 0.0
        return power

    def integrate(self, t0: datetime, t1: datetime) -> None:
        """Move the battery from ``t0`` to ``t1``; the command must be constant in between."""
        plugged = self.plugged
        if plugged is None or t1 <= t0:
            return
        hours = (t1 - t0).total_seconds() / 3600.0
        power = self.limited_kw(t0)
        vehicle = plugged.vehicle
        if power > 0:
            gained = power * vehicle.charge_efficiency * hours
            plugged.energy_kwh = min(vehicle.battery_kwh, plugged.energy_kwh + gained)
        elif power < 0:
            lost = -power / vehicle.discharge_efficiency * hours
            plugged.energy_kwh = max(0.0, plugged.energy_kwh - lost)

    def status(self, at: datetime) -> str:
        """``fallback`` on safe power with a vehicle plugged; else by the sign of the power."""
        if self.plugged is None:
            return "idle"
        if self.on_fallback(at):
            return "fallback"
        power = self.power_kw(at)
        if power > 0:
            return "charging"
        if power < 0:
            return "discharging"
        return "idle"

    def reading(self, site_id: str, at: datetime) -> Telemetry:
        plugged = self.plugged
        soc = None
        if plugged is not None and self.reports_soc:
            soc = plugged.soc
        return Telemetry(
            site_id=site_id,
            charger_id=self.charger_id,
            ts=at,
            power_kw=self.power_kw(at),
            plugged=plugged is not None,
            vehicle_id=None if plugged is None else plugged.vehicle.vehicle_id,
            soc=soc,
            status=self.status(at),
        )
