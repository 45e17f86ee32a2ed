"""The site side of the MQTT contract: what a site gateway (or the site simulator) runs.

Announces the site ``online`` (retained, with Last Will ``offline``), receives the site's
setpoints, drops duplicates, out-of-order and expired ones, and publishes telemetry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import paho.mqtt.client as mqtt

from aggregator.domain import Setpoint, Telemetry
from aggregator.ports import Clock
from connectors.mqtt.link import LinkedClient, MqttLink, WallClock, Will
from connectors.mqtt.settings import MqttSettings
from connectors.mqtt.translate import (
    Topics,
    WireError,
    decode_setpoint,
    encode_status,
    encode_telemetry,
)

log = logging.getLogger(__name__)

# Telemetry is periodic and each reading supersedes the last: QoS 0 loses at most one reading
# on a broken connection and never replays a backlog of stale ones after an outage.
TELEMETRY_QOS = 0
STATUS_QOS = 1
SETPOINT_QOS = 1
# How long stop() waits for the broker to take the final "offline". [s]
_OFFLINE_WAIT_S = 1.0


class GatewayClient(LinkedClient):
    """One site's MQTT client. ``on_setpoint`` runs on paho's network thread.

    ``client_id`` defaults to ``gateway-{site_id}``; it must be unique on the broker and stable
    across restarts, since the broker keeps the gateway's session under it.

    Counters: ``received`` setpoint messages; ``accepted`` passed to ``on_setpoint``;
    ``duplicates`` dropped because ``seq`` <= the last seen for the charger; ``expired``
    dropped because ``valid_until`` had passed; ``rejected`` that broke the contract;
    ``telemetry_sent``; ``telemetry_dropped`` (not connected).
    """

    def __init__(
        self,
        settings: MqttSettings,
        site_id: str,
        on_setpoint: Callable[[Setpoint], None],
        *,
        clock: Clock | None = None,
        client_id: str | None = None,
        on_reject: Callable[[str, str], None] | None = None,
    ) -> None:
        if not site_id or "/" in site_id or "+" in site_id or "#" in site_id:
            raise ValueError(f"site_id: must be a non-empty topic level, got {site_id!r}")
        self.site_id = site_id
        self.topics = Topics(settings.prefix)
        self._on_setpoint = on_setpoint
        self._on_reject = on_reject
        self._clock: Clock = clock or WallClock()
        # Written on the network thread only; read by current_setpoint from any thread.
        self._last_seq: dict[str, int] = {}
        self._latest: dict[str, Setpoint] = {}
        self.received = 0
        self.accepted = 0
        self.duplicates = 0
        self.expired = 0
        self.rejected = 0
        self.telemetry_sent = 0
        self.telemetry_dropped = 0
        will = Will(self.topics.status(site_id), encode_status(False), qos=STATUS_QOS, retain=True)
        self._link = MqttLink(
            settings,
            client_id or f"gateway-{site_id}",
            on_up=self._on_up,
            on_message=self._on_message,
            will=will,
        )

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Publish ``offline`` (a clean DISCONNECT suppresses the Will), then disconnect."""
        info = self._link.publish(
            self.topics.status(self.site_id), encode_status(False), STATUS_QOS, retain=True
        )
        if info is not None:
            try:
                info.wait_for_publish(_OFFLINE_WAIT_S)
            except (RuntimeError, ValueError):
                log.warning("gateway %s: could not publish offline before stopping", self.site_id)
        self._link.stop()

    def abort(self) -> None:
        """Drop the connection as a crash would (no DISCONNECT): the broker sends the Will."""
        self._link.abort()

    # ------------------------------------------------------------------ setpoints in

    def current_setpoint(self, charger_id: str) -> Setpoint | None:
        """The setpoint the charger should follow now; None means: fall back to safe power."""
        sp = self._latest.get(charger_id)
        if sp is None or sp.valid_until <= self._clock.now():
            return None
        return sp

    def _on_up(self) -> None:
        # Subscribe before announcing online: the aggregator answers "online" by re-sending the
        # site's setpoints, and they must find the subscription in place.
        self._link.subscribe([(self.topics.site_setpoints(self.site_id), SETPOINT_QOS)])
        self._link.publish(
            self.topics.status(self.site_id), encode_status(True), STATUS_QOS, retain=True
        )

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        self.received += 1
        topic = msg.topic
        try:
            sp = decode_setpoint(self.topics, topic, bytes(msg.payload))
        except WireError as exc:
            self.rejected += 1
            log.warning("gateway %s: rejected %s: %s", self.site_id, topic, exc)
            if self._on_reject is not None:
                self._on_reject(topic, str(exc))
            return
        last = self._last_seq.get(sp.charger_id)
        if last is not None and sp.seq <= last:
            # A re-send after a reconnect, or an older message overtaken by a newer one.
            self.duplicates += 1
            return
        self._last_seq[sp.charger_id] = sp.seq
        if sp.valid_until <= self._clock.now():
            # MQTT 3.1.1 brokers queue for an offline session without expiry; stale on arrival.
            self.expired += 1
            return
        self._latest[sp.charger_id] = sp
        self.accepted += 1
        self._on_setpoint(sp)

    # ------------------------------------------------------------------ telemetry out

    def publish_telemetry(self, telemetry: Telemetry) -> bool:
        """Send one reading (QoS 0); False if not connected (the reading is dropped)."""
        if telemetry.site_id != self.site_id:
            raise ValueError(
                f"telemetry of site {telemetry.site_id!r} given to the gateway of {self.site_id!r}"
            )
        info = self._link.publish(
            self.topics.telemetry(telemetry.site_id, telemetry.charger_id),
            encode_telemetry(telemetry),
            TELEMETRY_QOS,
        )
        if info is None:
            self.telemetry_dropped += 1
            return False
        self.telemetry_sent += 1
        return True
