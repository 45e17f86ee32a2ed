"""Composition root: the one place that picks concrete adapters for the ports."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import uvicorn

from aggregator.api import ApiContext, create_app
from aggregator.api.auth import new_token, token_sha256
from aggregator.api.context import ReadyCheck
from aggregator.api.metrics import OcppCollector
from aggregator.domain import (
    Account,
    EventRecord,
    Fleet,
    FleetProblem,
    OptChoice,
    Plan,
    Prices,
    TimeGrid,
    ValidationError,
)
from aggregator.ports import Clock, EnvelopeCalculator, ForecastSource, Planner, Repository
from aggregator.runtime import AggregatorRuntime
from aggregator.scenario import load_scenario
from aggregator.scenario.errors import DataError
from aggregator.scenario.forecasts import ScenarioForecasts
from aggregator.scenario.prices import read_price_csv
from aggregator.services.control import ControlSettings, FleetController
from aggregator.services.departures import apply_recurring
from aggregator.services.events import EventLifecycle
from aggregator.services.planning import PlanningResult, plan_fleet
from aggregator.services.pricing import EventPriceOverlay
from aggregator.services.recording import TimeSeriesRecorder
from aggregator.services.reporting import TelemetryReports
from aggregator.services.routing import RoutingSink
from aggregator.services.settlement import EventSettlements, SettlementSettings
from aggregator.settings import (
    ApiConfig,
    ForecastConfig,
    MqttConfig,
    OcppConfig,
    OpenAdrConfig,
    OscpConfig,
    PlanningConfig,
    RuntimeSettings,
    SettlementConfig,
    TimeSeriesConfig,
)
from connectors.influxdb import BufferInUseError, InfluxTimeSeriesStore
from connectors.mqtt.broker import EmbeddedBroker
from connectors.mqtt.client import MqttConnector, MqttSettings
from connectors.ocpp import OcppCentralSystem, OcppChargerSettings, OcppSettings
from connectors.openadr.mapping import OpenAdrConfigError, OpenAdrMapping
from connectors.openadr.reports import telemetry_reports
from connectors.openadr.tls import check_security
from connectors.openadr.translate import OpenAdrTranslateError, event_from_oadr
from connectors.openadr.ven import Ven, VenSettings
from connectors.oscp.provider import OscpProvider, OscpSettings
from connectors.sql import SqlRepository, open_repository
from connectors.sql.accounts import SqlAccounts
from connectors.sql.dr_events import SqlDrEventStore
from connectors.sql.settlements import SqlSettlementStore
from connectors.sql.timeseries import SqlTimeSeriesStore
from models.decomposition import DecomposingPlanner, DecompositionSettings
from models.envelope import EnvelopeModel
from models.feasibility import EnvelopeFeasibility, plan_baseline
from models.forecast import PriceForecaster, QuantilePriceForecasts
from models.planner import PlannerSettings, PyomoPlanner
from models.planner.warm import WarmPlanner
from models.settlement import MeterBaselineConfig
from models.settlement.event import SettlerConfig, TelemetrySettler


@dataclass(frozen=True)
class PlanningSettings:
    """Edge-level knobs for a plan run (CLI flags map onto these)."""

    time_limit_s: float = 60.0
    with_envelope: bool = True


def build_planner(settings: PlanningSettings) -> Planner:
    return PyomoPlanner(PlannerSettings(time_limit_s=settings.time_limit_s))


def control_planner(config: PlanningConfig, settings: PlannerSettings) -> Planner:
    """The control loop's planner: warm re-plans, per site on Dask for fleets of many sites."""
    warm = WarmPlanner(settings)
    d = config.decomposition
    if d is None:
        return warm
    return DecomposingPlanner(
        warm,
        DecompositionSettings(
            max_iterations=d.max_iterations,
            gap_tol=d.gap_tol,
            workers=d.workers,
            planner=settings,
        ),
        min_sites=d.min_sites,
        scheduler=d.scheduler,
    )


def build_envelope_calculator(settings: PlanningSettings) -> EnvelopeCalculator:
    return EnvelopeModel(PlannerSettings(time_limit_s=settings.time_limit_s))


