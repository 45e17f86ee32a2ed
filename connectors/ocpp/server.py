"""The OCPP central system: a websockets server, one ``ocpp`` ChargePoint per connection.

Implements the ``SetpointSink`` port (setpoints become TxProfiles) and feeds a
``TelemetryHandler`` (status, transactions and meter values become ``Telemetry``), mirroring
the MQTT connector. Everything runs on the event loop it is started on; ``publish`` may be
called from any thread and only queues. See docs/ocpp.md.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import itertools
import logging
import ssl
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from ocpp import v16, v21, v201
from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from aggregator.domain import Setpoint, SiteStatus, Telemetry, ValidationError
from aggregator.ports import Clock, TelemetryHandler
from connectors.ocpp.settings import (
    OCPP_TLS12_CIPHERS,
    SUBPROTOCOLS,
    OcppChargerSettings,
    OcppSettings,
)
from connectors.ocpp.translate import (
    composite_limit,
    default_profile,
    plugged_from_status,
    profile_limit,
    read_meter_values,
    tx_profile,
)

__all__ = ["OcppCentralSystem", "server_ssl_context"]

log = logging.getLogger(__name__)

PATH_PREFIX = "/ocpp/"


class _WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class _ChargerState:
    """What we know of one charger; outlives its connection (reconnects keep the transaction)."""

    cp_id: str
    charger: OcppChargerSettings
    site_id: str
    version: str = ""
    connected: bool = False
    transaction_id: str | int | None = None
    tx_started_at: datetime | None = None
    vehicle_id: str | None = None
    power_kw: float = 0.0
    soc: float | None = None
    pending: Setpoint | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    cp: Any = None
    # set on a reconnect: the next TxProfile sent is checked with GetCompositeSchedule
    check_composite: bool = False


class _Common:
    """Shared by every version's charge point: the state it belongs to and the system."""

    state: _ChargerState
    system: OcppCentralSystem
    _call_module: Any
    _call_result: Any

    def _now_iso(self) -> str:
        return self.system.clock.now().isoformat().replace("+00:00", "Z")

    def _boot_result(self) -> Any:
        return self._call_result.BootNotification(
            current_time=self._now_iso(),
            interval=self.system.settings.heartbeat_interval_s,
            status="Accepted",
        )


class _Handlers16(_Common):
    @on("BootNotification")
    def on_boot(self, **_: Any) -> Any:
        return self._boot_result()

    @after("BootNotification")
    async def after_boot(self, **_: Any) -> None:
        await self.system.booted(self.state)

    @on("Heartbeat")
    def on_heartbeat(self, **_: Any) -> Any:
        return self._call_result.Heartbeat(current_time=self._now_iso())

    @on("StatusNotification")
    def on_status(self, status: str, **_: Any) -> Any:
        if plugged_from_status("1.6", status) is False and self.state.transaction_id is not None:
            self.system.end_transaction(self.state)
        return self._call_result.StatusNotification()

    @on("Authorize")
    def on_authorize(self, id_tag: str, **_: Any) -> Any:
        return self._call_result.Authorize(id_tag_info={"status": "Accepted"})

    @on("StartTransaction")
    def on_start(self, id_tag: str, **_: Any) -> Any:
        tx = self.system.start_transaction(self.state, id_tag, None)
        assert isinstance(tx, int)
        return self._call_result.StartTransaction(
            transaction_id=tx, id_tag_info={"status": "Accepted"}
        )

    @on("StopTransaction")
    def on_stop(self, transaction_data: list[Any] | None = None, **_: Any) -> Any:
        if transaction_data:
            self.system.meter(self.state, transaction_data, emit=False)
        self.system.end_transaction(self.state)
        return self._call_result.StopTransaction()

    @on("MeterValues")
    def on_meter_values(self, meter_value: list[Any], **_: Any) -> Any:
        self.system.meter(self.state, meter_value)
        return self._call_result.MeterValues()


