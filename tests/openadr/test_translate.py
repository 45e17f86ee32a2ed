"""oadr event dicts (through openleadr's real XML round trip) -> DrEvent, and every reject."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from openleadr import objects

from aggregator.domain import DrEvent
from connectors.openadr.mapping import OpenAdrMapping
from connectors.openadr.translate import OpenAdrTranslateError, dr_event_summary, event_from_oadr
from tests.openadr.oadr_events import MW, PEAK, PER_KWH, STEP, T0, oadr_event, signal

RTP = "http://vtn.example/programs/rtp"
MAPPING = OpenAdrMapping.from_config(
    {
        "programs": {
            "peak": {
                "market_context": PEAK,
                "simple_levels": {1: {"shed_kw": 50}, 2: {"shed_kw": 100}, 3: {"cap_kw": 0}},
            },
            "rtp": {"market_context": RTP, "price_mode": "add", "price_unit": "per_kwh"},
        },
        "resources": {"north": ["site-a", "site-b"], "42": ["site-c"]},
        "groups": {"depot": ["site-d"]},
    }
)


def translate(*signals: objects.EventSignal, **kwargs: Any) -> DrEvent:
    return event_from_oadr(oadr_event(*signals, **kwargs), MAPPING)


def rejected(event: dict[str, Any], mapping: OpenAdrMapping = MAPPING) -> str:
    with pytest.raises(OpenAdrTranslateError) as info:
        event_from_oadr(event, mapping)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- signals -------------------------------------------------------------------------------


def test_simple_levels_map_through_the_program_and_level_zero_means_no_limit() -> None:
    ev = translate(signal("SIMPLE", "level", [1, 0, 2, 3]))
    assert ev.program == "peak"
    assert [(g.event_id, g.shed_kw, g.cap_kw) for g in ev.limits] == [
        ("ev-1/0", 50.0, None),
        ("ev-1/2", 100.0, None),
        ("ev-1/3", None, 0.0),
    ]
    assert (ev.limits[0].start, ev.limits[0].end) == (T0, T0 + STEP)
    assert ev.limits[2].start == T0 + 3 * STEP
    assert (ev.start, ev.end) == (T0, T0 + 4 * STEP)
    assert ev.unsupported == () and ev.prices == ()


def test_simple_uses_the_default_program_for_an_unlisted_market_context() -> None:
    mapping = OpenAdrMapping.from_config({"programs": {"*": {"simple_levels": {1: {"cap_kw": 5}}}}})
    ev = event_from_oadr(oadr_event(signal("SIMPLE", "level", [1])), mapping)
    assert ev.program == "*"
    assert ev.limits[0].cap_kw == 5.0


def test_load_dispatch_setpoint_is_a_cap_converted_from_megawatts() -> None:
    ev = translate(signal("LOAD_DISPATCH", "setpoint", [2.5, 0.4], measurement=MW))
    assert [(g.event_id, g.cap_kw) for g in ev.limits] == [("ev-1/0", 2500.0), ("ev-1/1", 400.0)]


def test_load_dispatch_without_item_base_is_in_kilowatts() -> None:
    ev = translate(signal("LOAD_DISPATCH", "setpoint", [120]))
    assert ev.limits[0].cap_kw == 120.0


def test_load_dispatch_in_watts_with_kilo_scale() -> None:
    kw = objects.Measurement(
        name="powerReal", description="RealPower", unit="W", scale="k",
        power_attributes=objects.PowerAttributes(),
    )  # fmt: skip
    ev = translate(signal("LOAD_DISPATCH", "setpoint", [75], measurement=kw))
    assert ev.limits[0].cap_kw == 75.0


def test_load_dispatch_delta_is_a_shed_of_its_magnitude() -> None:
    ev = translate(signal("LOAD_DISPATCH", "delta", [-0.2, 0.1], measurement=MW))
    assert [g.shed_kw for g in ev.limits] == [200.0, 100.0]
    assert all(g.cap_kw is None for g in ev.limits)


def test_item_base_after_a_signal_without_one_is_still_read() -> None:
    # openleadr's normaliser stops at the first signal without an item base and leaves later
    # ones in the raw {"powerReal": {"item_units", "si_scale_code"}} shape.
    event = oadr_event(
        signal("SIMPLE", "level", [1], signal_id="simple"),
        signal("LOAD_DISPATCH", "setpoint", [1.5], signal_id="dispatch", measurement=MW),
    )
    assert "powerReal" in event["event_signals"][1]
    ev = event_from_oadr(event, MAPPING)
    assert [(g.event_id, g.shed_kw, g.cap_kw) for g in ev.limits] == [
        ("ev-1/simple/0", 50.0, None),
        ("ev-1/dispatch/0", None, 1500.0),
    ]


def test_load_dispatch_in_energy_units_is_unsupported() -> None:
    wh = objects.Measurement(name="energyReal", description="RealEnergy", unit="Wh", scale="none")
    ev = translate(signal("LOAD_DISPATCH", "setpoint", [5], measurement=wh))
    assert ev.limits == ()
    assert ev.unsupported == ("LOAD_DISPATCH setpoint: item base energyReal is not a real power",)


def test_load_dispatch_other_types_are_unsupported() -> None:
    ev = translate(signal("LOAD_DISPATCH", "level", [1]))
    assert ev.unsupported == ("LOAD_DISPATCH level: only setpoint and delta are supported",)


@pytest.mark.parametrize(
    ("signal_type", "reason"),
    [
        ("x-loadControlCapacity", "capacity"),
        ("x-loadControlLevelOffset", "operating levels"),
        ("x-loadControlPercentOffset", "baseline"),
        ("x-loadControlSetpoint", "temperature"),
    ],
)
def test_load_control_is_unsupported_with_a_reason(signal_type: str, reason: str) -> None:
    ev = translate(signal("LOAD_CONTROL", signal_type, [0.5]))
    assert ev.limits == ()
    (text,) = ev.unsupported
    assert text.startswith(f"LOAD_CONTROL {signal_type}: not supported")
    assert reason in text


def test_price_per_kwh_becomes_per_mwh_and_replaces_by_default() -> None:
    ev = translate(signal("ELECTRICITY_PRICE", "price", [0.25, 0.3], measurement=PER_KWH))
    assert [(p.start, p.end, p.price_per_mwh, p.mode) for p in ev.prices] == [
        (T0, T0 + STEP, 250.0, "replace"),
        (T0 + STEP, T0 + 2 * STEP, 300.0, "replace"),
    ]
    assert ev.limits == () and ev.unsupported == ()


def test_price_mode_and_default_unit_come_from_the_program() -> None:
    ev = translate(signal("ENERGY_PRICE", "price", [0.1]), market_context=RTP)
    assert [(p.price_per_mwh, p.mode) for p in ev.prices] == [(100.0, "add")]


def test_price_without_item_base_or_program_is_per_mwh() -> None:
    ev = translate(signal("ENERGY_PRICE", "price", [80]), market_context="urn:unknown")
    assert [(p.price_per_mwh, p.mode) for p in ev.prices] == [(80.0, "replace")]
    assert ev.program == "urn:unknown"


def test_relative_price_is_added_and_multiplier_is_unsupported() -> None:
    ev = translate(
        signal("ELECTRICITY_PRICE", "priceRelative", [-20], signal_id="rel"),
        signal("ELECTRICITY_PRICE", "priceMultiplier", [1.5], signal_id="mul"),
    )
    assert [(p.price_per_mwh, p.mode) for p in ev.prices] == [(-20.0, "add")]
    assert ev.unsupported == (
        "ELECTRICITY_PRICE priceMultiplier: not supported (only price and priceRelative)",
    )


def test_price_in_a_non_energy_unit_is_unsupported() -> None:
    therm = objects.Measurement(name="currency", description="currency", unit="EUR", scale="none")
    ev = translate(signal("ELECTRICITY_PRICE", "price", [3], measurement=therm))
    assert ev.prices == ()
    assert ev.unsupported == ("ELECTRICITY_PRICE price: item base currency is not an energy price",)


def test_unknown_signals_are_named_never_dropped() -> None:
    ev = translate(
        signal("SIMPLE", "level", [1], signal_id="a"),
        signal("BID_LOAD", "setpoint", [10], signal_id="b"),
        signal("x-fleetBoost", "level", [1], signal_id="c"),
    )
    assert len(ev.limits) == 1
    assert ev.unsupported == ("BID_LOAD: not supported", "x-fleetBoost: not supported")


# --- targets, intervals, descriptor ---------------------------------------------------------


@pytest.mark.parametrize(
    ("targets", "sites"),
    [
        ([objects.Target(ven_id="ven-1")], frozenset()),
        ([objects.Target(party_id="party-1")], frozenset()),
        ([objects.Target(resource_id="north")], {"site-a", "site-b"}),
        ([objects.Target(group_id="depot")], {"site-d"}),
        (
            [objects.Target(ven_id="ven-1"), objects.Target(resource_id="north")],
            {"site-a", "site-b"},
        ),
        (
            [objects.Target(resource_id="42"), objects.Target(group_id="depot")],
            {"site-c", "site-d"},
        ),
    ],
)
def test_targets_map_to_sites(targets: list[objects.Target], sites: set[str]) -> None:
    ev = translate(signal("SIMPLE", "level", [1]), targets=targets)
    assert ev.site_ids == sites
    assert ev.limits[0].site_ids == sites


def test_no_targets_means_every_site() -> None:
    event = oadr_event(signal("SIMPLE", "level", [1]))
    del event["targets"], event["targets_by_type"]
    assert event_from_oadr(event, MAPPING).site_ids == frozenset()


def test_unmapped_resource_is_rejected() -> None:
    event = oadr_event(signal("SIMPLE", "level", [1]), targets=[objects.Target(resource_id="x")])
    assert rejected(event) == "targets.resource_id: 'x' is not mapped to any site"


def test_intervals_without_dtstart_follow_on_from_the_active_period_start() -> None:
    def drop_dtstart(data: dict[str, Any]) -> None:
        for interval in data["event_signals"][0]["intervals"]:
            del interval["dtstart"]

    ev = translate(signal("LOAD_DISPATCH", "setpoint", [10, 20, 30]), edit=drop_dtstart)
    assert [(g.start, g.end, g.cap_kw) for g in ev.limits] == [
        (T0, T0 + STEP, 10.0),
        (T0 + STEP, T0 + 2 * STEP, 20.0),
        (T0 + 2 * STEP, T0 + 3 * STEP, 30.0),
    ]


def test_modification_number_status_and_numeric_ids() -> None:
    ev = translate(
        signal("SIMPLE", "level", [2]), event_id="1234", modification_number=3, status="ACTIVE"
    )
    assert (ev.event_id, ev.modification_number, ev.status) == ("1234", 3, "active")
    assert ev.limits[0].event_id == "1234/0"


def test_cancelled_event_keeps_its_contents() -> None:
    ev = translate(signal("SIMPLE", "level", [1]), status="cancelled", modification_number=1)
    assert ev.status == "cancelled" and len(ev.limits) == 1


def test_summary_is_one_line() -> None:
    ev = translate(signal("SIMPLE", "level", [1]), signal("BID_LOAD", "setpoint", [1]))
    text = dr_event_summary(ev)
    assert "\n" not in text
    assert text.startswith("event ev-1 #0 far 2030-01-01T12:00Z..2030-01-01T12:15Z program=peak")
    assert "sites=all limits=1 prices=0 unsupported=[BID_LOAD: not supported]" in text


# --- bad input ------------------------------------------------------------------------------


def good() -> dict[str, Any]:
    return oadr_event(signal("SIMPLE", "level", [1, 2]))


def test_missing_event_id_is_rejected() -> None:
    event = good()
    del event["event_descriptor"]["event_id"]
    assert rejected(event).startswith("event_descriptor.event_id: missing")


def test_missing_active_period_is_rejected() -> None:
    event = good()
    del event["active_period"]
    assert rejected(event) == "active_period: missing"


@pytest.mark.parametrize("intervals", [None, []])
def test_missing_intervals_are_rejected(intervals: Any) -> None:
    event = good()
    event["event_signals"][0]["intervals"] = intervals
    assert rejected(event) == "event_signals[0].intervals: missing or empty"


def test_missing_signals_are_rejected() -> None:
    event = good()
    del event["event_signals"]
    assert rejected(event) == "event_signals: missing or empty"


def test_negative_interval_duration_from_the_wire_is_rejected() -> None:
    event = oadr_event(
        signal("SIMPLE", "level", [1]),
        edit_xml=lambda xml: xml.replace(
            "<xcal:duration>PT15M</xcal:duration>", "<xcal:duration>-PT15M</xcal:duration>"
        ),
    )
    message = rejected(event)
    assert message.startswith("event_signals[0].intervals[0].duration: must be positive")


def test_zero_active_period_duration_is_rejected() -> None:
    event = good()
    event["active_period"]["duration"] = timedelta(0)
    assert rejected(event).startswith("active_period.duration: must be positive")


def test_interval_outside_the_active_period_is_rejected() -> None:
    event = good()
    event["event_signals"][0]["intervals"][1]["dtstart"] = T0 + 2 * STEP
    assert "lies outside the active period" in rejected(event)


def test_overlapping_intervals_are_rejected() -> None:
    event = good()
    event["event_signals"][0]["intervals"][1]["dtstart"] = T0
    event["event_signals"][0]["intervals"][1]["duration"] = 2 * STEP
    assert rejected(event) == "event_signals[0].intervals: uid 0 and 1 overlap"


def test_duplicate_uid_is_rejected() -> None:
    event = good()
    event["event_signals"][0]["intervals"][1]["uid"] = 0
    assert rejected(event) == "event_signals[0].intervals[1].uid: duplicate uid '0'"


def test_timezone_less_time_from_the_wire_is_rejected() -> None:
    # Without the trailing Z openleadr leaves the time as a string.
    event = oadr_event(
        signal("SIMPLE", "level", [1]),
        edit_xml=lambda xml: xml.replace("2030-01-01T12:00:00.000000Z", "2030-01-01T12:00:00"),
    )
    assert rejected(event).startswith("active_period.dtstart: time has no UTC offset")


def test_naive_datetime_is_rejected() -> None:
    event = good()
    event["event_signals"][0]["intervals"][0]["dtstart"] = datetime(2030, 1, 1, 12)
    assert rejected(event).startswith("event_signals[0].intervals[0].dtstart: time has no UTC")


def test_time_with_an_offset_is_converted_to_utc() -> None:
    event = oadr_event(
        signal("SIMPLE", "level", [1]),
        edit_xml=lambda xml: xml.replace(
            "2030-01-01T12:00:00.000000Z", "2030-01-01T13:00:00+01:00"
        ),
    )
    ev = event_from_oadr(event, MAPPING)
    assert ev.start == T0 and ev.start.tzinfo is not None


@pytest.mark.parametrize(
    "payload", ["high", {"payload_float": {"value": None}}, True, float("nan")]
)
def test_non_numeric_payload_is_rejected(payload: Any) -> None:
    event = good()
    event["event_signals"][0]["intervals"][0]["signal_payload"] = payload
    assert rejected(event).startswith("event_signals[0].intervals[0].signal_payload:")


def test_empty_payload_from_the_wire_is_rejected() -> None:
    # openleadr's parser itself raises on a non-numeric value ("seven"); an empty one passes.
    event = oadr_event(
        signal("LOAD_DISPATCH", "setpoint", [7]),
        edit_xml=lambda xml: xml.replace("<ei:value>7</ei:value>", "<ei:value></ei:value>"),
    )
    assert rejected(event).startswith("event_signals[0].intervals[0].signal_payload: expected a")


def test_simple_level_not_configured_for_the_program_is_rejected() -> None:
    mapping = OpenAdrMapping.from_config(
        {"programs": {"peak": {"market_context": PEAK, "simple_levels": {1: {"shed_kw": 10}}}}}
    )
    message = rejected(good(), mapping)
    assert message == (
        "event_signals[0].intervals[uid=1].signal_payload: "
        "SIMPLE level 2 is not configured for program peak"
    )


def test_simple_level_out_of_range_is_rejected() -> None:
    event = good()
    event["event_signals"][0]["intervals"][0]["signal_payload"] = 4.0
    assert "SIMPLE level must be 0, 1, 2 or 3" in rejected(event)


def test_simple_for_an_unknown_program_is_rejected() -> None:
    event = oadr_event(signal("SIMPLE", "level", [1]), market_context="urn:other")
    assert rejected(event) == (
        "event_descriptor.market_context: no SIMPLE levels configured for program urn:other"
    )


def test_simple_with_only_level_zero_needs_no_program() -> None:
    event = oadr_event(signal("SIMPLE", "level", [0]), market_context="urn:other")
    assert event_from_oadr(event, MAPPING).limits == ()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("modification_number", -1, "event_descriptor.modification_number: expected an integer"),
        ("modification_number", None, "event_descriptor.modification_number: expected an integer"),
        ("event_status", "pending", "event_descriptor.event_status: unknown status 'pending'"),
    ],
)
def test_bad_descriptor_fields_are_rejected(field: str, value: Any, expected: str) -> None:
    event = good()
    event["event_descriptor"][field] = value
    assert rejected(event).startswith(expected)


def test_limit_signals_sharing_a_signal_id_are_rejected() -> None:
    event = oadr_event(
        signal("SIMPLE", "level", [1], signal_id="same"),
        signal("LOAD_DISPATCH", "setpoint", [1], signal_id="same"),
    )
    assert rejected(event) == "event_signals.signal_id: limit signals share a signal_id"
