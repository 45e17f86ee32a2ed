"""oadr event dicts (as openleadr delivers them) -> domain ``DrEvent``. Pure: no I/O here.

The signal mapping is documented as a table in ``docs/openadr.md`` ("Event mapping"). A
malformed event raises ``OpenAdrTranslateError`` with a one-line reason naming the field; a
well-formed signal we cannot honour is named in ``DrEvent.unsupported`` (the VEN opts out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, get_args

from aggregator.domain import DomainError, DrEvent, DrStatus, GridEvent, PriceSignal
from connectors.openadr.mapping import LevelAction, OpenAdrMapping, ProgramMapping
from connectors.openadr.units import item_base, kw_factor, price_factor


class OpenAdrTranslateError(ValueError):
    """An event we cannot interpret at all; the text says which field and why, in one line."""


@dataclass(frozen=True, slots=True)
class _Interval:
    uid: str
    start: datetime
    end: datetime
    value: float


@dataclass(frozen=True, slots=True)
class _Signal:
    index: int
    name: str
    type: str
    signal_id: str
    intervals: tuple[_Interval, ...]
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Context:
    program: ProgramMapping | None
    market_context: str | None
    site_ids: frozenset[str]


_STATUSES: frozenset[str] = frozenset(get_args(DrStatus))
_LIMIT_SIGNALS = {("SIMPLE", None), ("LOAD_DISPATCH", "setpoint"), ("LOAD_DISPATCH", "delta")}
_PRICE_SIGNALS = ("ELECTRICITY_PRICE", "ENERGY_PRICE")
_LOAD_CONTROL_REASON = {
    "x-loadControlCapacity": "a fraction of the sites' capacity, which the event does not carry",
    "x-loadControlLevelOffset": "device operating levels, which EV charging does not have",
    "x-loadControlPercentOffset": "a percentage of a baseline the event does not carry",
    "x-loadControlSetpoint": "a device setpoint (e.g. a temperature), not a power",
}


def event_from_oadr(event: dict[str, Any], mapping: OpenAdrMapping) -> DrEvent:
    """Translate one event of an ``oadrDistributeEvent`` (openleadr's dict) for the planner.

    Each interval of a limit signal becomes a ``GridEvent`` ``{event_id}/{uid}`` (with the
    signal id inserted, ``{event_id}/{signal_id}/{uid}``, when the event has several limit
    signals); each price interval a ``PriceSignal``. Raises ``OpenAdrTranslateError``.
    """
    if not isinstance(event, dict):
        raise OpenAdrTranslateError(f"event: expected a mapping, got {type(event).__name__}")
    descriptor = _dict(event.get("event_descriptor"), "event_descriptor")
    event_id = _ident(descriptor.get("event_id"), "event_descriptor.event_id")
    period = _dict(event.get("active_period"), "active_period")
    start = _time(period.get("dtstart"), "active_period.dtstart")
    end = start + _duration(period.get("duration"), "active_period.duration")
    market_context = descriptor.get("market_context")
    if market_context is not None and not isinstance(market_context, str):
        market_context = str(market_context)
    program = mapping.program_for(market_context)
    signals = _signals(event.get("event_signals"), start, end)
    n_limit_signals = sum(1 for s in signals if _limit_key(s) in _LIMIT_SIGNALS)
    limits: list[GridEvent] = []
    prices: list[PriceSignal] = []
    unsupported: list[str] = []
    context = _Context(program, market_context, _site_ids(event, mapping))
    for signal in signals:
        prefix = event_id if n_limit_signals < 2 else f"{event_id}/{signal.signal_id}"
        reason = _translate_signal(signal, context, prefix, limits, prices)
        if reason is not None:
            unsupported.append(reason)
    ids = [limit.event_id for limit in limits]
    if len(set(ids)) != len(ids):
        raise OpenAdrTranslateError("event_signals.signal_id: limit signals share a signal_id")
    try:
        return DrEvent(
            event_id=event_id,
            modification_number=_modification_number(descriptor),
            status=_status(descriptor),
            start=start,
            end=end,
            site_ids=context.site_ids,
            limits=tuple(limits),
            prices=tuple(prices),
            unsupported=tuple(unsupported),
            program=program.name if program is not None else market_context,
        )
    except DomainError as exc:
        raise OpenAdrTranslateError(str(exc)) from exc


def dr_event_summary(ev: DrEvent) -> str:
    """One line for the logs: id, modification, status, period, program, sites and contents."""
    sites = ",".join(sorted(ev.site_ids)) or "all"
    span = f"{ev.start:%Y-%m-%dT%H:%MZ}..{ev.end:%Y-%m-%dT%H:%MZ}"
    text = (
        f"event {ev.event_id} #{ev.modification_number} {ev.status} {span}"
        f" program={ev.program or '-'} sites={sites}"
        f" limits={len(ev.limits)} prices={len(ev.prices)}"
    )
    if ev.unsupported:
        text += " unsupported=[" + "; ".join(ev.unsupported) + "]"
    return text


def _translate_signal(
    signal: _Signal,
    context: _Context,
    id_prefix: str,
    limits: list[GridEvent],
    prices: list[PriceSignal],
) -> str | None:
    """Append the signal's limits or prices; return why it is unsupported, or None."""
    label = f"{signal.name} {signal.type}"

    def limit(interval: _Interval, action: LevelAction) -> None:
        grid_event_id = f"{id_prefix}/{interval.uid}"
        try:
            limits.append(
                GridEvent(
                    grid_event_id,
                    interval.start,
                    interval.end,
                    context.site_ids,
                    action.cap_kw,
                    action.shed_kw,
                )
            )
        except DomainError as exc:
            raise OpenAdrTranslateError(f"event_signals[{signal.index}]: {exc}") from exc

    if signal.name == "SIMPLE":
        for interval in signal.intervals:
            action = _simple_level(signal, interval, context)
            if action is not None:
                limit(interval, action)
        return None
    if signal.name == "LOAD_DISPATCH" and signal.type in ("setpoint", "delta"):
        factor, why = kw_factor(item_base(signal.raw))
        if why is not None:
            return f"{label}: {why}"
        for interval in signal.intervals:
            kw = interval.value * factor
            # delta: the amount to take off, whichever sign the VTN writes it with.
            shed = LevelAction(shed_kw=abs(kw))
            limit(interval, LevelAction(cap_kw=kw) if signal.type == "setpoint" else shed)
        return None
    if signal.name == "LOAD_DISPATCH":
        return f"{label}: only setpoint and delta are supported"
    if signal.name == "LOAD_CONTROL":
        why = _LOAD_CONTROL_REASON.get(signal.type, "not a load control type we know")
        return f"{label}: not supported, it is {why}"
    if signal.name in _PRICE_SIGNALS:
        return _prices(signal, context.program, prices)
    return f"{signal.name}: not supported"


def _prices(signal: _Signal, program: ProgramMapping | None, out: list[PriceSignal]) -> str | None:
    label = f"{signal.name} {signal.type}"
    if signal.type == "price":
        mode = program.price_mode if program is not None else "replace"
    elif signal.type == "priceRelative":
        mode = "add"
    else:
        return f"{label}: not supported (only price and priceRelative)"
    default_unit = program.price_unit if program is not None else "per_mwh"
    factor, why = price_factor(item_base(signal.raw), default_unit)
    if why is not None:
        return f"{label}: {why}"
    for interval in signal.intervals:
        where = f"event_signals[{signal.index}]"
        try:
            out.append(PriceSignal(interval.start, interval.end, interval.value * factor, mode))
        except DomainError as exc:
            raise OpenAdrTranslateError(f"{where}: {exc}") from exc
    return None


def _limit_key(signal: _Signal) -> tuple[str, str | None]:
    return (signal.name, None) if signal.name == "SIMPLE" else (signal.name, signal.type)


def _simple_level(signal: _Signal, interval: _Interval, context: _Context) -> LevelAction | None:
    where = f"event_signals[{signal.index}].intervals[uid={interval.uid}].signal_payload"
    if not interval.value.is_integer() or not 0 <= interval.value <= 3:
        raise OpenAdrTranslateError(f"{where}: SIMPLE level must be 0, 1, 2 or 3")
    level = int(interval.value)
    if level == 0:
        return None
    program = context.program
    if program is None or not program.simple_levels:
        name = program.name if program is not None else context.market_context
        raise OpenAdrTranslateError(
            f"event_descriptor.market_context: no SIMPLE levels configured for program {name}"
        )
    action = program.simple_levels.get(level)
    if action is None:
        raise OpenAdrTranslateError(
            f"{where}: SIMPLE level {level} is not configured for program {program.name}"
        )
    return action


def _site_ids(event: dict[str, Any], mapping: OpenAdrMapping) -> frozenset[str]:
    """Sites named by resource/group targets; none named (venID, partyID, nothing) -> all."""
    by_type = event.get("targets_by_type")
    if by_type is None:
        by_type = {}
        for target in event.get("targets") or []:
            for key, value in _dict(target, "targets[]").items():
                by_type.setdefault(key, []).append(value)
    by_type = _dict(by_type, "targets_by_type")
    sites: set[str] = set()
    for key, table in (("resource_id", mapping.resources), ("group_id", mapping.groups)):
        values = by_type.get(key) or []
        for value in values if isinstance(values, list) else [values]:
            name = _ident(value, f"targets.{key}")
            if name not in table:
                raise OpenAdrTranslateError(f"targets.{key}: {name!r} is not mapped to any site")
            sites |= table[name]
    return frozenset(sites)


def _signals(value: Any, start: datetime, end: datetime) -> list[_Signal]:
    if not isinstance(value, list) or not value:
        raise OpenAdrTranslateError("event_signals: missing or empty")
    out = []
    for index, raw in enumerate(value):
        where = f"event_signals[{index}]"
        raw = _dict(raw, where)
        name = _ident(raw.get("signal_name"), f"{where}.signal_name")
        out.append(
            _Signal(
                index=index,
                name="SIMPLE" if name == "simple" else name,
                type=_ident(raw.get("signal_type"), f"{where}.signal_type"),
                signal_id=_ident(raw.get("signal_id", index), f"{where}.signal_id"),
                intervals=_intervals(raw.get("intervals"), where, start, end),
                raw=raw,
            )
        )
    return out


def _intervals(value: Any, where: str, start: datetime, end: datetime) -> tuple[_Interval, ...]:
    """Intervals must lie within the active period and not overlap; a missing dtstart follows
    on from the previous interval (OpenADR's sequential intervals)."""
    if not isinstance(value, list) or not value:
        raise OpenAdrTranslateError(f"{where}.intervals: missing or empty")
    out: list[_Interval] = []
    cursor = start
    for j, raw in enumerate(value):
        at = f"{where}.intervals[{j}]"
        raw = _dict(raw, at)
        dtstart = raw.get("dtstart")
        i_start = cursor if dtstart is None else _time(dtstart, f"{at}.dtstart")
        i_end = i_start + _duration(raw.get("duration"), f"{at}.duration")
        if i_start < start or i_end > end:
            raise OpenAdrTranslateError(
                f"{at}: [{_fmt(i_start)}, {_fmt(i_end)}) lies outside the active period"
                f" [{_fmt(start)}, {_fmt(end)})"
            )
        uid = _ident(raw.get("uid", j), f"{at}.uid")
        if any(i.uid == uid for i in out):
            raise OpenAdrTranslateError(f"{at}.uid: duplicate uid {uid!r}")
        payload = _number(raw.get("signal_payload"), f"{at}.signal_payload")
        out.append(_Interval(uid, i_start, i_end, payload))
        cursor = i_end
    ordered = sorted(out, key=lambda i: i.start)
    for a, b in pairwise(ordered):
        if b.start < a.end:
            raise OpenAdrTranslateError(f"{where}.intervals: uid {a.uid} and {b.uid} overlap")
    return tuple(out)


def _modification_number(descriptor: dict[str, Any]) -> int:
    value = descriptor.get("modification_number")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OpenAdrTranslateError(
            f"event_descriptor.modification_number: expected an integer >= 0, got {value!r}"
        )
    return value


def _status(descriptor: dict[str, Any]) -> DrStatus:
    value = descriptor.get("event_status")
    status = value.lower() if isinstance(value, str) else None
    if status not in _STATUSES:
        raise OpenAdrTranslateError(f"event_descriptor.event_status: unknown status {value!r}")
    return status  # type: ignore[return-value]


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        kind = "missing" if value is None else f"expected a mapping, got {type(value).__name__}"
        raise OpenAdrTranslateError(f"{where}: {kind}")
    return value


def _ident(value: Any, where: str) -> str:
    # openleadr turns numeric-looking ids ("1234") into ints; they are still ids.
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise OpenAdrTranslateError(f"{where}: missing or not an id: {value!r}")
    return str(value)


def _time(value: Any, where: str) -> datetime:
    if isinstance(value, str):
        # openleadr leaves times it could not parse (no 'Z') as strings.
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise OpenAdrTranslateError(f"{where}: not an ISO-8601 time: {value!r}") from exc
    if not isinstance(value, datetime):
        raise OpenAdrTranslateError(f"{where}: missing or not a time: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise OpenAdrTranslateError(f"{where}: time has no UTC offset: {value.isoformat()}")
    return value.astimezone(UTC)


def _duration(value: Any, where: str) -> timedelta:
    if not isinstance(value, timedelta):
        raise OpenAdrTranslateError(f"{where}: missing or not a duration: {value!r}")
    if value <= timedelta(0):
        # A zero active-period duration means "open-ended" in OpenADR: we cannot plan that.
        raise OpenAdrTranslateError(f"{where}: must be positive, got {value.total_seconds():g} s")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OpenAdrTranslateError(f"{where}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise OpenAdrTranslateError(f"{where}: must be finite, got {value!r}")
    return float(value)


def _fmt(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