class _Handlers2x(_Common):
    @on("BootNotification")
    def on_boot(self, **_: Any) -> Any:
        return self._boot_result()

    @after("BootNotification")
    async def after_boot(self, **_: Any) -> None:
        await self.system.booted(self.state)

    @on("Heartbeat")
    def on_heartbeat(self, **_: Any) -> Any:
        return self._call_result.Heartbeat(current_time=self._now_iso())

    @on("StatusNotification")
    def on_status(self, connector_status: str, **_: Any) -> Any:
        if (
            plugged_from_status("2", connector_status) is False
            and self.state.transaction_id is not None
        ):
            self.system.end_transaction(self.state)
        return self._call_result.StatusNotification()

    @on("Authorize")
    def on_authorize(self, **_: Any) -> Any:
        return self._call_result.Authorize(id_token_info={"status": "Accepted"})

    @on("TransactionEvent")
    def on_transaction_event(
        self,
        event_type: str,
        transaction_info: dict[str, Any],
        id_token: dict[str, Any] | None = None,
        meter_value: list[Any] | None = None,
        **_: Any,
    ) -> Any:
        state = self.state
        if event_type == "Started" or (event_type == "Updated" and state.transaction_id is None):
            vehicle = id_token.get("id_token") if id_token else None
            self.system.start_transaction(state, vehicle, str(transaction_info["transaction_id"]))
        elif id_token and state.vehicle_id is None:
            state.vehicle_id = id_token.get("id_token")
        if meter_value:
            self.system.meter(state, meter_value, emit=event_type != "Ended")
        if event_type == "Ended":
            self.system.end_transaction(state)
        return self._call_result.TransactionEvent()

    @on("MeterValues")
    def on_meter_values(self, meter_value: list[Any], **_: Any) -> Any:
        self.system.meter(self.state, meter_value)
        return self._call_result.MeterValues()


class _CP16(_Handlers16, v16.ChargePoint):
    _call_module = v16.call


class _CP201(_Handlers2x, v201.ChargePoint):
    _call_module = v201.call


class _CP21(_Handlers2x, v21.ChargePoint):
    _call_module = v21.call


_CLASSES: dict[str, tuple[str, type[Any]]] = {
    "ocpp1.6": ("1.6", _CP16),
    "ocpp2.0.1": ("2.0.1", _CP201),
    "ocpp2.1": ("2.1", _CP21),
}


