"""Runtime settings: a YAML file, overridden by ``AGGREGATOR_*`` environment variables.

``AGGREGATOR_DATABASE_URL`` overrides ``database_url``; nested keys use a double underscore
(``AGGREGATOR_MQTT__URL``). The reference of every key is generated from this model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class SettingsError(Exception):
    """A configuration that cannot be used; the message is one line naming the key."""


class MqttConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        None, description="mqtt://host:port or mqtts://host:port; unset = embedded broker"
    )
    prefix: str = Field("aggregator", description="topic prefix of the MQTT contract")
    client_id: str = "aggregator"
    username: str | None = None
    password: str | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    embedded_port: int = Field(1883, ge=0, le=65535, description="port of the embedded broker")


class OcppChargerConfig(BaseModel):
    """One OCPP charge point (docs/ocpp.md)."""

    model_config = ConfigDict(extra="forbid")

    charger_id: str | None = Field(None, description="our charger id; default: the key")
    unit: Literal["W", "A"] = Field("W", description="charging profile unit the charger takes")
    voltage: float = Field(230.0, gt=0, description="for unit A: phase voltage")
    phases: int = Field(3, ge=1, le=3, description="for unit A: phases used")
    safe_limit_kw: float = Field(0.0, ge=0, description="default profile sent at boot")
    bidirectional: bool = Field(False, description="OCPP 2.1 V2X: takes discharge setpoints")
    password: SecretStr | None = Field(None, description="security profiles 1, 2: basic auth")


class OcppConfig(BaseModel):
    """The OCPP central system for chargers that talk to us directly (docs/ocpp.md)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="listen address")
    port: int = Field(9000, ge=0, le=65535, description="0 = any free port")
    chargers: dict[str, OcppChargerConfig] = Field(
        default_factory=dict,
        description="by charge point id; a fleet charger not listed connects under its own id",
    )
    security_profile: Literal[0, 1, 2, 3] = Field(
        0, description="0: none; 1: basic auth; 2: TLS + basic auth; 3: mutual TLS"
    )
    ping_interval_s: float = Field(60.0, gt=0, lt=90, description="websocket ping period")
    response_timeout_s: float = Field(10.0, gt=0, description="CALL answer timeout")
    cert: Path | None = Field(None, description="profiles 2, 3: server certificate chain (PEM)")
    key: Path | None = Field(None, description="profiles 2, 3: its private key (PEM)")
    ca: Path | None = Field(None, description="profile 3: CA of the charge point certificates")

    @model_validator(mode="after")
    def _tls_files(self) -> OcppConfig:
        if self.security_profile >= 2 and (self.cert is None or self.key is None):
            raise ValueError("ocpp.cert and ocpp.key are required for security profiles 2 and 3")
        if self.security_profile == 3 and self.ca is None:
            raise ValueError("ocpp.ca is required for security profile 3")
        return self


class DecompositionConfig(BaseModel):
    """Plan large fleets site by site on Dask (``models/decomposition``)."""

    model_config = ConfigDict(extra="forbid")

    min_sites: int = Field(
        20, ge=2, description="fleets with at least this many sites are planned per site"
    )
    scheduler: str | None = Field(
        None, description="Dask scheduler address; none: a LocalCluster started on first use"
    )
    workers: int | None = Field(
        None, ge=1, description="LocalCluster worker processes; default one per CPU, at most 4"
    )
    max_iterations: int = Field(30, ge=1, description="price rounds before stopping")
    gap_tol: float = Field(
        1e-3, gt=0, lt=1, description="stop when the certified relative gap is below this"
    )


class PlanningConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step_minutes: int = Field(15, gt=0)
    horizon_hours: float = Field(24.0, gt=0)
    replan_minutes: float = Field(5.0, gt=0, description="periodic re-plan interval")
    dispatch_seconds: float = Field(60.0, gt=0, description="setpoint refresh period")
    setpoint_lifetime_seconds: float | None = Field(
        None, gt=0, description="valid_until - issued_at; default 3 x dispatch_seconds"
    )
    time_limit_s: float = Field(30.0, gt=0, description="solver time limit per plan")
    default_stay_hours: float = Field(
        8.0, gt=0, description="departure assumed for a vehicle without a constraint"
    )
    default_target_soc: float = Field(0.8, ge=0, le=1)
    default_arrival_soc: float = Field(0.5, ge=0, le=1)
    decomposition: DecompositionConfig | None = Field(
        None, description="set to plan fleets of many sites per site on Dask"
    )

    @model_validator(mode="after")
    def _lifetime_covers_dispatch(self) -> PlanningConfig:
        life = self.setpoint_lifetime_seconds
        if life is not None and life <= self.dispatch_seconds:
            raise ValueError("setpoint_lifetime_seconds must exceed dispatch_seconds")
        return self


