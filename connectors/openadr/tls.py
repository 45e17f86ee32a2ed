"""Transport security for the VEN: the HTTPS context, and which settings count as secure.

openleadr's client builds its own ``SSLContext`` (no minimum TLS version, OpenSSL's default
cipher list, and plain HTTP whenever no client certificate is given). The VEN uses the context
built here instead (``_Client._ensure_client_session`` in ``ven.py``). See ``docs/openadr.md``
("Security").
"""

from __future__ import annotations

import logging
import re
import ssl
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
from openleadr import utils as oadr_utils

__all__ = [
    "OPENADR_CIPHERS",
    "TlsSettings",
    "certificate_fingerprint",
    "check_security",
    "client_session",
    "normalize_fingerprint",
    "ssl_context",
]

log = logging.getLogger(__name__)

# The OpenADR 2.0 profile's TLS 1.2 suites: TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (ECC
# P-256 certificates) and TLS_RSA_WITH_AES_128_CBC_SHA256 (RSA certificates). Certified VTNs
# speak them, so no other TLS 1.2 suite is offered. TLS 1.3, when both ends have it, uses its
# own (all AEAD) suites, which set_ciphers does not touch.
OPENADR_CIPHERS = "ECDHE-ECDSA-AES128-SHA256:AES128-SHA256"

# OpenADR's fingerprint: the last 10 bytes of the certificate's SHA-256, as colon-separated hex.
_FINGERPRINT = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){9}$")


class TlsSettings(Protocol):
    """The parts of ``VenSettings`` this module reads."""

    @property
    def vtn_url(self) -> str: ...
    @property
    def vtn_fingerprint(self) -> str | None: ...
    @property
    def cert(self) -> str | None: ...
    @property
    def key(self) -> str | None: ...
    @property
    def ca_file(self) -> str | None: ...
    @property
    def passphrase(self) -> str | None: ...
    @property
    def disable_signature(self) -> bool: ...


def uses_tls(settings: TlsSettings) -> bool:
    return urlsplit(settings.vtn_url).scheme.lower() == "https"


def normalize_fingerprint(fingerprint: str) -> str:
    """``fingerprint`` upper-cased; ValueError unless it is OpenADR's ``AB:CD:...`` (10 bytes)."""
    value = fingerprint.strip().upper()
    if not _FINGERPRINT.match(value):
        raise ValueError(
            "vtn_fingerprint: expected OpenADR's fingerprint, 10 colon-separated hex bytes "
            f"(the end of the certificate's SHA-256), got {fingerprint!r}"
        )
    return value


def certificate_fingerprint(cert_pem: str | bytes) -> str:
    """OpenADR's fingerprint of a PEM certificate (what a VTN operator pins for us)."""
    return str(oadr_utils.certificate_fingerprint(cert_pem))


def check_security(settings: TlsSettings, *, warn: bool = True) -> None:
    """Refuse settings that would talk to a VTN over HTTPS with anything less than all of it.

    Over ``https://`` the VEN needs a client certificate and key (mutual TLS, and the same pair
    signs our messages), XML signatures on, and the VTN's fingerprint pinned: openleadr checks
    the signature of the VTN's messages only when a fingerprint is given, and would otherwise
    accept unsigned ones. ``http://`` is allowed for demos and tests, with a warning (unless
    ``warn`` is off: a pre-flight check whose VEN will warn itself). ValueError naming the
    setting.
    """
    if settings.vtn_fingerprint is not None:
        normalize_fingerprint(settings.vtn_fingerprint)
    if settings.key is not None and settings.cert is None:
        raise ValueError("key: given without cert")
    if not uses_tls(settings):
        if urlsplit(settings.vtn_url).scheme.lower() != "http":
            raise ValueError(
                f"vtn_url: must be https:// (or http:// for a demo), got {settings.vtn_url!r}"
            )
        if warn:
            log.warning(
                "VTN %s is plain HTTP: no TLS, no client authentication%s (demo only)",
                settings.vtn_url,
                "" if settings.vtn_fingerprint else ", VTN messages not verified",
            )
        return
    missing = [
        name for name in ("cert", "key", "vtn_fingerprint") if getattr(settings, name) is None
    ]
    if missing:
        raise ValueError(f"{', '.join(missing)}: required for an https:// VTN (fail closed)")
    if settings.disable_signature:
        raise ValueError("disable_signature: XML signatures must stay on for an https:// VTN")


def ssl_context(settings: TlsSettings) -> ssl.SSLContext | None:
    """The VEN's HTTPS context, or None for a plain-HTTP VTN.

    TLS >= 1.2 with the OpenADR suites for 1.2, the VTN's certificate verified against
    ``ca_file`` (the system's trust store without one) including its host name, and our client
    certificate presented.
    """
    if not uses_tls(settings):
        return None
    check_security(settings)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(OPENADR_CIPHERS)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    assert settings.cert is not None  # check_security
    context.load_cert_chain(settings.cert, settings.key, settings.passphrase)
    return context


def client_session(context: ssl.SSLContext) -> aiohttp.ClientSession:
    """An HTTP session like openleadr's own (headers, timeouts) but on ``context``."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context),
        headers={"content-type": "application/xml"},
        timeout=aiohttp.ClientTimeout(sock_connect=5, sock_read=10),
    )