class OcppCentralSystem:
    """OCPP server for the fleet's chargers.

    ``charger_sites`` maps each fleet charger to its site; a charge point whose id (after the
    ``settings.chargers`` mapping) is not a fleet charger is refused before the upgrade.

    Counters (``counters``): ``connections``, ``refused``, ``telemetry``, ``profiles_sent``,
    ``profiles_rejected`` (the charger answered other than Accepted), ``call_errors`` (a
    CALLERROR came back; logged, never swallowed silently), ``timeouts`` (no answer in
    ``response_timeout_s``: the charger is put in ``degraded`` until a call succeeds),
    ``expired`` (setpoints not sent because they had expired), ``composite_checks`` and
    ``composite_mismatches`` (after a reconnect, GetCompositeSchedule showed a limit other
    than the TxProfile we re-sent).
    """

    def __init__(
        self,
        settings: OcppSettings,
        handler: TelemetryHandler,
        charger_sites: Mapping[str, str],
        *,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or _WallClock()
        self._handler = handler
        self._charger_sites = dict(charger_sites)
        self._by_cp: dict[str, OcppChargerSettings] = dict(settings.chargers)
        self._states: dict[str, _ChargerState] = {}  # by charger id
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tx_ids = itertools.count(1)
        self.counters: Counter[str] = Counter()
        self.degraded: set[str] = set()
        self._ssl = server_ssl_context(settings) if settings.security_profile >= 2 else None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await serve(
            self._serve_connection,
            self.settings.host,
            self.settings.port,
            subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS],
            process_request=self._process_request,
            ping_interval=self.settings.ping_interval_s,
            ping_timeout=self.settings.ping_interval_s,
            ssl=self._ssl,
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        self._loop = None

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    @property
    def url(self) -> str:
        scheme = "wss" if self._ssl is not None else "ws"
        return f"{scheme}://{self.settings.host}:{self.port}{PATH_PREFIX}"

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    def connected(self) -> list[str]:
        return sorted(c for c, s in self._states.items() if s.connected)

    # ------------------------------------------------------------------ routing

    def reaches(self, charger_id: str) -> bool:
        """True for a charger configured for OCPP or that has connected over OCPP."""
        if charger_id in self._states:
            return True
        return any(c.charger_id == charger_id for c in self._by_cp.values())

    def _charger_for(self, cp_id: str) -> OcppChargerSettings | None:
        config = self._by_cp.get(cp_id)
        if config is None and cp_id in self._charger_sites:
            config = OcppChargerSettings(charger_id=cp_id)
        if config is None or config.charger_id not in self._charger_sites:
            return None
        return config

    # ------------------------------------------------------------------ connections

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse unknown charge points and wrong credentials before the upgrade."""
        path = request.path
        cp_id = path[len(PATH_PREFIX) :] if path.startswith(PATH_PREFIX) else ""
        config = self._charger_for(cp_id) if cp_id and "/" not in cp_id else None
        if config is None:
            self.counters["refused"] += 1
            log.warning("OCPP connection refused: unknown charge point at %r", path)
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown charge point\n")
        if self.settings.security_profile == 3:
            name = _peer_common_name(connection)
            if name != cp_id:
                self.counters["refused"] += 1
                log.warning(
                    "OCPP connection refused: certificate CN %r is not charge point %s", name, cp_id
                )
                return connection.respond(HTTPStatus.FORBIDDEN, "certificate not for this id\n")
            return None
        if self.settings.security_profile >= 1 and not _basic_auth_ok(
            request.headers.get("Authorization"), cp_id, config.password
        ):
            self.counters["refused"] += 1
            log.warning("OCPP connection refused: bad credentials for %s", cp_id)
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "bad credentials\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp"'
            return response
        return None

    async def _serve_connection(self, connection: ServerConnection) -> None:
        cp_id = connection.request.path[len(PATH_PREFIX) :] if connection.request else ""
        config = self._charger_for(cp_id)
        chosen = _CLASSES.get(connection.subprotocol or "")
        if config is None or chosen is None:
            log.warning("OCPP %s: no supported subprotocol offered; closing", cp_id)
            await connection.close(1002, "subprotocol ocpp1.6, ocpp2.0.1 or ocpp2.1 required")
            return
        version, cls = chosen
        state = self._states.get(config.charger_id)
        if state is None:
            site = self._charger_sites[config.charger_id]
            state = self._states[config.charger_id] = _ChargerState(cp_id, config, site)
        else:
            # A reconnect: the re-sent TxProfile is checked against the charger's composite.
            state.check_composite = True
            if state.connected and state.cp is not None:
                log.warning("OCPP %s: a second connection replaces the first", cp_id)
                await state.cp._connection.close(1000, "replaced")
        cp = cls(cp_id, connection, response_timeout=self.settings.response_timeout_s)
        cp.state, cp.system = state, self
        state.cp, state.version = cp, version
        state.wake = asyncio.Event()
        self.counters["connections"] += 1
        log.info("OCPP %s connected (%s) as charger %s", cp_id, version, config.charger_id)
        self._set_connected(state, True)
        sender = asyncio.get_running_loop().create_task(self._sender(state, cp))
        self._tasks.add(sender)
        sender.add_done_callback(self._tasks.discard)
        # After a reconnect the transaction goes on: re-send its current setpoint.
        self._queue_current(state)
        try:
            await cp.start()
        except Exception as exc:  # ConnectionClosed and kin end the connection
            log.info("OCPP %s disconnected: %s", cp_id, exc)
        finally:
            sender.cancel()
            if state.cp is cp:
                state.cp = None
                self._set_connected(state, False)

    def _set_connected(self, state: _ChargerState, up: bool) -> None:
        was = any(s.connected for s in self._states.values() if s.site_id == state.site_id)
        state.connected = up
        now_up = any(s.connected for s in self._states.values() if s.site_id == state.site_id)
        if was != now_up:
            self._handler.on_site_status(SiteStatus(state.site_id, now_up, self.clock.now()))

    # ------------------------------------------------------------------ inbound

    async def booted(self, state: _ChargerState) -> None:
        """At boot: the default profile at the charger's safe limit, then the current one."""
        cp = state.cp
        if cp is None:
            return
        connector = 0
        if state.version == "1.6":
            payload = cp._call_module.SetChargingProfile(
                connector_id=connector,
                cs_charging_profiles=default_profile(state.charger, state.version),
            )
        else:
            payload = cp._call_module.SetChargingProfile(
                evse_id=connector, charging_profile=default_profile(state.charger, state.version)
            )
        with contextlib.suppress(OCPPError, TimeoutError):  # counted and logged in _call
            await self._call(state, payload)
        self._queue_current(state)

    def start_transaction(
        self, state: _ChargerState, vehicle_id: str | None, transaction_id: str | None
    ) -> str | int:
        tx: str | int = transaction_id if transaction_id is not None else next(self._tx_ids)
        state.transaction_id = tx
        state.tx_started_at = self.clock.now()
        state.vehicle_id = vehicle_id
        state.power_kw = 0.0
        state.soc = None
        self._emit(state)
        return tx

    def end_transaction(self, state: _ChargerState) -> None:
        state.transaction_id = None
        state.tx_started_at = None
        state.power_kw = 0.0
        state.pending = None
        self._emit(state)
        state.vehicle_id = None
        state.soc = None

    def meter(self, state: _ChargerState, meter_values: list[Any], *, emit: bool = True) -> None:
        reading = read_meter_values(meter_values)
        if reading.power_kw is not None:
            state.power_kw = reading.power_kw
        if reading.soc is not None:
            state.soc = reading.soc
        if emit:
            self._emit(state)

    def _emit(self, state: _ChargerState) -> None:
        topic = f"ocpp/{state.cp_id}"
        try:
            telemetry = Telemetry(
                site_id=state.site_id,
                charger_id=state.charger.charger_id,
                ts=self.clock.now(),
                power_kw=state.power_kw,
                plugged=state.transaction_id is not None,
                vehicle_id=state.vehicle_id,
                soc=state.soc,
            )
        except ValidationError as exc:
            self.counters["rejected"] += 1
            self._handler.on_reject(topic, str(exc))
            return
        self.counters["telemetry"] += 1
        self._handler.on_telemetry(topic, telemetry)

    # ------------------------------------------------------------------ SetpointSink

    def publish(self, setpoints: Sequence[Setpoint]) -> None:
        """Queue the setpoints to the server's loop; never blocks (any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        batch = list(setpoints)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._accept(batch)
        else:
            loop.call_soon_threadsafe(self._accept, batch)

    def _accept(self, setpoints: list[Setpoint]) -> None:
        now = self.clock.now()
        for sp in setpoints:
            state = self._states.get(sp.charger_id)
            if state is None:
                continue  # never connected: nothing to send to, no transaction to limit
            if sp.valid_until <= now:
                self.counters["expired"] += 1
                continue
            held = state.pending
            if held is not None and sp.seq < held.seq:
                continue
            state.pending = sp
            self._queue_current(state)

    def _queue_current(self, state: _ChargerState) -> None:
        if state.pending is not None and state.connected:
            state.wake.set()

    async def _sender(self, state: _ChargerState, cp: Any) -> None:
        """Sends the charger's latest setpoint as TxProfile whenever there is a new one."""
        while True:
            await state.wake.wait()
            state.wake.clear()
            sp = state.pending
            tx, started = state.transaction_id, state.tx_started_at
            if sp is None or tx is None or started is None:
                continue
            if sp.issued_at < started:
                continue  # planned before this vehicle plugged in: it runs on the default
            if sp.valid_until <= self.clock.now():
                self.counters["expired"] += 1
                continue
            profile = tx_profile(sp, state.charger, state.version, tx)
            if state.version == "1.6":
                payload = cp._call_module.SetChargingProfile(
                    connector_id=1, cs_charging_profiles=profile
                )
            else:
                payload = cp._call_module.SetChargingProfile(evse_id=1, charging_profile=profile)
            # counted and logged in _call; the next setpoint tries again
            with contextlib.suppress(OCPPError, TimeoutError):
                result = await self._call(state, payload)
                if state.check_composite and getattr(result, "status", "") == "Accepted":
                    state.check_composite = False
                    await self._check_composite(state, cp, profile)

    async def _check_composite(self, state: _ChargerState, cp: Any, sent: dict[str, Any]) -> None:
        """Ask the charger what it will actually do; log and count a limit other than ours."""
        unit = state.charger.unit
        schedule = sent["chargingSchedule"]
        duration = int((schedule[0] if isinstance(schedule, list) else schedule)["duration"])
        if state.version == "1.6":
            payload = cp._call_module.GetCompositeSchedule(
                connector_id=1, duration=duration, charging_rate_unit=unit
            )
        else:
            payload = cp._call_module.GetCompositeSchedule(
                duration=duration, evse_id=1, charging_rate_unit=unit
            )
        result = await self._call(state, payload)
        self.counters["composite_checks"] += 1
        expected = profile_limit(sent)
        got = composite_limit(result)
        if got is None or abs(got - expected) > 0.05:
            self.counters["composite_mismatches"] += 1
            log.warning(
                "OCPP %s: composite schedule limit %s %s differs from the re-sent TxProfile's %s",
                state.cp_id,
                got,
                unit,
                expected,
            )

    async def _call(self, state: _ChargerState, payload: Any) -> Any:
        """One CALL with ``suppress=False``: CALLERRORs and timeouts are logged, counted, raised."""
        cp = state.cp
        if cp is None:
            raise TimeoutError(f"charger {state.charger.charger_id} is not connected")
        name = type(payload).__name__
        try:
            result = await cp.call(payload, suppress=False)
        except OCPPError as exc:
            self.counters["call_errors"] += 1
            log.error("OCPP %s: %s answered with CALLERROR: %r", state.cp_id, name, exc)
            raise
        except TimeoutError:
            self.counters["timeouts"] += 1
            self.degraded.add(state.charger.charger_id)
            log.error(
                "OCPP %s: no answer to %s within %ss: charger degraded",
                state.cp_id,
                name,
                self.settings.response_timeout_s,
            )
            raise
        self.degraded.discard(state.charger.charger_id)
        status = getattr(result, "status", "Accepted")
        if name == "SetChargingProfile":
            if status == "Accepted":
                self.counters["profiles_sent"] += 1
            else:
                self.counters["profiles_rejected"] += 1
                log.warning("OCPP %s: SetChargingProfile %s", state.cp_id, status)
        return result


def server_ssl_context(settings: OcppSettings) -> ssl.SSLContext:
    """TLS >= 1.2 with the OCPP cipher suites only; client certificates for profile 3."""
    assert settings.tls_cert and settings.tls_key
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(":".join(OCPP_TLS12_CIPHERS))
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    if settings.security_profile == 3:
        assert settings.tls_ca
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(settings.tls_ca)
    return context


def _peer_common_name(connection: ServerConnection) -> str | None:
    """The commonName of the (verified) client certificate's subject, if any."""
    ssl_object = connection.transport.get_extra_info("ssl_object")
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def _basic_auth_ok(header: str | None, cp_id: str, password: str | None) -> bool:
    if password is None or not header or not header.startswith("Basic "):
        return False
    try:
        user, _, given = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return user == cp_id and hmac.compare_digest(given.encode(), password.encode())