def run_plan(problem: FleetProblem, settings: PlanningSettings | None = None) -> PlanningResult:
    """Plan a problem with the production planner (Pyomo/HiGHS with heuristic fallback)."""
    settings = settings or PlanningSettings()
    calc = build_envelope_calculator(settings) if settings.with_envelope else None
    return plan_fleet(problem, build_planner(settings), calc)


# --------------------------------------------------------------------------- the service


log = logging.getLogger(__name__)


class StartupError(Exception):
    """The service cannot start with these settings; the message is one line naming the key."""


class FlatForecasts:
    """Constant price and no base load: what the service plans with when no fleet file says."""

    def __init__(self, price_per_mwh: float = 0.0) -> None:
        self.price_per_mwh = price_per_mwh

    def prices(self, grid: TimeGrid) -> Prices:
        return Prices.flat(self.price_per_mwh, grid.n_slots)

    def site_profiles(
        self, grid: TimeGrid, site_ids: Sequence[str]
    ) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
        return {}


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Service:
    """A started aggregator and everything it owns, in stop order."""

    runtime: AggregatorRuntime
    controller: FleetController
    repo: SqlRepository
    connector: MqttConnector
    broker: EmbeddedBroker | None
    mqtt_url: str
    ven: Ven | None = None
    events: EventLifecycle | None = None
    settlements: EventSettlements | None = None
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    api: ApiServer | None = None
    accounts: SqlAccounts | None = None
    recorder: TimeSeriesRecorder | None = None
    oscp: OscpProvider | None = None
    ocpp: OcppCentralSystem | None = None

    async def stop(self) -> None:
        if self.api is not None:
            await self.api.stop()
        if self.oscp is not None:
            await self.oscp.stop()
        if self.ocpp is not None:
            await self.ocpp.stop()
        if self.ven is not None:
            await self.ven.stop()
        await self.runtime.stop()
        close = getattr(self.runtime.planner, "close", None)
        if close is not None:  # a decomposing planner's Dask client and cluster
            await asyncio.to_thread(close)
        if self.recorder is not None:  # after the last telemetry flush: sends what it can
            await asyncio.to_thread(self.recorder.close)
        await asyncio.to_thread(self.connector.stop)
        if self.broker is not None:
            await self.broker.stop()
        self.repo.dispose()


def fleet_of(problem: FleetProblem) -> Fleet:
    """The static assets of a scenario (time series stay with the forecast source)."""
    sites = tuple(replace(s, base_load_kw=(), pv_kw=()) for s in problem.sites)
    return Fleet(sites, problem.chargers, problem.vehicles, problem.batteries)


def seed_from_scenario(repo: Repository, problem: FleetProblem, now: datetime) -> None:
    """Store the scenario's assets and events; an event already stored is left as it is."""
    repo.save_fleet(fleet_of(problem))
    known = {r.event.event_id for r in repo.events()}
    for event in problem.events:
        if event.event_id not in known:
            repo.save_event(EventRecord(event, 0, "active", now))


def control_settings(config: PlanningConfig) -> ControlSettings:
    lifetime = config.setpoint_lifetime_seconds
    return ControlSettings(
        step=timedelta(minutes=config.step_minutes),
        horizon=timedelta(hours=config.horizon_hours),
        dispatch_period=timedelta(seconds=config.dispatch_seconds),
        setpoint_lifetime=timedelta(seconds=lifetime) if lifetime else None,
        default_stay=timedelta(hours=config.default_stay_hours),
        default_target_soc=config.default_target_soc,
        default_arrival_soc=config.default_arrival_soc,
    )


def mqtt_settings(config: MqttConfig, url: str) -> MqttSettings:
    return MqttSettings(
        url=url,
        prefix=config.prefix,
        client_id=config.client_id,
        username=config.username,
        password=config.password,
        tls_ca=str(config.tls_ca) if config.tls_ca else None,
        tls_cert=str(config.tls_cert) if config.tls_cert else None,
        tls_key=str(config.tls_key) if config.tls_key else None,
        protocol=config.protocol,
    )


