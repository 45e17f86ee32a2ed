"""Fixtures shared by the end-to-end tests (reused from the store and MQTT suites)."""

from tests.mqtt.conftest import background_loop, embedded_broker, shared_mosquitto_up
from tests.sql.conftest import pg_database

__all__ = ["background_loop", "embedded_broker", "pg_database", "shared_mosquitto_up"]
