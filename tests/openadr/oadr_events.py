"""Event dicts exactly as the VEN sees them: built with openleadr's objects, rendered to an
oadrDistributeEvent XML and parsed back with openleadr's own ``parse_message``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from openleadr import objects
from openleadr.messaging import create_message, parse_message

T0 = datetime(2030, 1, 1, 12, tzinfo=UTC)
STEP = timedelta(minutes=15)
PEAK = "http://vtn.example/programs/peak"

MW = objects.Measurement(
    name="powerReal",
    description="RealPower",
    unit="W",
    scale="M",
    power_attributes=objects.PowerAttributes(),
)
PER_KWH = objects.Measurement(
    name="currencyPerKWh", description="currencyPerKWh", unit="EUR", scale="none"
)


def signal(
    name: str,
    signal_type: str,
    payloads: list[float],
    *,
    signal_id: str = "sig",
    measurement: objects.Measurement | None = None,
) -> objects.EventSignal:
    intervals = [
        objects.Interval(dtstart=T0 + i * STEP, duration=STEP, signal_payload=p)
        for i, p in enumerate(payloads)
    ]
    return objects.EventSignal(
        intervals=intervals,
        signal_name=name,
        signal_type=signal_type,
        signal_id=signal_id,
        measurement=measurement,
    )


def oadr_event(
    *signals: objects.EventSignal,
    event_id: str = "ev-1",
    modification_number: int = 0,
    market_context: str = PEAK,
    status: str = "far",
    targets: list[objects.Target] | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
    edit_xml: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """One event after a real XML round trip; ``edit`` changes the dict before rendering,
    ``edit_xml`` the XML before parsing (to produce what openleadr's builders refuse)."""
    event = objects.Event(
        event_descriptor=objects.EventDescriptor(
            event_id=event_id,
            modification_number=modification_number,
            market_context=market_context,
            event_status=status,
        ),
        event_signals=list(signals),
        targets=targets if targets is not None else [objects.Target(ven_id="ven-1")],
    )
    data = asdict(event)
    data["event_descriptor"]["event_status"] = status  # objects.Event derives it from now
    if edit is not None:
        edit(data)
    xml = create_message("oadrDistributeEvent", request_id="r1", vtn_id="vtn", events=[data])
    if edit_xml is not None:
        xml = edit_xml(xml)
    message_type, payload = parse_message(xml)
    assert message_type == "oadrDistributeEvent"
    (parsed,) = payload["events"]
    assert isinstance(parsed, dict)
    return parsed
