"""Fixtures: the brokers every MQTT test runs against, and clients that clean up after it.

``broker`` is parametrised over the embedded amqtt broker (always) and a Mosquitto at
127.0.0.1:1883 (skipped if none answers within a second). Each test gets a random topic prefix
and client ids, so parallel runs against one Mosquitto do not see each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.mqtt.broker import EmbeddedBroker
from connectors.mqtt.client import MqttConnector, MqttSettings
from connectors.mqtt.gateway import GatewayClient
from tests.mqtt.mqtt_helpers import (
    BackgroundLoop,
    BrokerUnderTest,
    RawClient,
    RecordingHandler,
    port_answers,
)

SHARED_MOSQUITTO = ("127.0.0.1", 1883)


@pytest.fixture(scope="session")
def background_loop() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def embedded_broker(background_loop: BackgroundLoop) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker()
    background_loop.run(broker.start())
    yield broker
    background_loop.run(broker.stop())


@pytest.fixture(scope="session")
def shared_mosquitto_up() -> bool:
    return port_answers(*SHARED_MOSQUITTO, timeout=1.0)


@pytest.fixture(params=["amqtt", "mosquitto"])
def broker(request: pytest.FixtureRequest) -> BrokerUnderTest:
    if request.param == "amqtt":
        embedded: EmbeddedBroker = request.getfixturevalue("embedded_broker")
        return BrokerUnderTest("amqtt", embedded.url, supports_v5=False)
    if not request.getfixturevalue("shared_mosquitto_up"):
        host, port = SHARED_MOSQUITTO
        pytest.skip(f"no MQTT broker answers at {host}:{port} within 1 s (start Mosquitto there)")
    host, port = SHARED_MOSQUITTO
    return BrokerUnderTest("mosquitto", f"mqtt://{host}:{port}", supports_v5=True)


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def prefix(run_id: str) -> str:
    return f"aggtest-{run_id}"


MakeSettings = Callable[..., MqttSettings]


@pytest.fixture
def make_settings(prefix: str, run_id: str) -> MakeSettings:
    def make(url: str, **overrides: Any) -> MqttSettings:
        values: dict[str, Any] = {
            "prefix": prefix,
            "client_id": f"agg-{run_id}",
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            # Keep a shared broker tidy: our test sessions go away soon after the test.
            "session_expiry_s": 30,
            # Loopback brokers answer a CONNECT in milliseconds; amqtt never answers MQTT 5.
            "connack_timeout_s": 0.5,
        }
        values.update(overrides)
        return MqttSettings(url, **values)

    return make


@pytest.fixture
def make_connector(
    make_settings: MakeSettings,
) -> Iterator[Callable[..., tuple[MqttConnector, RecordingHandler]]]:
    started: list[MqttConnector] = []

    def make(url: str, **overrides: Any) -> tuple[MqttConnector, RecordingHandler]:
        handler = RecordingHandler()
        connector = MqttConnector(make_settings(url, **overrides), handler)
        started.append(connector)
        connector.start()
        return connector, handler

    yield make
    for connector in started:
        connector.stop()


@pytest.fixture
def make_gateway(
    make_settings: MakeSettings, run_id: str
) -> Iterator[Callable[..., GatewayClient]]:
    started: list[tuple[GatewayClient, str]] = []

    def make(url: str, site_id: str = "s1", on_setpoint: Any = None, **kw: Any) -> GatewayClient:
        gateway = GatewayClient(
            make_settings(url),
            site_id,
            on_setpoint or (lambda sp: None),
            client_id=f"gw-{site_id}-{run_id}",
            **kw,
        )
        started.append((gateway, url))
        gateway.start()
        return gateway

    yield make
    for gateway, url in started:
        gateway.stop()
        # Clear the retained status, so a shared broker does not collect one per test run.
        if port_answers(*_host_port(url), timeout=0.2):
            raw = RawClient(url)
            raw.publish(gateway.topics.status(gateway.site_id), b"", retain=True)
            raw.close()


@pytest.fixture
def raw_clients() -> Iterator[Callable[..., RawClient]]:
    made: list[RawClient] = []

    def make(url: str, **kw: Any) -> RawClient:
        client = RawClient(url, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("mqtt://").split(":")
    return host, int(port)
