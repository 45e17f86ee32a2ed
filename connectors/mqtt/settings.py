"""Connection settings shared by the aggregator's MQTT client and the site gateway helper."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from connectors.mqtt.translate import DEFAULT_PREFIX

ProtocolChoice = Literal["auto", "5", "3.1.1"]
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the broker listens, parsed from ``mqtt://host:port`` or ``mqtts://host:port``."""

    host: str
    port: int
    tls: bool


def parse_url(url: str) -> Endpoint:
    """Host, port and TLS flag of a broker URL; ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError(f"url: scheme must be mqtt:// or mqtts://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"url: no host in {url!r}")
    if parts.username or parts.password:
        # Credentials in URLs end up in logs; they belong in username/password.
        raise ValueError("url: give credentials as username/password, not in the URL")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise ValueError(f"url: bad port in {url!r}") from exc
    return Endpoint(parts.hostname, port, parts.scheme == "mqtts")


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """How to reach the broker and who we are there.

    ``protocol="auto"`` tries MQTT 5 and falls back to 3.1.1 if the broker refuses it, or does
    not answer the CONNECT within ``connack_timeout_s`` (amqtt never answers an MQTT 5 CONNECT
    that carries properties). [s]
    ``session_expiry_s`` is how long an MQTT 5 broker keeps our session (subscriptions and
    queued QoS 1 messages) while we are away. [s] Reconnect waits double from
    ``reconnect_min_s`` up to ``reconnect_max_s``. [s]
    """

    url: str
    prefix: str = DEFAULT_PREFIX
    client_id: str = "aggregator"
    username: str | None = None
    password: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    protocol: ProtocolChoice = "auto"
    keepalive: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    session_expiry_s: int = 3600
    connack_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        parse_url(self.url)
        if self.protocol not in ("auto", "5", "3.1.1"):
            raise ValueError(f"protocol: expected auto, 5 or 3.1.1, got {self.protocol!r}")
        if not self.prefix or "+" in self.prefix or "#" in self.prefix:
            raise ValueError(f"prefix: must be a topic without wildcards, got {self.prefix!r}")
        if not self.client_id:
            raise ValueError("client_id: must not be empty (persistent sessions need it)")
        if self.keepalive <= 0:
            raise ValueError("keepalive: must be > 0")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise ValueError("reconnect_min_s: must be > 0 and <= reconnect_max_s")
        if self.connack_timeout_s <= 0:
            raise ValueError("connack_timeout_s: must be > 0")
        if self.session_expiry_s < 0:
            raise ValueError("session_expiry_s: must be >= 0")
        if self.tls_key is not None and self.tls_cert is None:
            raise ValueError("tls_key: given without tls_cert")
        if self.password is not None and self.username is None:
            raise ValueError("password: given without username")

    @property
    def endpoint(self) -> Endpoint:
        return parse_url(self.url)

    @property
    def uses_tls(self) -> bool:
        return self.endpoint.tls or self.tls_ca is not None or self.tls_cert is not None


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    """A verifying TLS >= 1.2 context, or None when the settings ask for plain TCP."""
    if not settings.uses_tls:
        return None
    # create_default_context verifies the broker's certificate and host name; tls_ca adds a
    # private CA, otherwise the system's trust store applies.
    context = ssl.create_default_context(cafile=settings.tls_ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.tls_cert is not None:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context