def ocpp_settings(config: OcppConfig) -> OcppSettings:
    return OcppSettings(
        host=config.host,
        port=config.port,
        chargers={
            cp_id: OcppChargerSettings(
                charger_id=c.charger_id or cp_id,
                unit=c.unit,
                voltage=c.voltage,
                phases=c.phases,
                safe_limit_kw=c.safe_limit_kw,
                bidirectional=c.bidirectional,
                password=c.password.get_secret_value() if c.password else None,
            )
            for cp_id, c in config.chargers.items()
        },
        security_profile=config.security_profile,
        ping_interval_s=config.ping_interval_s,
        response_timeout_s=config.response_timeout_s,
        tls_cert=str(config.cert) if config.cert else None,
        tls_key=str(config.key) if config.key else None,
        tls_ca=str(config.ca) if config.ca else None,
    )


async def start_service(
    settings: RuntimeSettings,
    *,
    clock: Clock | None = None,
    scenario: FleetProblem | None = None,
    speed: float = 1.0,
) -> Service:
    """Open the store, start the broker (if embedded), the MQTT client and the control loop."""
    clock = clock or SystemClock()
    # Settings that cannot work fail here, before a port is opened or a file written.
    vtn = checked_openadr(settings.openadr) if settings.openadr is not None else None
    if scenario is None and settings.fleet is not None:
        scenario = load_scenario(settings.fleet)
    forecast = price_forecast(settings.forecast, scenario) if settings.forecast else None
    repo = await asyncio.to_thread(open_repository, settings.database_url)
    try:
        recorder = open_recorder(settings.timeseries, repo)
    except StartupError:
        repo.dispose()
        raise
    if scenario is not None:
        await asyncio.to_thread(seed_from_scenario, repo, scenario, clock.now())
    base: ForecastSource = ScenarioForecasts(scenario) if scenario else FlatForecasts()
    if forecast is not None:
        base = forecast(base)
    dr_events = SqlDrEventStore(repo)
    forecasts = EventPriceOverlay(base, dr_events)
    broker = None
    url = settings.mqtt.url
    if url is None:
        broker = EmbeddedBroker(port=settings.mqtt.embedded_port)
        try:
            await broker.start()
        except OSError as exc:
            if recorder is not None:
                await asyncio.to_thread(recorder.close)
            repo.dispose()
            raise StartupError(
                f"mqtt.embedded_port: cannot listen on {broker.port}: {exc.strerror or exc} "
                "(set mqtt.url to use the broker already there, or pick another port)"
            ) from exc
        url = broker.url
    controller = FleetController(repo, forecasts, clock, control_settings(settings.planning))
    planner_settings = PlannerSettings(time_limit_s=settings.planning.time_limit_s)
    runtime = AggregatorRuntime(
        controller,
        # The control loop re-plans warm (docs/planner.md, Warm re-plans); event baselines
        # plan other problems and get their own cold planner, not to replace its kept model.
        control_planner(settings.planning, planner_settings),
        clock,
        baseline_planner=PyomoPlanner(planner_settings),
        replan_every=timedelta(minutes=settings.planning.replan_minutes),
        speed=speed,
    )
    runtime.recorder = recorder
    config = settings.mqtt
    if broker is not None:
        # amqtt speaks 3.1.1 only; asking for 5 first would cost a CONNACK timeout.
        config = config.model_copy(update={"protocol": "3.1.1"})
    connector = MqttConnector(mqtt_settings(config, url), runtime, clock=clock)
    runtime.sink = connector
    await asyncio.to_thread(connector.start)
    ocpp = None
    if settings.ocpp is not None:  # chargers that speak OCPP to us (docs/ocpp.md)
        sites = {c.charger_id: c.site_id for c in controller.fleet.chargers}
        ocpp = OcppCentralSystem(ocpp_settings(settings.ocpp), runtime, sites, clock=clock)
        runtime.sink = RoutingSink(ocpp, connector)
    await runtime.start()
    service = Service(runtime, controller, repo, connector, broker, url, recorder=recorder)
    if ocpp is not None:
        try:
            await ocpp.start()
        except OSError as exc:
            await service.stop()
            raise StartupError(
                f"ocpp.port: cannot listen on {ocpp.settings.host}:{ocpp.settings.port}: "
                f"{exc.strerror or exc}"
            ) from exc
        service.ocpp = ocpp
    if settings.openadr is not None and vtn is not None:
        service.events, service.ven = start_ven(settings.openadr, vtn, service, clock, dr_events)
        service.settlements = event_settlements(
            settings.settlement, settings.planning, service, clock, dr_events, base
        )
        runtime.settlements = service.settlements
        await service.ven.start()
    if settings.oscp is not None:  # grid capacity from the DSO (docs/oscp.md)
        try:
            service.oscp = await start_oscp(settings.oscp, service, clock)
        except StartupError:
            await service.stop()
            raise
    service.accounts = SqlAccounts(repo)
    runtime.recurring = recurring_departures(repo, service.accounts)
    if settings.api.enabled:
        try:
            service.api = await start_api(settings.api, service, clock, base, dr_events)
        except OSError as exc:
            await service.stop()
            raise StartupError(
                f"api.port: cannot listen on {settings.api.host}:{settings.api.port}: "
                f"{exc.strerror or exc}"
            ) from exc
    return service


