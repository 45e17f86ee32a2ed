"""EV fleet flexibility aggregator."""

__version__ = "0.1.0"
