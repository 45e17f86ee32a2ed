"""Settings of the OCPP central system (plain dataclasses; the edge maps its config onto them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

SUBPROTOCOLS = ("ocpp2.1", "ocpp2.0.1", "ocpp1.6")


@dataclass(frozen=True)
class OcppChargerSettings:
    """One charge point: which of our chargers it is and how it wants its limits.

    ``unit`` is what the charger declares for charging profiles: ``W`` or ``A`` (``A`` uses
    ``voltage`` and ``phases``). ``safe_limit_kw`` goes out as the default profile at boot.
    """

    charger_id: str
    unit: Literal["W", "A"] = "W"
    voltage: float = 230.0
    phases: int = 3
    safe_limit_kw: float = 0.0
    bidirectional: bool = False
    password: str | None = None


@dataclass(frozen=True)
class OcppSettings:
    host: str = "127.0.0.1"
    port: int = 9000
    # charge point id -> settings; a fleet charger not listed connects under its own id
    chargers: Mapping[str, OcppChargerSettings] = field(default_factory=dict)
    security_profile: Literal[0, 1] = 0
    ping_interval_s: float = 60.0
    response_timeout_s: float = 10.0
    heartbeat_interval_s: int = 60

    def __post_init__(self) -> None:
        if not 0 < self.ping_interval_s < 90:
            raise ValueError("ping_interval_s must be in (0, 90)")
