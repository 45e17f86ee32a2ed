"""The wire contract, without sockets: round trips, rejects with reasons, settings parsing."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime

import pytest

from connectors.mqtt.settings import MqttSettings, parse_url, tls_context
from connectors.mqtt.translate import (
    Topics,
    WireError,
    decode_setpoint,
    decode_status,
    decode_telemetry,
    encode_setpoint,
    encode_status,
    encode_telemetry,
)
from tests.mqtt.mqtt_helpers import setpoint, telemetry

TOPICS = Topics("fleet/eu")
TELEMETRY_TOPIC = TOPICS.telemetry("s1", "c1")
GOOD_TELEMETRY = {
    "ts": "2025-06-01T12:00:00Z",
    "power_kw": 7.2,
    "plugged": True,
    "vehicle_id": "ev-1",
    "soc": 0.4,
    "status": "ok",
}


def test_setpoint_round_trip_keeps_every_field() -> None:
    sp = setpoint("c1", site_id="s1", seq=42, power_kw=-11.0)
    assert decode_setpoint(TOPICS, TOPICS.setpoint("s1", "c1"), encode_setpoint(sp)) == sp


def test_setpoint_payload_is_the_documented_json() -> None:
    sp = setpoint(seq=3, power_kw=7.5)
    data = json.loads(encode_setpoint(sp))
    assert set(data) == {"power_kw", "valid_until", "issued_at", "seq", "plan_id"}
    assert data["valid_until"].endswith("Z")
    assert (data["power_kw"], data["seq"], data["plan_id"]) == (7.5, 3, "plan-1")


@pytest.mark.parametrize("soc", [0.5, None])
def test_telemetry_round_trip_keeps_every_field(soc: float | None) -> None:
    t = telemetry(soc=soc)
    assert decode_telemetry(TOPICS, TELEMETRY_TOPIC, encode_telemetry(t)) == t


@pytest.mark.parametrize("online", [True, False])
def test_status_round_trip(online: bool) -> None:
    at = datetime(2025, 6, 1, tzinfo=UTC)
    status = decode_status(TOPICS, TOPICS.status("s9"), encode_status(online), at)
    assert (status.site_id, status.online, status.ts) == ("s9", online, at)


_MISSING = object()


def _with(**changes: object) -> bytes:
    """The good telemetry payload with fields changed, or dropped where given _MISSING."""
    data = {**GOOD_TELEMETRY, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not _MISSING}).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "payload is not JSON"),
        (b"[1, 2]", "payload is not a JSON object"),
        (b"\xff\xfe", "payload is not JSON"),
        (_with(power_kw=_MISSING), "power_kw: missing"),
        (_with(ts=_MISSING), "ts: expected an ISO-8601 string"),
        (_with(plugged=_MISSING), "plugged: expected true or false"),
        (_with(plugged="yes"), "plugged: expected true or false"),
        (_with(plugged=1), "plugged: expected true or false"),
        (_with(soc=-0.1), "soc"),
        (_with(soc=1.5), "soc"),
        (_with(power_kw="7"), "power_kw: expected a number"),
        (_with(ts="2025-06-01T12:00:00"), "ts: time has no UTC offset"),
    ],
)
def test_bad_telemetry_is_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        decode_telemetry(TOPICS, TELEMETRY_TOPIC, payload)


@pytest.mark.parametrize(
    "topic",
    [
        "other/sites/s1/chargers/c1/telemetry",
        "fleet/eu/sites/s1/chargers/c1",
        "fleet/eu/sites//chargers/c1/telemetry",
        "fleet/eu/sites/s1/chargers/c1/telemetry/extra",
        "fleet/eu/sites/s1/status",
        "fleet/eu/sites/s1/chargers/c1/setpoint",
    ],
)
def test_telemetry_on_a_bad_topic_is_rejected(topic: str) -> None:
    with pytest.raises(WireError, match="topic"):
        decode_telemetry(TOPICS, topic, _with())


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"power_kw": 1, "seq": "3"}', "seq: expected an integer"),
        (b'{"power_kw": 1, "seq": true, "plan_id": "p"}', "seq: expected an integer"),
        (b'{"power_kw": 1, "seq": 3}', "plan_id: expected a string"),
        (
            b'{"power_kw": 1, "seq": 3, "plan_id": "p", "issued_at": "2025-06-01T12:00:00Z",'
            b' "valid_until": "2025-06-01T11:00:00Z"}',
            "valid_until",
        ),
    ],
)
def test_bad_setpoint_is_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        decode_setpoint(TOPICS, TOPICS.setpoint("s1", "c1"), payload)


def test_status_other_than_online_offline_is_rejected() -> None:
    with pytest.raises(WireError, match="expected 'online' or 'offline'"):
        decode_status(TOPICS, TOPICS.status("s1"), b"maybe", datetime.now(UTC))


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtt://broker.example:1884", "broker.example", 1884, False),
        ("mqtt://127.0.0.1", "127.0.0.1", 1883, False),
        ("mqtts://broker.example", "broker.example", 8883, True),
    ],
)
def test_broker_url_gives_host_port_and_tls(url: str, host: str, port: int, tls: bool) -> None:
    endpoint = parse_url(url)
    assert (endpoint.host, endpoint.port, endpoint.tls) == (host, port, tls)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "http://x:1"}, "url"),
        ({"url": "mqtt://:1883"}, "url"),
        ({"url": "mqtt://u:p@host"}, "url"),
        ({"url": "mqtt://h", "protocol": "4"}, "protocol"),
        ({"url": "mqtt://h", "prefix": "a/#"}, "prefix"),
        ({"url": "mqtt://h", "reconnect_min_s": 5, "reconnect_max_s": 1}, "reconnect_min_s"),
        ({"url": "mqtt://h", "tls_key": "k.pem"}, "tls_key"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        MqttSettings(**kwargs)  # type: ignore[arg-type]


def test_tls_context_only_for_mqtts_and_at_least_tls_1_2() -> None:
    assert tls_context(MqttSettings("mqtt://h")) is None
    context = tls_context(MqttSettings("mqtts://h"))
    assert context is not None
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.check_hostname
