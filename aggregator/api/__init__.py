"""The HTTP API (FastAPI, ``/api/v1``) and the dashboard it serves; see docs/api.md."""

from aggregator.api.app import create_app
from aggregator.api.context import ApiContext

__all__ = ["ApiContext", "create_app"]
