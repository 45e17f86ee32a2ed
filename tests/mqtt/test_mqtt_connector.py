"""The aggregator's MQTT connector against real brokers (amqtt in-process, Mosquitto)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from aggregator.domain import Setpoint, Telemetry
from connectors.mqtt.client import MqttConnector
from connectors.mqtt.gateway import GatewayClient
from connectors.mqtt.translate import Topics
from tests.mqtt.mqtt_helpers import (
    BrokerUnderTest,
    RawClient,
    RecordingHandler,
    setpoint,
    telemetry,
    wait_until,
)

MakeConnector = Callable[..., tuple[MqttConnector, RecordingHandler]]
MakeGateway = Callable[..., GatewayClient]
MakeRaw = Callable[..., RawClient]


def _subscribed(raw: RawClient, handler: RecordingHandler, prefix: str) -> None:
    """Wait until the connector's subscriptions are active: a retained status reaches it."""
    raw.publish(Topics(prefix).status("probe"), b"online", retain=True)
    assert wait_until(lambda: handler.online("probe") is True), "connector never subscribed"


def test_connector_speaks_mqtt5_where_the_broker_can_else_311(
    broker: BrokerUnderTest, make_connector: MakeConnector
) -> None:
    connector, _ = make_connector(broker.url)
    assert connector.wait_connected(5)
    assert connector.protocol == ("5" if broker.supports_v5 else "3.1.1")
    assert connector.reconnects == 0


def test_protocol_311_is_used_when_asked_even_if_broker_speaks_5(
    broker: BrokerUnderTest, make_connector: MakeConnector
) -> None:
    connector, _ = make_connector(broker.url, protocol="3.1.1")
    assert connector.wait_connected(5)
    assert connector.protocol == "3.1.1"


def test_setpoints_reach_the_site_gateway_as_contract_json(
    broker: BrokerUnderTest,
    make_connector: MakeConnector,
    make_gateway: MakeGateway,
    raw_clients: MakeRaw,
    prefix: str,
) -> None:
    got: list[Setpoint] = []
    connector, handler = make_connector(broker.url)
    make_gateway(broker.url, "s1", got.append)
    raw = raw_clients(broker.url)
    raw.subscribe(Topics(prefix).site_setpoints("s1"))
    assert wait_until(lambda: handler.online("s1") is True)

    sent = [setpoint("c1", seq=7, power_kw=11.0), setpoint("c2", seq=8, power_kw=-4.25)]
    connector.publish(sent)

    assert wait_until(lambda: len(got) == 2)
    assert sorted(got, key=lambda sp: sp.seq) == sent
    c1_topic = Topics(prefix).setpoint("s1", "c1")
    assert wait_until(lambda: bool(raw.on(c1_topic)))
    wire = raw.on(c1_topic)
    assert json.loads(wire[0].payload) == {
        "power_kw": 11.0,
        "valid_until": sent[0].valid_until.isoformat().replace("+00:00", "Z"),
        "issued_at": sent[0].issued_at.isoformat().replace("+00:00", "Z"),
        "seq": 7,
        "plan_id": "plan-1",
    }
    assert connector.published >= 2


def test_telemetry_and_site_status_reach_the_handler(
    broker: BrokerUnderTest, make_connector: MakeConnector, make_gateway: MakeGateway, prefix: str
) -> None:
    connector, handler = make_connector(broker.url)
    assert connector.wait_connected(5)
    gateway = make_gateway(broker.url, "s1")
    assert wait_until(lambda: handler.online("s1") is True)

    reading = telemetry("c3")
    assert gateway.publish_telemetry(reading)
    assert wait_until(lambda: len(handler.telemetry) == 1)
    assert handler.telemetry == [(Topics(prefix).telemetry("s1", "c3"), reading)]

    gateway.stop()
    assert wait_until(lambda: handler.online("s1") is False)
    assert handler.rejects == []
    assert connector.rejected == 0


