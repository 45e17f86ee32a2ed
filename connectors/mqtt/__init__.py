"""MQTT connector: setpoints out, telemetry and site status in (paho-mqtt)."""
