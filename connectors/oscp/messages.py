"""OSCP 2.0 messages (Open Charge Alliance), as pydantic models written from the message
definitions. Field names are the wire names (snake_case JSON). Unknown fields are refused:
a peer that sends them is told which field, rather than having it silently ignored."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Phase(StrEnum):
    ONE = "ONE"
    TWO = "TWO"
    THREE = "THREE"
    ALL = "ALL"
    UNKNOWN = "UNKNOWN"


class CapacityUnit(StrEnum):
    A = "A"
    W = "W"
    KW = "KW"
    WH = "WH"
    KWH = "KWH"


class CapacityForecastType(StrEnum):
    CONSUMPTION = "CONSUMPTION"
    GENERATION = "GENERATION"
    FALLBACK_CONSUMPTION = "FALLBACK_CONSUMPTION"
    FALLBACK_GENERATION = "FALLBACK_GENERATION"
    OPTIMUM = "OPTIMUM"


class MeasurementConfiguration(StrEnum):
    CONTINUOUS = "CONTINUOUS"
    INTERMITTENT = "INTERMITTENT"


class EnergyMeasurementUnit(StrEnum):
    WH = "WH"
    KWH = "KWH"


class EnergyFlowDirection(StrEnum):
    NET = "NET"
    IMPORT = "IMPORT"
    EXPORT = "EXPORT"


class EnergyType(StrEnum):
    FLEXIBLE = "FLEXIBLE"
    NONFLEXIBLE = "NONFLEXIBLE"
    TOTAL = "TOTAL"


class VersionUrl(_Message):
    version: str = Field(min_length=1)
    base_url: str = Field(min_length=1)


class Register(_Message):
    """The token the receiver must use to call the sender, and where the sender listens."""

    token: str = Field(min_length=1)
    version_url: list[VersionUrl] = Field(min_length=1)


class RequiredBehaviour(_Message):
    heartbeat_interval: float | None = Field(None, gt=0, description="seconds")
    measurement_configuration: list[MeasurementConfiguration] | None = None


class Handshake(_Message):
    required_behaviour: RequiredBehaviour


class HandshakeAcknowledgement(_Message):
    required_behaviour: RequiredBehaviour | None = None


class Heartbeat(_Message):
    offline_mode_at: AwareDatetime


class ForecastedBlock(_Message):
    capacity: float = Field(ge=0, allow_inf_nan=False)
    phase: Phase
    unit: CapacityUnit
    start_time: AwareDatetime
    end_time: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> ForecastedBlock:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self


class _GroupForecast(_Message):
    group_id: str = Field(min_length=1)
    type: CapacityForecastType
    forecasted_blocks: list[ForecastedBlock] = Field(min_length=1)


class UpdateGroupCapacityForecast(_GroupForecast):
    """CP -> FP: the capacity the group may use, per time block."""


class AdjustGroupCapacityForecast(_GroupForecast):
    """FP -> CP: the capacity the group would need."""


class EnergyMeasurement(_Message):
    value: float = Field(ge=0, allow_inf_nan=False)
    phase: Phase
    unit: EnergyMeasurementUnit
    direction: EnergyFlowDirection
    energy_type: EnergyType | None = None
    initial_measure_time: datetime
    last_measured_time: datetime | None = None


class UpdateGroupMeasurements(_Message):
    group_id: str = Field(min_length=1)
    measurements: list[EnergyMeasurement] = Field(min_length=1)