def open_recorder(config: TimeSeriesConfig, repo: SqlRepository) -> TimeSeriesRecorder | None:
    """The time-series store the settings ask for (docs/timeseries.md), behind a recorder."""
    if not config.enabled:
        return None
    if config.backend == "sql":
        return TimeSeriesRecorder(
            SqlTimeSeriesStore(
                repo,
                batch_size=config.batch_size,
                flush_interval_s=config.flush_interval_s,
                max_pending=config.buffer_max_points,
            )
        )
    assert config.url is not None  # the settings check it
    try:
        influx = InfluxTimeSeriesStore(
            config.url,
            org=config.org,
            bucket=config.bucket,
            token=config.token.get_secret_value() if config.token else None,
            buffer_dir=config.buffer_dir,
            buffer_max_points=config.buffer_max_points,
            batch_size=config.batch_size,
            flush_interval_s=config.flush_interval_s,
        )
    except (BufferInUseError, OSError) as exc:
        raise StartupError(f"timeseries.buffer_dir: {exc}") from exc
    return TimeSeriesRecorder(influx)


def price_forecast(
    config: ForecastConfig, scenario: FleetProblem | None
) -> Callable[[ForecastSource], ForecastSource]:
    """Prices where published (the history file, and the fleet file's own where it has them),
    the price forecaster's ``price_quantile`` beyond, the given source further out or before
    (docs/forecasting.md). Fitted now: a bad file is a StartupError before anything opens."""
    try:
        published = read_price_csv(config.history_csv, str(config.history_csv), config.column)
    except DataError as exc:
        raise StartupError(f"forecast.history_csv: {exc}") from exc
    published_end = published.index[-1] + pd.Series(published.index).diff().median()
    if scenario is not None:
        starts = pd.DatetimeIndex(list(scenario.grid.slot_starts()))
        own = pd.Series(scenario.prices.import_per_mwh, index=starts)
        published = own.combine_first(published)
        published_end = max(published_end, pd.Timestamp(scenario.grid.end))
    forecaster = PriceForecaster(
        window_weeks=config.window_weeks,
        timezone=config.timezone,
        max_horizon_days=config.max_horizon_days,
    )
    try:
        forecaster.fit(published.resample("1h").mean().dropna())
    except ValidationError as exc:
        raise StartupError(f"forecast.history_csv: {config.history_csv}: {exc}") from exc

    def wrap(base: ForecastSource) -> ForecastSource:
        return QuantilePriceForecasts(
            published,
            forecaster,
            base,
            quantile=config.price_quantile,
            published_end=published_end,
        )

    return wrap