class OpenAdrConfig(BaseModel):
    """The VEN: which VTN, how to decide, how its programs map onto our sites."""

    model_config = ConfigDict(extra="forbid")

    vtn_url: str = Field(description="e.g. https://vtn.example.net/OpenADR2/Simple/2.0b")
    ven_name: str
    policy: Literal["always", "feasible", "never"] = Field(
        "feasible", description="opt in to every event, to feasible ones, or to none"
    )
    vtn_fingerprint: str | None = Field(None, description="pinned VTN certificate fingerprint")
    cert: Path | None = None
    key: Path | None = None
    ca_file: Path | None = None
    passphrase: str | None = Field(
        None, description="of the key; set it as AGGREGATOR_OPENADR__PASSPHRASE, not in a file"
    )
    shortfall_tolerance_kwh: float = Field(
        0.0,
        ge=0,
        description="policy 'feasible': opt in while the estimated departure shortfall the "
        "event causes stays within this",
    )
    poll_interval_s: float = Field(10.0, gt=0, description="used if the VTN requests none")
    disable_signature: bool = Field(False, description="only for a demo VTN without TLS")
    mapping: dict[str, Any] = Field(
        default_factory=dict, description="programs, resources, groups (docs/openadr.md)"
    )


class ApiConfig(BaseModel):
    """The HTTP API and dashboard (docs/api.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    host: str = Field("127.0.0.1", description="listen address; 0.0.0.0 for every interface")
    port: int = Field(8080, ge=0, le=65535, description="0 = any free port")
    max_body_bytes: int = Field(1 << 20, gt=0, description="larger request bodies get 413")


class MeterBaselineSettings(BaseModel):
    """The X-of-Y days meter baseline (docs/settlement.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="compute it (reads the event sites' history)")
    x_days: int = Field(10, ge=1, description="highest-load days kept")
    y_days: int = Field(10, ge=1, description="eligible days looked at")
    lookback_days: int = Field(45, ge=1, description="how far back to look for them")
    min_days: int | None = Field(
        None, ge=1, description="settle with fewer eligible days, down to this many"
    )
    skip_weekends: bool = True
    timezone: str = Field("UTC", description="IANA zone whose local days the baseline uses")

    @model_validator(mode="after")
    def _consistent(self) -> MeterBaselineSettings:
        if self.x_days > self.y_days:
            raise ValueError("x_days must not exceed y_days")
        if self.lookback_days < self.y_days:
            raise ValueError("lookback_days must be at least y_days")
        if self.min_days is not None and self.min_days > self.y_days:
            raise ValueError("min_days must not exceed y_days")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone: unknown zone {self.timezone!r}") from exc
        return self


class SettlementConfig(BaseModel):
    """Settling the events we opted in to (docs/settlement.md)."""

    model_config = ConfigDict(extra="forbid")

    baseline: Literal["plan", "meter"] = Field(
        "plan", description="settled against; the other is reported beside it"
    )
    grace_minutes: float = Field(
        5.0, ge=0, description="wait this long after the end for the last telemetry"
    )
    give_up_hours: float = Field(24.0, gt=0, description="stop retrying a failed settlement")
    meter: MeterBaselineSettings = MeterBaselineSettings()


class ForecastConfig(BaseModel):
    """Prices beyond the published horizon from the price forecaster (docs/forecasting.md)."""

    model_config = ConfigDict(extra="forbid")

    history_csv: Path = Field(
        description="hourly price history (start,price_eur_per_mwh; relative to this file)"
    )
    column: str = Field("price_eur_per_mwh", description="price column of history_csv")
    price_quantile: float = Field(
        0.5, gt=0, lt=1, description="quantile the planner uses beyond the published prices"
    )
    timezone: str = Field("Europe/Amsterdam", description="the market's zone (hour-of-day terms)")
    window_weeks: int = Field(8, ge=1, description="weeks of history each regression is fitted on")
    max_horizon_days: int = Field(
        7, ge=1, le=14, description="farther ahead, the fleet file's (or flat) prices are used"
    )

    @model_validator(mode="after")
    def _known_zone(self) -> ForecastConfig:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone: unknown zone {self.timezone!r}") from exc
        return self


