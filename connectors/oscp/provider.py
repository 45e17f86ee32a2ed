"""Our OSCP 2.0 flexibility provider: a small FastAPI app on its own port (the capacity
provider calls it) and a client that calls the capacity provider (docs/oscp.md).

Received: Register, Handshake, HandshakeAcknowledgement, Heartbeat,
UpdateGroupCapacityForecast. Sent: Register, Handshake, HandshakeAcknowledgement, Heartbeat
(on the agreed interval), UpdateGroupMeasurements (from stored telemetry) and
AdjustGroupCapacityForecast (when the latest plan needs more than the forecast).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from aggregator.domain import EventRecord, GridEvent, Plan
from aggregator.ports import Clock, Repository

from .messages import (
    AdjustGroupCapacityForecast,
    CapacityForecastType,
    Handshake,
    HandshakeAcknowledgement,
    Heartbeat,
    MeasurementConfiguration,
    Register,
    RequiredBehaviour,
    UpdateGroupCapacityForecast,
    UpdateGroupMeasurements,
    VersionUrl,
)
from .translate import (
    APPLIED_TYPES,
    MAX_HOLD,
    energy_measurements,
    event_prefix,
    forecast_events,
    legacy_prefix,
    needed_capacity,
)

log = logging.getLogger(__name__)

FP_PATH = "/oscp/fp/2.0"
VERSION = "2.0"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class OscpSettings:
    our_token: str  # the capacity provider presents it to call us
    cp_token: str  # we present it to call the capacity provider (until it registers anew)
    groups: Mapping[str, Sequence[str]]  # OSCP group id -> our site ids
    host: str = "127.0.0.1"
    port: int = 9300
    public_url: str | None = None  # our base URL as announced; default http://host:port/...
    cp_url: str | None = None  # e.g. https://dso.example/oscp/cp/2.0; None = wait for it
    heartbeat_interval_s: float = 60.0
    measurement_interval_s: float = 300.0
    adjust_check_s: float = 60.0
    voltage_v: float = 230.0
    phases: int = 3
    request_timeout_s: float = 10.0
    measurement_lag_s: float = 2.0  # telemetry is stored in batches: leave it time to land


class OscpPeerError(Exception):
    """The capacity provider answered a message with an error status."""


@dataclass
class PeerState:
    cp_url: str | None
    cp_token: str
    registered: bool = False  # our Register was accepted
    handshake_sent: bool = False
    handshake_acknowledged: bool = False  # the CP acknowledged our Handshake
    heartbeat_interval_s: float | None = None  # what the CP asked of us
    last_cp_heartbeat: datetime | None = None
    cp_offline_at: datetime | None = None
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # last 100, tests


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "reason": e["msg"]}
        for e in exc.errors()
    ]


class BadMessageError(Exception):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))
        self.errors = errors


class OscpProvider:
    def __init__(
        self,
        settings: OscpSettings,
        repo: Repository,
        clock: Clock,
        replan: Callable[[str], None],
        latest_plan: Callable[[], Plan | None],
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.clock = clock
        self.replan = replan
        self.latest_plan = latest_plan
        self.peer = PeerState(settings.cp_url, settings.cp_token)
        self.counters: Counter[str] = Counter()
        self.app = self._build_app()
        self._server: uvicorn.Server | None = None
        self._serve: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._forecast_lock = asyncio.Lock()
        self._measured_until: dict[str, datetime] = {}
        self._last_adjust: dict[str, tuple[tuple[datetime, float], ...]] = {}
        self._checked_plan: Plan | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """Our base URL as bound (the port is known once started)."""
        assert self._server is not None
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}{FP_PATH}"

    @property
    def public_url(self) -> str:
        return self.settings.public_url or self.url

    async def start(self) -> None:
        s = self.settings
        config = uvicorn.Config(self.app, host=s.host, port=s.port, log_level="warning")
        server = _QuietServer(config)
        self._server = server
        self._serve = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:
            if self._serve.done():
                self._serve.result()  # raises the bind error
                raise OSError(f"cannot listen on {s.host}:{s.port}")
            await asyncio.sleep(0.01)
        for job in (self._connect, self._heartbeats, self._measurements, self._adjustments):
            self._spawn(job())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None and self._serve is not None:
            self._server.should_exit = True
            await self._serve

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ server side
    def _build_app(self) -> FastAPI:
        app = FastAPI(title="OSCP 2.0 flexibility provider", docs_url=None, redoc_url=None)

        async def parse(request: Request, model: type[M]) -> M:
            body = await request.body()
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise BadMessageError([{"field": "(body)", "reason": f"not JSON: {exc}"}]) from exc
            try:
                return model.model_validate(data)
            except ValidationError as exc:
                raise BadMessageError(_errors(exc)) from exc

        @app.middleware("http")
        async def guard(request: Request, call_next: Any) -> Response:
            if not self._authorized(request.headers.get("authorization", "")):
                self.counters["unauthorized"] += 1
                return JSONResponse({"detail": "Authorization: Token <token> required"}, 401)
            response: Response = await call_next(request)
            return response

        @app.exception_handler(BadMessageError)
        async def bad(request: Request, exc: BadMessageError) -> Response:
            self.counters["rejected"] += 1
            log.warning("OSCP %s rejected: %s", request.url.path, exc)
            return JSONResponse({"detail": exc.errors}, 400)

        @app.post(f"{FP_PATH}/register", status_code=204)
        async def register(request: Request) -> Response:
            msg = await parse(request, Register)
            urls = [v.base_url for v in msg.version_url if v.version == VERSION]
            if not urls:
                raise BadMessageError(
                    [{"field": "version_url", "reason": "no version 2.0 offered"}]
                )
            self.peer.cp_token, self.peer.cp_url = msg.token, urls[0].rstrip("/")
            # The CP registered with us: it now expects our Register and Handshake back.
            self.peer.registered = self.peer.handshake_sent = False
            self._wake.set()
            self._spawn(self._connect())
            log.info("OSCP capacity provider registered at %s", self.peer.cp_url)
            return Response(status_code=204)

        @app.post(f"{FP_PATH}/handshake", status_code=204)
        async def handshake(request: Request) -> Response:
            msg = await parse(request, Handshake)
            self._adopt(msg.required_behaviour)
            self._spawn(self._acknowledge())
            return Response(status_code=204)

        async def acknowledgement(request: Request) -> Response:
            msg = await parse(request, HandshakeAcknowledgement)
            if msg.required_behaviour is not None:
                self._adopt(msg.required_behaviour)
            self.peer.handshake_acknowledged = True
            return Response(status_code=204)

        for name in ("handshake_acknowledgement", "handshake_acknowledgment"):
            app.post(f"{FP_PATH}/{name}", status_code=204)(acknowledgement)

        @app.post(f"{FP_PATH}/heartbeat", status_code=204)
        async def heartbeat(request: Request) -> Response:
            msg = await parse(request, Heartbeat)
            self.peer.last_cp_heartbeat = self.clock.now()
            self.peer.cp_offline_at = msg.offline_mode_at
            self.counters["heartbeats_received"] += 1
            return Response(status_code=204)

        @app.post(f"{FP_PATH}/update_group_capacity_forecast", status_code=204)
        async def capacity(request: Request) -> Response:
            msg = await parse(request, UpdateGroupCapacityForecast)
            await self.apply_forecast(msg)
            return Response(status_code=204)

        return app

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        expected = self.settings.our_token
        return scheme.lower() == "token" and hmac.compare_digest(token.strip(), expected)

    def _adopt(self, behaviour: RequiredBehaviour) -> None:
        if behaviour.heartbeat_interval is not None:
            self.peer.heartbeat_interval_s = behaviour.heartbeat_interval
            self._wake.set()

    async def apply_forecast(self, msg: UpdateGroupCapacityForecast) -> list[GridEvent]:
        """Replace the group's previous forecast of this type by this one's limits; re-plan."""
        sites = self.settings.groups.get(msg.group_id)
        if sites is None:
            raise BadMessageError(
                [{"field": "group_id", "reason": f"unknown group {msg.group_id!r}"}]
            )
        kind = APPLIED_TYPES.get(msg.type)
        if kind is None:
            # FALLBACK_* apply offline only; OPTIMUM is advice. Accepted, logged, not applied.
            self.counters["forecasts_not_applied"] += 1
            log.info("OSCP %s forecast for %s accepted, not applied", msg.type, msg.group_id)
            return []
        s = self.settings
        try:
            events = forecast_events(
                msg.group_id,
                msg.forecasted_blocks,
                sites,
                kind=kind,
                voltage_v=s.voltage_v,
                phases=s.phases,
            )
        except ValueError as exc:  # the domain's own checks
            raise BadMessageError([{"field": "forecasted_blocks", "reason": str(exc)}]) from exc
        async with self._forecast_lock:
            await asyncio.to_thread(self._store, event_prefix(msg.group_id, kind), events)
        self.counters["forecasts_applied"] += 1
        log.info("OSCP %s capacity forecast for %s: %d block(s)", kind, msg.group_id, len(events))
        self.replan(f"OSCP capacity forecast {msg.group_id}")
        return events

    def _store(self, prefix: str, events: list[GridEvent]) -> None:
        """Store ``events`` active; earlier ones under ``prefix`` they do not reuse cancelled
        (and any soft cap events of the group that earlier versions stored)."""
        now = self.clock.now()
        groups = {
            legacy_prefix(group) for group in self.settings.groups if prefix == event_prefix(group)
        }
        previous = [r for r in self.repo.events() if r.event.event_id.startswith((prefix, *groups))]
        number = max((r.modification_number for r in previous), default=-1) + 1
        keep = {e.event_id for e in events}
        for old in previous:
            if old.status == "active" and old.event.event_id not in keep:
                self.repo.save_event(EventRecord(old.event, number, "cancelled", now))
        for event in events:
            self.repo.save_event(EventRecord(event, number, "active", now))

    # ------------------------------------------------------------------ client side
    def _post(self, name: str, message: BaseModel) -> None:
        """POST one message to the capacity provider (blocking: run it in a thread)."""
        if self.peer.cp_url is None:
            raise OscpPeerError("no capacity provider URL yet")
        body = message.model_dump_json(exclude_none=True).encode()
        request = urllib.request.Request(
            f"{self.peer.cp_url}/{name}",
            data=body,
            method="POST",
            headers={
                "Authorization": f"Token {self.peer.cp_token}",
                "Content-Type": "application/json",
                "X-Request-ID": str(uuid.uuid4()),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.settings.request_timeout_s) as r:
                status = r.status
        except urllib.error.HTTPError as exc:
            raise OscpPeerError(f"{name}: HTTP {exc.code}") from exc
        if status >= 300:
            raise OscpPeerError(f"{name}: HTTP {status}")
        self.peer.sent = [*self.peer.sent[-99:], (name, json.loads(body))]
        self.counters[f"sent_{name}"] += 1

    async def send(self, name: str, message: BaseModel) -> None:
        await asyncio.to_thread(self._post, name, message)

    def _behaviour(self) -> RequiredBehaviour:
        return RequiredBehaviour(
            heartbeat_interval=self.settings.heartbeat_interval_s,
            measurement_configuration=[MeasurementConfiguration.CONTINUOUS],
        )

    async def _connect(self) -> None:
        """Register (our token, our URL) and send our Handshake; retried with capped backoff."""
        delay = 0.5
        while not (self.peer.registered and self.peer.handshake_sent):
            try:
                if not self.peer.registered:
                    await self.send(
                        "register",
                        Register(
                            token=self.settings.our_token,
                            version_url=[VersionUrl(version=VERSION, base_url=self.public_url)],
                        ),
                    )
                    self.peer.registered = True
                if not self.peer.handshake_sent:
                    await self.send("handshake", Handshake(required_behaviour=self._behaviour()))
                    self.peer.handshake_sent = True
            except (OSError, OscpPeerError) as exc:
                log.warning("OSCP registration with the capacity provider: %s", exc)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                delay = min(delay * 2, 60.0)

    async def _acknowledge(self) -> None:
        try:
            await self.send(
                "handshake_acknowledgment",
                HandshakeAcknowledgement(required_behaviour=self._behaviour()),
            )
        except (OSError, OscpPeerError) as exc:
            log.warning("OSCP handshake acknowledgement not delivered: %s", exc)

    def heartbeat_interval(self) -> float:
        """The agreed interval: what the CP asked for, else ours."""
        return self.peer.heartbeat_interval_s or self.settings.heartbeat_interval_s

    async def _heartbeats(self) -> None:
        while True:
            interval = self.heartbeat_interval()
            if self.peer.registered:
                offline = self.clock.now() + timedelta(seconds=2 * interval)
                try:
                    await self.send("heartbeat", Heartbeat(offline_mode_at=offline))
                except (OSError, OscpPeerError) as exc:
                    log.warning("OSCP heartbeat not delivered: %s", exc)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    async def _measurements(self) -> None:
        start = self.clock.now()
        for group in self.settings.groups:
            self._measured_until.setdefault(group, start)
        while True:
            await asyncio.sleep(self.settings.measurement_interval_s)
            if self.peer.registered:
                await self.send_measurements()

    async def send_measurements(self) -> None:
        until = self.clock.now() - timedelta(seconds=self.settings.measurement_lag_s)
        for group, sites in self.settings.groups.items():
            since = self._measured_until.get(group, until)
            if until <= since:
                continue
            try:
                readings = await asyncio.to_thread(self._readings, sites, since, until)
                message = UpdateGroupMeasurements(
                    group_id=group, measurements=energy_measurements(readings, since, until)
                )
                await self.send("update_group_measurements", message)
            except (OSError, OscpPeerError) as exc:
                log.warning("OSCP measurements of %s not delivered: %s", group, exc)
                continue  # the same window, longer, next time
            self._measured_until[group] = until

    def _readings(self, sites: Sequence[str], since: datetime, until: datetime) -> list[Any]:
        return [t for s in sites for t in self.repo.telemetry(since - MAX_HOLD, until, s)]

    async def _adjustments(self) -> None:
        while True:
            await asyncio.sleep(self.settings.adjust_check_s)
            if self.peer.registered:
                await self.check_adjust()

    async def check_adjust(self) -> None:
        """Ask for more capacity where the latest plan needs it (docs/oscp.md, the rule)."""
        plan = self.latest_plan()
        if plan is None or plan is self._checked_plan:
            return
        self._checked_plan = plan
        records = await asyncio.to_thread(self.repo.events)
        for group, sites in self.settings.groups.items():
            prefix = event_prefix(group, "import")
            limits = [
                r.event
                for r in records
                if r.status == "active" and r.event.event_id.startswith(prefix)
            ]
            blocks = needed_capacity(plan, sites, limits)
            signature = tuple((b.start_time, b.capacity) for b in blocks)
            if not blocks or signature == self._last_adjust.get(group):
                continue
            message = AdjustGroupCapacityForecast(
                group_id=group, type=CapacityForecastType.CONSUMPTION, forecasted_blocks=blocks
            )
            try:
                await self.send("adjust_group_capacity_forecast", message)
            except (OSError, OscpPeerError) as exc:
                log.warning("OSCP adjust request for %s not delivered: %s", group, exc)
                self._checked_plan = None  # try again next round
                continue
            self._last_adjust[group] = signature
            log.info("OSCP adjust request for %s: %d block(s)", group, len(blocks))
