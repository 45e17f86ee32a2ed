"""The MQTT topic and payload contract, wire <-> domain. Pure: no sockets here.

Topics (``{prefix}`` is configurable, default ``aggregator``):

- ``{prefix}/sites/{site_id}/chargers/{charger_id}/setpoint``, aggregator -> site, QoS 1:
  ``{"power_kw", "valid_until", "issued_at", "seq", "plan_id"}``
- ``{prefix}/sites/{site_id}/chargers/{charger_id}/telemetry``, site -> aggregator:
  ``{"ts", "power_kw", "plugged", "vehicle_id", "soc", "status"}`` (``soc``/``vehicle_id`` may
  be null)
- ``{prefix}/sites/{site_id}/status``, site -> aggregator, retained: ``online`` or ``offline``
  (the gateway's Last Will is ``offline``)

Times are ISO-8601 UTC; power is signed (positive = charging, negative = V2G discharge).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aggregator.domain import DomainError, Setpoint, SiteStatus, Telemetry

TopicKind = Literal["setpoint", "telemetry", "status"]
DEFAULT_PREFIX = "aggregator"


class WireError(ValueError):
    """A message that does not follow the contract; the text says why, in one line."""


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str = DEFAULT_PREFIX

    def setpoint(self, site_id: str, charger_id: str) -> str:
        return f"{self.prefix}/sites/{site_id}/chargers/{charger_id}/setpoint"

    def telemetry(self, site_id: str, charger_id: str) -> str:
        return f"{self.prefix}/sites/{site_id}/chargers/{charger_id}/telemetry"

    def status(self, site_id: str) -> str:
        return f"{self.prefix}/sites/{site_id}/status"

    @property
    def all_telemetry(self) -> str:
        return f"{self.prefix}/sites/+/chargers/+/telemetry"

    @property
    def all_status(self) -> str:
        return f"{self.prefix}/sites/+/status"

    def site_setpoints(self, site_id: str) -> str:
        return f"{self.prefix}/sites/{site_id}/chargers/+/setpoint"

    def parse(self, topic: str) -> tuple[TopicKind, str, str | None]:
        """(kind, site_id, charger_id or None) of a topic of this contract; WireError if not."""
        parts = topic.split("/")
        head = self.prefix.split("/")
        rest = parts[len(head) :]
        if parts[: len(head)] != head or not rest or rest[0] != "sites":
            raise WireError(f"topic {topic!r} is outside prefix {self.prefix!r}")
        if len(rest) == 3 and rest[2] == "status" and rest[1]:
            return "status", rest[1], None
        is_charger_topic = len(rest) == 5 and rest[2] == "chargers" and rest[1] and rest[3]
        if is_charger_topic and rest[4] in ("setpoint", "telemetry"):
            kind: TopicKind = "setpoint" if rest[4] == "setpoint" else "telemetry"
            return kind, rest[1], rest[3]
        raise WireError(f"topic {topic!r} is not a setpoint, telemetry or status topic")


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise WireError(f"{field}: expected an ISO-8601 string, got {type(value).__name__}")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise WireError(f"{field}: not an ISO-8601 time: {value!r}") from exc
    if when.tzinfo is None:
        raise WireError(f"{field}: time has no UTC offset: {value!r}")
    return when.astimezone(UTC)


def _object(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"payload is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise WireError("payload is not a JSON object")
    return data


def _number(data: dict[str, Any], field: str, *, optional: bool = False) -> float | None:
    value = data.get(field)
    if value is None:
        if optional:
            return None
        raise WireError(f"{field}: missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WireError(f"{field}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise WireError(f"{field}: must be finite")
    return float(value)


def encode_setpoint(sp: Setpoint) -> bytes:
    return json.dumps(
        {
            "power_kw": round(sp.power_kw, 4),
            "valid_until": format_time(sp.valid_until),
            "issued_at": format_time(sp.issued_at),
            "seq": sp.seq,
            "plan_id": sp.plan_id,
        },
        separators=(",", ":"),
    ).encode()


def decode_setpoint(topics: Topics, topic: str, payload: bytes) -> Setpoint:
    kind, site_id, charger_id = topics.parse(topic)
    if kind != "setpoint" or charger_id is None:
        raise WireError(f"topic {topic!r} is not a setpoint topic")
    data = _object(payload)
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise WireError("seq: expected an integer")
    plan_id = data.get("plan_id")
    if not isinstance(plan_id, str):
        raise WireError("plan_id: expected a string")
    power = _number(data, "power_kw")
    assert power is not None
    try:
        return Setpoint(
            charger_id=charger_id,
            site_id=site_id,
            power_kw=power,
            issued_at=parse_time(data.get("issued_at"), "issued_at"),
            valid_until=parse_time(data.get("valid_until"), "valid_until"),
            plan_id=plan_id,
            seq=seq,
        )
    except DomainError as exc:
        raise WireError(str(exc)) from exc


def encode_telemetry(t: Telemetry) -> bytes:
    return json.dumps(
        {
            "ts": format_time(t.ts),
            "power_kw": round(t.power_kw, 4),
            "plugged": t.plugged,
            "vehicle_id": t.vehicle_id,
            "soc": None if t.soc is None else round(t.soc, 6),
            "status": t.status,
        },
        separators=(",", ":"),
    ).encode()


def decode_telemetry(topics: Topics, topic: str, payload: bytes) -> Telemetry:
    kind, site_id, charger_id = topics.parse(topic)
    if kind != "telemetry" or charger_id is None:
        raise WireError(f"topic {topic!r} is not a telemetry topic")
    data = _object(payload)
    plugged = data.get("plugged")
    if not isinstance(plugged, bool):
        raise WireError("plugged: expected true or false")
    vehicle_id = data.get("vehicle_id")
    if vehicle_id is not None and not isinstance(vehicle_id, str):
        raise WireError("vehicle_id: expected a string or null")
    status = data.get("status", "ok")
    if not isinstance(status, str):
        raise WireError("status: expected a string")
    power = _number(data, "power_kw")
    assert power is not None
    try:
        return Telemetry(
            site_id=site_id,
            charger_id=charger_id,
            ts=parse_time(data.get("ts"), "ts"),
            power_kw=power,
            plugged=plugged,
            vehicle_id=vehicle_id or None,
            soc=_number(data, "soc", optional=True),
            status=status,
        )
    except DomainError as exc:
        raise WireError(str(exc)) from exc


def encode_status(online: bool) -> bytes:
    return b"online" if online else b"offline"


def decode_status(topics: Topics, topic: str, payload: bytes, received_at: datetime) -> SiteStatus:
    kind, site_id, _ = topics.parse(topic)
    if kind != "status":
        raise WireError(f"topic {topic!r} is not a status topic")
    text = payload.decode(errors="replace").strip().lower()
    if text not in ("online", "offline"):
        raise WireError(f"status: expected 'online' or 'offline', got {text[:20]!r}")
    return SiteStatus(site_id=site_id, online=text == "online", ts=received_at)
