"""One dispatch path for every charger: each setpoint goes to the sink that reaches its charger.

The planner and the controller do not care how a charger is reached (MQTT gateway or OCPP).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from aggregator.domain import Setpoint
from aggregator.ports import SetpointSink


class RoutedSink(SetpointSink, Protocol):
    """A sink that can tell whether it reaches a charger (the OCPP central system)."""

    def reaches(self, charger_id: str) -> bool: ...


class RoutingSink:
    """Setpoints of chargers ``preferred`` reaches go there; all others to ``fallback``.

    Order within each batch is kept (reductions first), per sink.
    """

    def __init__(self, preferred: RoutedSink, fallback: SetpointSink) -> None:
        self.preferred = preferred
        self.fallback = fallback

    def publish(self, setpoints: Sequence[Setpoint]) -> None:
        mine = [sp for sp in setpoints if self.preferred.reaches(sp.charger_id)]
        rest = [sp for sp in setpoints if not self.preferred.reaches(sp.charger_id)]
        if mine:
            self.preferred.publish(mine)
        if rest:
            self.fallback.publish(rest)
