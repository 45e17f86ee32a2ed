"""The aggregator's MQTT client: setpoints out to site gateways, telemetry and site status in.

Implements the ``SetpointSink`` port and feeds a ``TelemetryHandler``. The wire contract is in
``translate.py``; connection handling (protocol fallback, persistent session, reconnects) in
``link.py``. See ``docs/mqtt.md`` for the contract as site integrators read it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime

import paho.mqtt.client as mqtt

from aggregator.domain import Setpoint, SiteStatus, Telemetry
from aggregator.ports import Clock, TelemetryHandler
from connectors.mqtt.link import LinkedClient, MqttLink, WallClock
from connectors.mqtt.settings import MqttSettings
from connectors.mqtt.translate import (
    Topics,
    WireError,
    decode_status,
    decode_telemetry,
    encode_setpoint,
)

__all__ = ["MqttConnector", "MqttSettings"]

log = logging.getLogger(__name__)

SETPOINT_QOS = 1
# Subscribing at QoS 1 lets a gateway that publishes at QoS 1 get at-least-once delivery;
# the effective QoS is the lower of the two sides.
INBOUND_QOS = 1


class MqttConnector(LinkedClient):
    """Publishes setpoints (QoS 1) and delivers telemetry and site status to ``handler``.

    Keeps the latest setpoint per charger and re-sends every one still valid on each
    (re)connect and whenever a site's gateway announces ``online``; never sends a setpoint
    past its ``valid_until``. Handler methods run on paho's network thread.

    Counters: ``published`` setpoint messages handed to the broker connection (re-sends
    included); ``expired`` setpoints not sent because they had expired; ``received`` incoming
    messages; ``rejected`` those that broke the contract (each also reported to
    ``handler.on_reject``); ``reconnects``; ``callback_errors`` (exceptions caught in callbacks).
    """

    def __init__(
        self,
        settings: MqttSettings,
        handler: TelemetryHandler,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.topics = Topics(settings.prefix)
        self._handler = handler
        self._clock: Clock = clock or WallClock()
        # Guards _current and the counters it moves with; held while handing messages to paho
        # so that a re-send and a fresh publish cannot interleave out of order.
        self._lock = threading.Lock()
        self._current: dict[tuple[str, str], Setpoint] = {}
        self.published = 0
        self.expired = 0
        self.received = 0
        self.rejected = 0
        self._link = MqttLink(
            settings, settings.client_id, on_up=self._on_up, on_message=self._on_message
        )

    # ------------------------------------------------------------------ lifecycle

    # ------------------------------------------------------------------ SetpointSink

    def publish(self, setpoints: Sequence[Setpoint]) -> None:
        """Remember each setpoint as its charger's current one and send it if connected.

        Never blocks on the network: paho's thread does the I/O. While disconnected the
        setpoints are only remembered; the next connect sends those still valid.
        """
        now = self._clock.now()
        with self._lock:
            for sp in setpoints:
                key = (sp.site_id, sp.charger_id)
                held = self._current.get(key)
                if held is not None and sp.seq < held.seq:
                    log.debug("setpoint seq %s for %s is older than %s", sp.seq, key, held.seq)
                    continue
                if sp.valid_until <= now:
                    self.expired += 1
                    continue
                self._current[key] = sp
                self._send(sp, now)

    def current_setpoints(self) -> list[Setpoint]:
        """The latest setpoint per charger that is still valid (what a re-send would send)."""
        now = self._clock.now()
        with self._lock:
            return [sp for sp in self._current.values() if sp.valid_until > now]

    def _send(self, sp: Setpoint, now: datetime) -> None:
        remaining_s = int((sp.valid_until - now).total_seconds())
        info = self._link.publish(
            self.topics.setpoint(sp.site_id, sp.charger_id),
            encode_setpoint(sp),
            SETPOINT_QOS,
            expiry_s=remaining_s,
        )
        if info is not None:
            self.published += 1

    def _resend(self, site_id: str | None = None) -> None:
        """Send the current setpoint of every charger (of one site); forget expired ones."""
        now = self._clock.now()
        with self._lock:
            for key, sp in list(self._current.items()):
                if sp.valid_until <= now:
                    del self._current[key]
                elif site_id is None or sp.site_id == site_id:
                    self._send(sp, now)

    # ------------------------------------------------------------------ inbound (paho thread)

    def _on_up(self) -> None:
        self._link.subscribe(
            [(self.topics.all_telemetry, INBOUND_QOS), (self.topics.all_status, INBOUND_QOS)]
        )
        self._resend()

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        self.received += 1
        topic = msg.topic
        try:
            decoded = self._decode(topic, bytes(msg.payload))
        except WireError as exc:
            self.rejected += 1
            log.warning("rejected MQTT message on %s: %s", topic, exc)
            self._handler.on_reject(topic, str(exc))
            return
        if decoded is None:
            log.debug("retained status cleared on %s", topic)
            return
        if isinstance(decoded, Telemetry):
            self._handler.on_telemetry(topic, decoded)
            return
        if decoded.online:
            # The gateway subscribes before it announces itself, so what we send now reaches it
            # even if it lost its session (a broker restart without persistence, a new gateway).
            self._resend(decoded.site_id)
        self._handler.on_site_status(decoded)

    def _decode(self, topic: str, payload: bytes) -> Telemetry | SiteStatus | None:
        """The message as domain object; None for an empty status (a retained one deleted)."""
        kind, _, _ = self.topics.parse(topic)
        if kind == "telemetry":
            return decode_telemetry(self.topics, topic, payload)
        if kind == "status":
            if not payload:
                return None
            return decode_status(self.topics, topic, payload, self._clock.now())
        raise WireError(f"topic {topic!r}: the aggregator does not take {kind} messages")
