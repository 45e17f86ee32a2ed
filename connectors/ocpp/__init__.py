"""OCPP central system: chargers speaking OCPP 1.6J, 2.0.1 or 2.1 to us (docs/ocpp.md)."""

from connectors.ocpp.server import OcppCentralSystem
from connectors.ocpp.settings import OcppChargerSettings, OcppSettings

__all__ = ["OcppCentralSystem", "OcppChargerSettings", "OcppSettings"]
