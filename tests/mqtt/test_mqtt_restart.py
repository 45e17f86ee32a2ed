"""A broker restart: the connector reconnects, re-sends what is current, never what expired.

The broker is one the test owns and restarts on the same port: a Mosquitto process (if
``/usr/sbin/mosquitto`` exists) and the embedded amqtt broker restarted in-process. Both keep
no sessions across the restart, so every subscription and queued message is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.domain import Setpoint
from connectors.mqtt.broker import free_port
from connectors.mqtt.client import MqttConnector
from connectors.mqtt.gateway import GatewayClient
from tests.mqtt.mqtt_helpers import (
    MOSQUITTO_BIN,
    BackgroundLoop,
    OwnedEmbedded,
    OwnedMosquitto,
    RecordingHandler,
    setpoint,
    wait_until,
)

OwnedBroker = OwnedMosquitto | OwnedEmbedded


@pytest.fixture(params=["mosquitto-process", "amqtt-restart"])
def owned_broker(
    request: pytest.FixtureRequest, tmp_path: Path, background_loop: BackgroundLoop
) -> Iterator[OwnedBroker]:
    broker: OwnedBroker
    if request.param == "mosquitto-process":
        if not MOSQUITTO_BIN.exists():
            pytest.skip(f"{MOSQUITTO_BIN} not installed")
        broker = OwnedMosquitto(tmp_path, free_port())
    else:
        broker = OwnedEmbedded(background_loop, free_port())
    broker.start()
    yield broker
    broker.stop()


def _seqs(gateway: GatewayClient, *chargers: str) -> dict[str, int | None]:
    current = {c: gateway.current_setpoint(c) for c in chargers}
    return {c: (sp.seq if sp else None) for c, sp in current.items()}


def test_after_broker_restart_current_setpoints_are_resent_and_expired_ones_never(
    owned_broker: OwnedBroker,
    make_connector: Callable[..., tuple[MqttConnector, RecordingHandler]],
    make_gateway: Callable[..., GatewayClient],
) -> None:
    got: list[Setpoint] = []
    connector, handler = make_connector(owned_broker.url)
    gateway = make_gateway(owned_broker.url, "s1", got.append)
    assert wait_until(lambda: handler.online("s1") is True)
    connector.publish([setpoint("c1", seq=1), setpoint("c2", seq=2)])
    assert wait_until(lambda: len(got) == 2)

    owned_broker.stop()
    assert wait_until(lambda: not connector.connected and not gateway.connected)
    onlines_before = sum(s.online for s in handler.statuses)
    # While the broker is down: a new setpoint for c1, and one for c3 that expires unsent.
    short = setpoint("c3", seq=4, valid_s=0.3)
    connector.publish([setpoint("c1", seq=3, power_kw=2.0), short])
    published_while_down = connector.published
    time.sleep(max(0.0, (short.valid_until - datetime.now(UTC)).total_seconds()) + 0.05)

    owned_broker.start()

    assert wait_until(lambda: connector.connected and gateway.connected, timeout=10)
    assert connector.reconnects >= 1
    assert gateway.reconnects >= 1
    # The protocol settled on at first connect is kept: no new MQTT 5 probe against amqtt.
    assert connector.protocol == gateway.protocol == ("5" if owned_broker.supports_v5 else "3.1.1")
    # The connector answers the gateway's "online" by re-sending the site's setpoints, and only
    # then passes the status on: once the handler has it, that re-send is on the wire.
    assert wait_until(lambda: sum(s.online for s in handler.statuses) > onlines_before)
    # A barrier on the same connection: when it arrives, anything sent before it has too.
    connector.publish([setpoint("c9", seq=5)])
    assert wait_until(lambda: any(sp.charger_id == "c9" for sp in got))

    assert _seqs(gateway, "c1", "c2", "c3") == {"c1": 3, "c2": 2, "c3": None}
    assert [sp.seq for sp in got] == [1, 2, 3, 5]
    assert gateway.expired == 0  # the expired c3 setpoint never reached the wire
    assert connector.published > published_while_down
    assert {sp.charger_id for sp in connector.current_setpoints()} == {"c1", "c2", "c9"}
