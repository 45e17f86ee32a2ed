"""The site gateway helper: seq ordering, expiry, status with Last Will, rejects."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from aggregator.domain import Setpoint
from connectors.mqtt.client import MqttConnector
from connectors.mqtt.gateway import GatewayClient
from connectors.mqtt.settings import MqttSettings
from connectors.mqtt.translate import Topics, encode_setpoint
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


def _gateway_listening(raw: RawClient, topics: Topics, site_id: str) -> None:
    """The gateway announces ``online`` only after subscribing: wait for that."""
    raw.subscribe(topics.status(site_id))
    assert wait_until(lambda: any(m.payload == b"online" for m in raw.on(topics.status(site_id))))


def test_gateway_drops_duplicate_and_out_of_order_seq_per_charger(
    broker: BrokerUnderTest, make_gateway: MakeGateway, raw_clients: MakeRaw, prefix: str
) -> None:
    topics = Topics(prefix)
    got: list[Setpoint] = []
    gateway = make_gateway(broker.url, "s1", got.append)
    raw = raw_clients(broker.url)
    _gateway_listening(raw, topics, "s1")

    for sp in [
        setpoint("c1", seq=5),
        setpoint("c1", seq=5),  # a re-send
        setpoint("c1", seq=4),  # overtaken
        setpoint("c2", seq=1),  # another charger counts its own
        setpoint("c1", seq=6),
    ]:
        raw.publish(topics.setpoint("s1", sp.charger_id), encode_setpoint(sp))

    assert wait_until(lambda: gateway.received == 5)
    assert [(sp.charger_id, sp.seq) for sp in got] == [("c1", 5), ("c2", 1), ("c1", 6)]
    assert gateway.duplicates == 2
    current = gateway.current_setpoint("c1")
    assert current is not None
    assert current.seq == 6


def test_gateway_drops_a_setpoint_that_arrives_expired(
    broker: BrokerUnderTest, make_gateway: MakeGateway, raw_clients: MakeRaw, prefix: str
) -> None:
    topics = Topics(prefix)
    got: list[Setpoint] = []
    gateway = make_gateway(broker.url, "s1", got.append)
    raw = raw_clients(broker.url)
    _gateway_listening(raw, topics, "s1")

    stale = setpoint("c1", seq=1, issued_ago_s=120, valid_s=-60)
    raw.publish(topics.setpoint("s1", "c1"), encode_setpoint(stale))

    assert wait_until(lambda: gateway.expired == 1)
    assert got == []
    assert gateway.current_setpoint("c1") is None  # the charger falls back to its safe power


def test_gateway_rejects_a_bad_setpoint_with_a_reason(
    broker: BrokerUnderTest, make_gateway: MakeGateway, raw_clients: MakeRaw, prefix: str
) -> None:
    topics = Topics(prefix)
    rejects: list[tuple[str, str]] = []
    gateway = make_gateway(broker.url, "s1", on_reject=lambda t, r: rejects.append((t, r)))
    raw = raw_clients(broker.url)
    _gateway_listening(raw, topics, "s1")

    raw.publish(topics.setpoint("s1", "c1"), b'{"power_kw": 3, "seq": "x"}')

    assert wait_until(lambda: len(rejects) == 1)
    assert rejects == [(topics.setpoint("s1", "c1"), "seq: expected an integer")]
    assert (gateway.rejected, gateway.accepted) == (1, 0)


def test_last_will_offline_reaches_the_aggregator_when_a_gateway_dies(
    broker: BrokerUnderTest,
    make_connector: MakeConnector,
    make_gateway: MakeGateway,
    raw_clients: MakeRaw,
    prefix: str,
) -> None:
    _, handler = make_connector(broker.url)
    gateway = make_gateway(broker.url, "s7")
    assert wait_until(lambda: handler.online("s7") is True)

    gateway.abort()  # the socket closes without DISCONNECT, as if the gateway crashed

    assert wait_until(lambda: handler.online("s7") is False)
    # Retained: whoever subscribes later learns the site is offline.
    late = raw_clients(broker.url)
    late.subscribe(Topics(prefix).status("s7"))
    assert wait_until(lambda: bool(late.on(Topics(prefix).status("s7"))))
    assert late.on(Topics(prefix).status("s7"))[-1].payload == b"offline"


def test_gateway_telemetry_needs_its_own_site_and_a_connection(
    make_settings: Callable[..., MqttSettings],
) -> None:
    gateway = GatewayClient(make_settings("mqtt://127.0.0.1:1"), "s1", lambda sp: None)
    assert not gateway.publish_telemetry(telemetry("c1"))  # not connected: dropped, not queued
    assert gateway.telemetry_dropped == 1
    with pytest.raises(ValueError, match="s2"):
        gateway.publish_telemetry(telemetry("c1", site_id="s2"))
