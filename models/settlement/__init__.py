"""Event settlement: baselines (plan, X-of-Y meter days), metered power, delivery, compliance.

Pure maths, no I/O; docs/settlement.md states the formulas and rules.
"""

from aggregator.domain import (
    BaselineFigures,
    BaselineKind,
    MeterBaseline,
    Settlement,
    SettlementInterval,
)
from models.settlement.baseline import (
    InsufficientHistoryError,
    MeterBaselineConfig,
    SameDayAdjustment,
    SitePowerOnGrid,
    SlotPower,
    meter_baseline,
    plan_baseline_kw,
)
from models.settlement.series import MeterData
from models.settlement.settle import (
    settle_dr_event,
    settle_event,
)
from models.settlement.telemetry import site_power_from_telemetry

__all__ = [
    "BaselineFigures",
    "BaselineKind",
    "InsufficientHistoryError",
    "MeterBaseline",
    "MeterBaselineConfig",
    "MeterData",
    "SameDayAdjustment",
    "Settlement",
    "SettlementInterval",
    "SitePowerOnGrid",
    "SlotPower",
    "meter_baseline",
    "plan_baseline_kw",
    "settle_dr_event",
    "settle_event",
    "site_power_from_telemetry",
]
