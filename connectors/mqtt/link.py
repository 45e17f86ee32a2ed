"""One logical MQTT connection over paho: protocol fallback, persistent session, reconnects.

Shared by the aggregator's ``MqttConnector`` and the site ``GatewayClient``. Nothing is queued
across a connection loss: every (re)connect calls ``on_up``, which subscribes and re-sends what
is current, so nothing stale (an expired setpoint, an old reading) is replayed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from connectors.mqtt.settings import MqttSettings, tls_context

log = logging.getLogger(__name__)
_paho_logger = logging.getLogger("connectors.mqtt.paho")

ProtocolVersion = Literal["5", "3.1.1"]
# CONNACK "Unsupported Protocol Version" (paho maps a 3.1.1 return code 1 onto it too).
_UNSUPPORTED_PROTOCOL = 0x84


def _paho_log(client: mqtt.Client, userdata: Any, level: int, message: str) -> None:
    _paho_logger.debug("%s", message)


def _shut_down(sock: object, how: int = socket.SHUT_RDWR) -> None:
    """End a TCP connection under paho's feet; its network thread sees it as lost."""
    if isinstance(sock, socket.socket):  # SSLSocket is one too
        with contextlib.suppress(OSError):
            sock.shutdown(how)


def _properties(packet_type: int) -> Properties:
    # paho leaves Properties.__init__ unannotated.
    return Properties(packet_type)  # type: ignore[no-untyped-call]


class WallClock:
    """The real UTC time: the default ``Clock`` for deciding whether a setpoint expired."""

    def now(self) -> datetime:
        return datetime.now(UTC)


_MAX_INFLIGHT = 1000