def recurring_departures(repo: SqlRepository, accounts: SqlAccounts) -> Callable[[datetime], int]:
    """Weekly departures due a new constraint, applied (run in a worker thread)."""

    def apply(now: datetime) -> int:
        return len(apply_recurring(repo, accounts.recurring(), now))

    return apply


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """uvicorn serving the API on the service's event loop."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
        self.server = server
        self.task = task

    @property
    def url(self) -> str:
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def start_api(
    config: ApiConfig,
    service: Service,
    clock: Clock,
    forecasts: ForecastSource,
    events: SqlDrEventStore,
) -> ApiServer:
    repo, runtime = service.repo, service.runtime
    assert service.accounts is not None

    async def store_ready() -> str | None:
        await asyncio.to_thread(repo.ping)
        return None

    async def broker_ready() -> str | None:
        return None if service.connector.connected else "not connected to the MQTT broker"

    checks: dict[str, ReadyCheck] = {"store": store_ready, "broker": broker_ready}
    if service.ven is not None:
        ven = service.ven

        async def ven_ready() -> str | None:
            return None if ven.registered else "not registered with the VTN"

        checks["ven"] = ven_ready
    if service.ocpp is not None:
        ocpp = service.ocpp

        async def ocpp_ready() -> str | None:
            # Chargers being offline is not the service being unready; a closed server is.
            return None if ocpp.listening else "the OCPP server is not listening"

        checks["ocpp"] = ocpp_ready
    ctx = ApiContext(
        repo=repo,
        accounts=service.accounts,
        clock=clock,
        runtime=runtime,
        forecasts=forecasts,
        envelope=EnvelopeModel(PlannerSettings(time_limit_s=30.0)),
        events=events if service.ven is not None else None,
        settlements=SqlSettlementStore(repo) if service.ven is not None else None,
        ready_checks=checks,
        max_body_bytes=config.max_body_bytes,
    )
    app = create_app(ctx)
    if service.ocpp is not None:  # OCPP counters and connected charge points
        app.state.registry.register(OcppCollector(service.ocpp))
    server = _QuietServer(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
    )
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it (e.g. the port is taken)
            raise OSError("the API server stopped at start-up")
        await asyncio.sleep(0.02)
    return ApiServer(server, task)


def event_settlements(
    config: SettlementConfig,
    planning: PlanningConfig,
    service: Service,
    clock: Clock,
    events: SqlDrEventStore,
    forecasts: ForecastSource,
) -> EventSettlements:
    """Baselines and settlements of the events we opt in to (docs/settlement.md)."""
    m = config.meter
    settler = TelemetrySettler(
        forecasts,
        SettlerConfig(
            baseline=config.baseline,
            meter=MeterBaselineConfig(
                x_days=m.x_days,
                y_days=m.y_days,
                skip_weekends=m.skip_weekends,
                lookback_days=m.lookback_days,
                min_days=m.min_days,
                tz=ZoneInfo(m.timezone),
            ),
            step=timedelta(minutes=planning.step_minutes),
        ),
    )
    return EventSettlements(
        service.repo,
        events,
        SqlSettlementStore(service.repo),
        settler,
        clock,
        SettlementSettings(
            grace=timedelta(minutes=config.grace_minutes),
            give_up_after=timedelta(hours=config.give_up_hours),
            history=timedelta(days=m.lookback_days + 1) if m.enabled else None,
        ),
    )


def checked_openadr(config: OpenAdrConfig) -> tuple[OpenAdrMapping, VenSettings]:
    """The VEN's mapping and settings, or a StartupError naming the key that is wrong."""
    try:
        mapping = OpenAdrMapping.from_config(config.mapping)
    except OpenAdrConfigError as exc:
        raise StartupError(f"openadr.mapping: {exc}") from exc
    try:
        ven_settings = VenSettings(
            vtn_url=config.vtn_url,
            ven_name=config.ven_name,
            vtn_fingerprint=config.vtn_fingerprint,
            cert=str(config.cert) if config.cert else None,
            key=str(config.key) if config.key else None,
            ca_file=str(config.ca_file) if config.ca_file else None,
            passphrase=config.passphrase,
            poll_interval_s=config.poll_interval_s,
            disable_signature=config.disable_signature,
        )
        check_security(ven_settings, warn=False)  # the VEN warns about plain HTTP itself
    except ValueError as exc:
        raise StartupError(f"openadr: {exc}") from exc
    return mapping, ven_settings


