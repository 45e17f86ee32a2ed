"""Points as InfluxDB line protocol (InfluxDB 2.x reference, "Line protocol").

``measurement,tag=v,... field=v,... <ns since epoch>``: tags sorted by key (what InfluxDB
prefers), empty tag values left out; floats as Python writes them (``1.5``, ``1e-20``),
integers with ``i``, booleans ``true``/``false``, strings quoted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aggregator.domain import FieldValue, Point

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ ", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _field(value: FieldValue) -> str:
    if isinstance(value, bool):  # before int: a bool is an int in Python
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def ns_since_epoch(ts: datetime) -> int:
    """Exact integer nanoseconds (datetimes hold microseconds)."""
    return (ts - _EPOCH) // timedelta(microseconds=1) * 1000


def line_protocol(p: Point) -> str:
    """One point as one line, nanosecond precision."""
    head = p.measurement.translate(_MEASUREMENT)
    tags = "".join(
        f",{k.translate(_KEY)}={v.translate(_KEY)}" for k, v in sorted(p.tags.items()) if v
    )
    fields = ",".join(f"{k.translate(_KEY)}={_field(v)}" for k, v in sorted(p.fields.items()))
    return f"{head}{tags} {fields} {ns_since_epoch(p.ts)}"