@dataclass(frozen=True, slots=True)
class Will:
    """The Last Will the broker publishes if this client's connection dies without DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class MqttLink:
    """A paho client that keeps itself connected; call ``start()`` once and ``stop()`` once.

    ``on_up`` runs on paho's network thread after every successful CONNACK; ``on_message`` for
    every incoming message. Exceptions from either are logged and counted in
    ``callback_errors``, never raised into paho.
    """

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        *,
        on_up: Callable[[], None],
        on_message: Callable[[mqtt.MQTTMessage], None],
        will: Will | None = None,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self._endpoint = settings.endpoint
        self._expiry_cache: dict[int, Properties] = {}
        self._tls = tls_context(settings)
        self._on_up = on_up
        self._on_message = on_message
        self._will = will
        # The version of the current client; "auto" starts with 5. Once a broker has accepted a
        # version (_chosen) it is kept for every reconnect: "auto" decides once per process.
        self._version: ProtocolVersion = "3.1.1" if settings.protocol == "3.1.1" else "5"
        self._chosen: ProtocolVersion | None = None
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()
        # _session_up: CONNACK received, publishing allowed (on_up runs then); _up: on_up done,
        # what wait_connected() waits for, so a caller never races the first subscribe.
        self._session_up = False
        self._up = threading.Event()
        self._stopped = False
        self._connack_seen = False
        self._connack_timer: threading.Timer | None = None
        self.connects = 0
        self.callback_errors = 0

    # ------------------------------------------------------------------ state

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    @property
    def protocol(self) -> ProtocolVersion | None:
        """The MQTT version in use, once a broker has accepted one."""
        return self._chosen

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)

    def wait_connected(self, timeout: float) -> bool:
        return self._up.wait(timeout)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background; a broker that is down is retried with backoff."""
        with self._lock:
            if self._client is not None or self._stopped:
                raise RuntimeError("an MQTT link starts once")
            self._launch()

    def stop(self) -> None:
        """Disconnect cleanly (the broker discards our Last Will) and join the network thread."""
        client = self._retire()
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def abort(self) -> None:
        """Drop the connection without DISCONNECT, as a crash would: the broker sends the Will."""
        client = self._retire()
        if client is None:
            return
        # Shut down first so that the DISCONNECT queued by disconnect() never leaves.
        _shut_down(client.socket())
        client.disconnect()
        client.loop_stop()

    def _retire(self) -> mqtt.Client | None:
        with self._lock:
            self._stopped = True
            client, self._client = self._client, None
        self._session_up = False
        self._up.clear()
        self._disarm_connack_timer()
        return client

    # ------------------------------------------------------------------ traffic

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        *,
        retain: bool = False,
        expiry_s: int | None = None,
    ) -> mqtt.MQTTMessageInfo | None:
        """Hand a message to paho if connected, else None (callers re-send in ``on_up``).

        ``expiry_s`` becomes the MQTT 5 message expiry interval; MQTT 3.1.1 has none.
        """
        client = self._client
        if client is None or not self._session_up:
            return None
        properties = None
        if expiry_s is not None and self._version == "5":
            properties = self._expiry_properties(max(1, expiry_s))
        info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        return info if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS else None

    def _expiry_properties(self, expiry_s: int) -> Properties:
        # One dispatch cycle shares a valid_until: building paho's Properties per message
        # halved dispatch throughput (bench/dispatch.py), so they are reused per value.
        cached = self._expiry_cache.get(expiry_s)
        if cached is None:
            if len(self._expiry_cache) > 256:
                self._expiry_cache.clear()
            cached = _properties(PacketTypes.PUBLISH)
            cached.MessageExpiryInterval = expiry_s
            self._expiry_cache[expiry_s] = cached
        return cached

    def subscribe(self, subscriptions: Sequence[tuple[str, int]]) -> None:
        client = self._client
        if client is not None:
            client.subscribe(list(subscriptions))

    # ------------------------------------------------------------------ paho plumbing

    def _launch(self) -> None:
        """Create, configure and start the client for ``_version``; the caller holds _lock."""
        v5 = self._version == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            # MQTT 3.1.1 persistent session; MQTT 5 says it with clean_start below.
            clean_session=None if v5 else False,
        )
        # paho's own log is packet-level detail (and an ERROR on every clean disconnect in
        # 2.2); what matters is logged by this module.
        client.on_log = _paho_log
        # A dispatch publishes a setpoint per charger at QoS 1; with paho's default of 20 in
        # flight, 1,000 chargers wait for 50 acknowledgement round trips. The broker's own
        # receive maximum (MQTT 5) still applies.
        client.max_inflight_messages_set(_MAX_INFLIGHT)
        if self.settings.username is not None:
            client.username_pw_set(self.settings.username, self.settings.password)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        if self._will is not None:
            w = self._will
            client.will_set(w.topic, w.payload, qos=w.qos, retain=w.retain)
        # paho annotates these as int but computes with them as float seconds.
        client.reconnect_delay_set(
            self.settings.reconnect_min_s,  # type: ignore[arg-type]
            self.settings.reconnect_max_s,  # type: ignore[arg-type]
        )
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_connect_fail = self._handle_connect_fail
        client.on_socket_open = self._handle_socket_open
        host, port, keepalive = self._endpoint.host, self._endpoint.port, self.settings.keepalive
        if v5:
            properties = _properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self.settings.session_expiry_s
            client.connect_async(host, port, keepalive, clean_start=False, properties=properties)
        else:
            client.connect_async(host, port, keepalive)
        # Callbacks ignore clients other than self._client: set it before the thread starts.
        self._client = client
        client.loop_start()
        log.debug("MQTT %s: connecting to %s:%s", self.client_id, host, port)

    def _may_fall_back(self) -> bool:
        return self.settings.protocol == "auto" and self._chosen is None and self._version == "5"

    def _fall_back(self, old: mqtt.Client) -> None:
        """Replace a client the broker refused for MQTT 5 by an MQTT 3.1.1 one."""
        log.info("MQTT %s: broker refused MQTT 5, falling back to 3.1.1", self.client_id)
        # Called on old's network thread: disconnect() alone would not end it (paho resets the
        # state to "connection lost" after this callback); loop_stop() here only flags the loop
        # to end, it cannot join its own thread.
        old.disconnect()
        old.loop_stop()
        with self._lock:
            if self._stopped or self._client is not old:
                return
            self._version = "3.1.1"
            self._launch()

    def _handle_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # A new attempt: paho's own check would only give up after a whole keepalive period.
        try:
            if client is not self._client:
                return
            self._connack_seen = False
            self._disarm_connack_timer()
            timer = threading.Timer(
                self.settings.connack_timeout_s, self._connack_overdue, args=(client, sock)
            )
            timer.daemon = True
            self._connack_timer = timer
            timer.start()
        except Exception:
            self._callback_failed("on_socket_open")

    def _disarm_connack_timer(self) -> None:
        timer, self._connack_timer = self._connack_timer, None
        if timer is not None:
            timer.cancel()

    def _connack_overdue(self, client: mqtt.Client, sock: object) -> None:
        """Runs on a timer thread: close an attempt the broker never answered."""
        try:
            if client is not self._client or client.socket() is not sock or self._connack_seen:
                return
            log.warning(
                "MQTT %s: no CONNACK within %s s (MQTT %s), dropping the attempt",
                self.client_id,
                self.settings.connack_timeout_s,
                self._version,
            )
            # The network thread sees the socket die and runs _handle_disconnect: fall back to
            # MQTT 3.1.1 if that is still open, else the usual reconnect with backoff. Only our
            # sending side: the broker reads EOF and closes in its own time (amqtt leaks the
            # connection on Python 3.11 when its last write fails).
            _shut_down(sock, socket.SHUT_WR)
        except Exception:
            self._callback_failed("CONNACK timer")

    def _handle_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            if client is not self._client:
                return
            self._connack_seen = True
            self._disarm_connack_timer()
            if reason.is_failure:
                if reason.value == _UNSUPPORTED_PROTOCOL and self._may_fall_back():
                    self._fall_back(client)
                else:
                    log.warning("MQTT %s: connection refused: %s", self.client_id, reason)
                return
            self._chosen = self._version
            self.connects += 1
            # paho would replay unacknowledged messages after this callback; drop them, on_up
            # re-sends whatever is still current.
            client.drop_out_messages()
            self._session_up = True
            log.info(
                "MQTT %s: connected (MQTT %s, session present: %s)",
                self.client_id,
                self._version,
                flags.session_present,
            )
            try:
                self._on_up()
            finally:
                self._up.set()
        except Exception:
            self._callback_failed("on_connect")

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            if client is not self._client:
                return
            self._session_up = False
            self._up.clear()
            connack_seen, self._connack_seen = self._connack_seen, False
            # Some brokers answer an MQTT 5 CONNECT by closing the socket, without a CONNACK.
            if not connack_seen and self._may_fall_back():
                self._fall_back(client)
            else:
                log.warning("MQTT %s: connection lost (%s), reconnecting", self.client_id, reason)
        except Exception:
            self._callback_failed("on_disconnect")

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        log.debug("MQTT %s: broker unreachable, retrying", self.client_id)

    def _handle_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._on_message(msg)
        except Exception:
            self._callback_failed("on_message")

    def _callback_failed(self, where: str) -> None:
        self.callback_errors += 1
        log.exception("MQTT %s: error in %s", self.client_id, where)


class LinkedClient:
    """What the aggregator's connector and a site's gateway share: one ``MqttLink``."""

    _link: MqttLink

    def start(self) -> None:
        """Connect in the background (returns at once); see ``wait_connected``."""
        self._link.start()

    def stop(self) -> None:
        """Disconnect cleanly and join the network thread."""
        self._link.stop()

    def wait_connected(self, timeout: float) -> bool:
        """True once connected and subscribed (SUBSCRIBE sent), False after ``timeout`` s."""
        return self._link.wait_connected(timeout)

    @property
    def connected(self) -> bool:
        return self._link.connected

    @property
    def protocol(self) -> ProtocolVersion | None:
        """``"5"`` or ``"3.1.1"`` once a broker accepted us; None before."""
        return self._link.protocol

    @property
    def reconnects(self) -> int:
        return self._link.reconnects

    @property
    def callback_errors(self) -> int:
        return self._link.callback_errors