def start_ven(
    config: OpenAdrConfig,
    vtn: tuple[OpenAdrMapping, VenSettings],
    service: Service,
    clock: Clock,
    store: SqlDrEventStore,
) -> tuple[EventLifecycle, Ven]:
    """The VEN, wired to the event lifecycle: translate, decide, store, re-plan."""
    mapping, ven_settings = vtn
    controller, runtime = service.controller, service.runtime

    def baseline(site: str, when: datetime) -> float | None:
        current = controller.current
        if current is None:
            return None
        grid = current.plan.grid
        lookup = plan_baseline(current.plan.site_power_kw, grid.start, grid.step.total_seconds())
        return lookup(site, when)

    feasibility = EnvelopeFeasibility(
        controller.build_problem, baseline, tolerance_kwh=config.shortfall_tolerance_kwh
    )
    lifecycle = EventLifecycle(service.repo, store, clock, feasibility, config.policy)
    ven: Ven

    async def on_event(raw: dict[str, Any]) -> OptChoice:
        try:
            event = event_from_oadr(raw, mapping)
        except OpenAdrTranslateError as exc:
            controller.counters["events_rejected"] += 1
            log.warning("OpenADR event rejected (optOut): %s", exc)
            return "optOut"
        decision = lifecycle.receive(event)
        controller.counters[f"events_{decision.action}"] += 1
        if decision.replan:
            runtime.request_replan(f"grid event {event.event_id} ({decision.action})")
        if decision.withdraw:
            task = asyncio.get_running_loop().create_task(
                ven.opt_out(event.event_id, event.modification_number)
            )
            service.background.add(task)
            task.add_done_callback(service.background.discard)
        return decision.opt

    ven = Ven(
        ven_settings,
        on_event,
        # TELEMETRY_USAGE / TELEMETRY_STATUS per site, from stored telemetry (docs/openadr.md)
        reports=telemetry_reports(
            [s.site_id for s in controller.fleet.sites], TelemetryReports(service.repo, clock)
        ),
    )

    def on_event_list(listed: set[str]) -> None:
        for decision in lifecycle.reconcile(listed):
            controller.counters["events_cancelled"] += 1
            if decision.replan:
                runtime.request_replan(f"grid event {decision.event_id} (no longer listed)")

    ven.on_event_list = on_event_list
    return lifecycle, ven


def oscp_settings(config: OscpConfig) -> OscpSettings:
    return OscpSettings(
        our_token=config.token.get_secret_value(),
        cp_token=config.cp_token.get_secret_value(),
        groups={group: tuple(sites) for group, sites in config.groups.items()},
        host=config.host,
        port=config.port,
        public_url=config.public_url,
        cp_url=config.cp_url.rstrip("/") if config.cp_url else None,
        heartbeat_interval_s=config.heartbeat_interval_s,
        measurement_interval_s=config.measurement_interval_s,
        adjust_check_s=config.adjust_check_s,
        voltage_v=config.voltage_v,
        phases=config.phases,
    )


async def start_oscp(config: OscpConfig, service: Service, clock: Clock) -> OscpProvider:
    """The OSCP flexibility provider: forecasts become per-slot site limits (docs/oscp.md)."""
    known = {s.site_id for s in service.controller.fleet.sites}
    for group, sites in config.groups.items():
        unknown = sorted(set(sites) - known)
        if unknown:
            raise StartupError(f"oscp.groups.{group}: unknown site(s) {', '.join(unknown)}")
    controller = service.controller

    def latest_plan() -> Plan | None:
        return controller.current.plan if controller.current is not None else None

    provider = OscpProvider(
        oscp_settings(config), service.repo, clock, service.runtime.request_replan, latest_plan
    )
    try:
        await provider.start()
    except OSError as exc:
        raise StartupError(
            f"oscp.port: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
        ) from exc
    return provider


def create_operator(database_url: str, account_id: str, name: str = "") -> str:
    """Store a new operator account and return its API key (shown once, only hashed kept)."""
    repo = open_repository(database_url)
    try:
        token = new_token()
        account = Account(account_id, name or account_id, "operator", datetime.now(UTC))
        SqlAccounts(repo).create_account(account, token_sha256(token))
        return token
    finally:
        repo.dispose()
