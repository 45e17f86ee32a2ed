"""Fixtures for the time-series stores: the SQL store's databases, and VictoriaMetrics.

VictoriaMetrics (Debian package ``victoria-metrics``) accepts InfluxDB's v2 write API, so it
stands in for an InfluxDB server on the write path; points are read back through its
``/api/v1/export``. The fixture starts the binary on a free port with its own data folder,
or skips, with the reason, where it is not installed.
"""

from tests.sql.conftest import db_url, pg_database
from tests.timeseries.victoria import victoria

__all__ = ["db_url", "pg_database", "victoria"]