def test_bad_telemetry_goes_to_on_reject_with_a_reason_and_nowhere_else(
    broker: BrokerUnderTest, make_connector: MakeConnector, raw_clients: MakeRaw, prefix: str
) -> None:
    connector, handler = make_connector(broker.url)
    raw = raw_clients(broker.url)
    _subscribed(raw, handler, prefix)
    topics = Topics(prefix)
    bad = [
        (topics.telemetry("s1", "c1"), b"{oops"),
        (
            topics.telemetry("s1", "c1"),
            b'{"ts": "2025-06-01T12:00:00Z", "power_kw": 1, "plugged": true, "soc": -0.2}',
        ),
        (
            topics.telemetry("s1", "c2"),
            b'{"ts": "2025-06-01T12:00:00Z", "power_kw": 1, "plugged": "yes"}',
        ),
        (topics.status("s2"), b"sleeping"),
    ]
    for topic, payload in bad:
        raw.publish(topic, payload)

    assert wait_until(lambda: len(handler.rejects) == len(bad))
    reasons = dict(handler.rejects)
    assert "not JSON" in handler.rejects[0][1]
    assert "soc" in handler.rejects[1][1]
    assert "plugged" in reasons[topics.telemetry("s1", "c2")]
    assert "online" in reasons[topics.status("s2")]
    assert handler.telemetry == []
    assert [s.site_id for s in handler.statuses] == ["probe"]
    assert connector.rejected == len(bad)
    assert connector.callback_errors == 0
    raw.publish(topics.status("probe"), b"", retain=True)


def test_setpoint_already_expired_is_never_sent(
    broker: BrokerUnderTest, make_connector: MakeConnector, raw_clients: MakeRaw, prefix: str
) -> None:
    connector, _ = make_connector(broker.url)
    assert connector.wait_connected(5)
    raw = raw_clients(broker.url)
    raw.subscribe(Topics(prefix).site_setpoints("s1"))

    connector.publish([setpoint("c1", seq=1, issued_ago_s=60, valid_s=-1)])
    # A valid setpoint after it on the same connection: once it arrives, the first would have.
    connector.publish([setpoint("c2", seq=2)])

    assert wait_until(lambda: len(raw.messages) >= 1)
    assert [m.topic for m in raw.messages] == [Topics(prefix).setpoint("s1", "c2")]
    assert (connector.expired, connector.published) == (1, 1)
    assert [sp.charger_id for sp in connector.current_setpoints()] == ["c2"]


def test_message_expiry_interval_follows_valid_until_on_mqtt5(
    broker: BrokerUnderTest, make_connector: MakeConnector, raw_clients: MakeRaw, prefix: str
) -> None:
    connector, _ = make_connector(broker.url)
    assert connector.wait_connected(5)
    raw = raw_clients(broker.url, v5=broker.supports_v5)
    raw.subscribe(Topics(prefix).site_setpoints("s1"))

    connector.publish([setpoint("c1", valid_s=120)])

    assert wait_until(lambda: len(raw.messages) == 1)
    properties = raw.messages[0].properties
    if not broker.supports_v5:
        assert connector.protocol == "3.1.1"
        assert properties is None
        return
    # The broker passes on what is left of the interval; a second or two may have gone.
    assert 110 <= properties.MessageExpiryInterval <= 120


class _FailingOnce(RecordingHandler):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def on_telemetry(self, topic: str, telemetry: Telemetry) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("handler bug")
        super().on_telemetry(topic, telemetry)


def test_handler_exception_is_logged_and_counted_and_delivery_goes_on(
    broker: BrokerUnderTest,
    make_settings: Callable[..., Any],
    make_gateway: MakeGateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = _FailingOnce()
    connector = MqttConnector(make_settings(broker.url), handler)
    connector.start()
    try:
        gateway = make_gateway(broker.url, "s1")
        assert wait_until(lambda: handler.online("s1") is True)
        gateway.publish_telemetry(telemetry("c1"))
        assert wait_until(lambda: connector.callback_errors == 1)
        gateway.publish_telemetry(telemetry("c2"))
        assert wait_until(lambda: len(handler.telemetry) == 1)
        assert handler.telemetry[0][1].charger_id == "c2"
        assert connector.connected
        assert "handler bug" in caplog.text
    finally:
        connector.stop()
