"""InfluxDB: the production ``TimeSeriesStore`` (influxdb-client, v2 write API, Flux).

Batched writes on a background thread; an on-disk buffer while the server is away, sent in
order, once, when it is back (docs/timeseries.md).
"""

from connectors.influxdb.buffer import BufferInUseError
from connectors.influxdb.lines import line_protocol
from connectors.influxdb.store import InfluxTimeSeriesStore

__all__ = ["BufferInUseError", "InfluxTimeSeriesStore", "line_protocol"]
