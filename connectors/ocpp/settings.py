"""Settings of the OCPP central system (plain dataclasses; the edge maps its config onto them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

SUBPROTOCOLS = ("ocpp2.1", "ocpp2.0.1", "ocpp1.6")

# TLS 1.2 suites of the OCPP 1.6 security whitepaper / OCPP 2.0.1 part 2 (A00.FR.3xx), in
# OpenSSL names. TLS 1.3 suites are not set by this string: Python's defaults stay
# (TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_GCM_SHA256).
OCPP_TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
)


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
    # 0 none, 1 basic auth, 2 TLS + basic auth, 3 mutual TLS (docs/ocpp.md)
    security_profile: Literal[0, 1, 2, 3] = 0
    ping_interval_s: float = 60.0
    response_timeout_s: float = 10.0
    heartbeat_interval_s: int = 60
    tls_cert: str | None = None  # server certificate chain (PEM), profiles 2 and 3
    tls_key: str | None = None  # its private key (PEM)
    tls_ca: str | None = None  # CA(s) that issue charge point certificates, profile 3

    def __post_init__(self) -> None:
        if not 0 < self.ping_interval_s < 90:
            raise ValueError("ping_interval_s must be in (0, 90)")
        if self.security_profile >= 2 and not (self.tls_cert and self.tls_key):
            raise ValueError("security profiles 2 and 3 need tls_cert and tls_key")
        if self.security_profile == 3 and not self.tls_ca:
            raise ValueError("security profile 3 needs tls_ca (the charge points' CA)")