class TimeSeriesConfig(BaseModel):
    """Where telemetry, setpoints, plans, prices and baselines go as time series
    (docs/timeseries.md): the SQL store (default) or InfluxDB 2.x."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="record time series at all")
    backend: Literal["sql", "influxdb"] = Field(
        "sql", description="sql: the database_url store; influxdb: the server at url"
    )
    url: str | None = Field(None, description="influxdb: e.g. http://influxdb:8086")
    org: str = Field("aggregator", description="influxdb: organization")
    bucket: str = Field("aggregator", description="influxdb: bucket")
    token: SecretStr | None = Field(
        None, description="influxdb: API token; set it as AGGREGATOR_TIMESERIES__TOKEN"
    )
    buffer_dir: Path = Field(
        Path("var/timeseries-buffer"),
        description="influxdb: on-disk buffer while the server is away (one per process)",
    )
    buffer_max_points: int = Field(
        1_000_000, gt=0, description="points held while the backend is away; then oldest dropped"
    )
    batch_size: int = Field(2000, gt=0, description="points per write request or transaction")
    flush_interval_s: float = Field(1.0, gt=0, description="queued points are written this often")

    @model_validator(mode="after")
    def _influx_needs_a_url(self) -> TimeSeriesConfig:
        if self.enabled and self.backend == "influxdb" and not self.url:
            raise ValueError("url: backend influxdb needs the server's url")
        return self


class OscpConfig(BaseModel):
    """The OSCP 2.0 flexibility provider (docs/oscp.md)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="our OSCP listen address")
    port: int = Field(9300, ge=0, le=65535, description="our OSCP port; 0 = any free port")
    public_url: str | None = Field(
        None, description="our base URL as the capacity provider reaches it (default: bound)"
    )
    cp_url: str | None = Field(
        None, description="the capacity provider's base URL, e.g. https://dso/oscp/cp/2.0"
    )
    token: SecretStr = Field(
        description="the capacity provider calls us with it; AGGREGATOR_OSCP__TOKEN"
    )
    cp_token: SecretStr = Field(
        description="we call the capacity provider with it; AGGREGATOR_OSCP__CP_TOKEN"
    )
    groups: dict[str, list[str]] = Field(
        default_factory=dict, description="OSCP group id -> our site ids"
    )
    heartbeat_interval_s: float = Field(60.0, gt=0, description="unless the provider asks")
    measurement_interval_s: float = Field(300.0, gt=0, description="UpdateGroupMeasurements")
    adjust_check_s: float = Field(60.0, gt=0, description="how often the plan is checked")
    voltage_v: float = Field(230.0, gt=0, description="phase voltage for capacities in A")
    phases: int = Field(3, ge=1, le=3, description="phases of the group's connection")


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGGREGATOR_", env_nested_delimiter="__", extra="forbid", env_ignore_empty=True
    )

    database_url: str = Field(
        "sqlite:///var/aggregator.db", description="SQLAlchemy URL (SQLite file or PostgreSQL)"
    )
    fleet: Path | None = Field(
        None,
        description="scenario YAML describing sites, chargers, vehicles, prices and events",
    )
    mqtt: MqttConfig = MqttConfig()
    planning: PlanningConfig = PlanningConfig()
    openadr: OpenAdrConfig | None = None
    settlement: SettlementConfig = SettlementConfig()
    api: ApiConfig = ApiConfig()
    timeseries: TimeSeriesConfig = TimeSeriesConfig()
    forecast: ForecastConfig | None = None
    ocpp: OcppConfig | None = None
    log_level: str = "INFO"
    oscp: OscpConfig | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment beats the file (passed in as init values): operators override there.
        return env_settings, init_settings


def load_settings(path: Path | None) -> RuntimeSettings:
    """Settings from ``path`` (YAML) and the environment; relative paths are file-relative."""
    data: dict[str, Any] = {}
    shown = str(path) if path else "environment"
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise SettingsError(f"{shown}: cannot read: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise SettingsError(f"{shown}: not valid YAML: {str(exc).splitlines()[0]}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise SettingsError(f"{shown}: the top level must be a mapping")
        data = loaded or {}
    try:
        settings = RuntimeSettings(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise SettingsError(f"{shown}: {where}: {err['msg']}") from exc
    if path is not None and settings.fleet is not None and not settings.fleet.is_absolute():
        settings = settings.model_copy(update={"fleet": path.parent / settings.fleet})
    forecast = settings.forecast
    if path is not None and forecast is not None and not forecast.history_csv.is_absolute():
        forecast = forecast.model_copy(update={"history_csv": path.parent / forecast.history_csv})
        settings = settings.model_copy(update={"forecast": forecast})
    return settings
