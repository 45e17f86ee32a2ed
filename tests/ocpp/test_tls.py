"""Security profiles 2 (TLS + basic auth) and 3 (mutual TLS) with fixture-made certificates.

A module fixture makes a CA, a server certificate (SAN 127.0.0.1) and client certificates with
CN ``c0`` and ``c1`` using ``cryptography`` (ECC P-256) in a temporary directory.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.exceptions import InvalidHandshake, InvalidStatus

from connectors.ocpp import OcppCentralSystem, OcppChargerSettings, OcppSettings
from connectors.ocpp.settings import OCPP_TLS12_CIPHERS
from tests.certs import issue
from tests.ocpp.clients import connect
from tests.ocpp.test_central_system import CHARGERS, Handler, until


@dataclass(frozen=True)
class Pki:
    dir: Path
    ca: Path

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("ocpp-pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = issue("Test OCPP CA", ca_key, None, ca_key, ca=True)
    (d / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for name, san in [
        ("server", [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        ("c0", None),
        ("c1", None),
    ]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue(name, key, ca_cert.subject, ca_key, san=san)
        (d / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return Pki(d, d / "ca.pem")


async def started(pki: Pki, profile: int) -> OcppCentralSystem:
    settings = OcppSettings(
        port=0,
        response_timeout_s=0.5,
        security_profile=profile,  # type: ignore[arg-type]
        chargers={"c0": OcppChargerSettings("c0", password="s3cret-s3cret")},
        tls_cert=str(pki.cert("server")),
        tls_key=str(pki.key("server")),
        tls_ca=str(pki.ca) if profile == 3 else None,
    )
    system = OcppCentralSystem(settings, Handler(), CHARGERS)
    await system.start()
    return system


def client_context(pki: Pki, cert: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        context.load_cert_chain(pki.cert(cert), pki.key(cert))
    return context


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def run(coro: Any) -> None:
    asyncio.run(coro)


def test_profile_2_tls_and_basic_auth(pki: Pki) -> None:
    async def go() -> None:
        system = await started(pki, 2)
        try:
            assert system.url.startswith("wss://")
            ctx = client_context(pki)
            with pytest.raises(InvalidStatus) as exc:  # refused before the upgrade
                await connect(
                    system.url, "c0", "1.6", ssl=ctx, additional_headers=_basic("c0", "x")
                )
            assert exc.value.response.status_code == 401
            conn = await connect(
                system.url, "c0", "2.0.1", ssl=ctx, additional_headers=_basic("c0", "s3cret-s3cret")
            )
            try:
                await conn.cp.plug_in("v0", 20.0)
                assert system.connected() == ["c0"]
                tls = conn.ws.transport.get_extra_info("ssl_object")
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
            finally:
                await conn.close()
        finally:
            await system.stop()

    run(go())


def test_profile_3_mutual_tls_needs_a_certificate_for_this_charge_point(pki: Pki) -> None:
    async def go() -> None:
        system = await started(pki, 3)
        try:
            conn = await connect(system.url, "c0", "1.6", ssl=client_context(pki, "c0"))
            try:
                await conn.cp.plug_in("v0", 20.0)
                assert system.connected() == ["c0"]
            finally:
                await conn.close()
            # a valid certificate, but for charge point c1: refused before the upgrade
            with pytest.raises(InvalidStatus) as exc:
                await connect(system.url, "c0", "1.6", ssl=client_context(pki, "c1"))
            assert exc.value.response.status_code == 403
            # no client certificate: the server ends the TLS handshake (under TLS 1.3 the
            # client sees that only when it reads the HTTP answer)
            with pytest.raises((ssl.SSLError, OSError, InvalidHandshake)):
                await connect(system.url, "c0", "1.6", ssl=client_context(pki))
            await asyncio.sleep(0.1)
            assert system.connected() == []
            assert system.counters["connections"] == 1
        finally:
            await system.stop()

    run(go())


def assert_server_refused(exc: BaseException) -> None:
    """The server ended the handshake (alert or reset), not a client unable to offer it."""
    reason = str(getattr(exc, "reason", "") or exc).upper()
    assert "NO_PROTOCOLS_AVAILABLE" not in reason, exc
    assert "NO_CIPHERS_AVAILABLE" not in reason, exc


def test_tls_1_1_and_unlisted_ciphers_are_refused(pki: Pki) -> None:
    async def go() -> None:
        system = await started(pki, 2)
        auth = _basic("c0", "s3cret-s3cret")
        try:
            old = client_context(pki)
            with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point
                warnings.simplefilter("ignore", DeprecationWarning)
                old.minimum_version = ssl.TLSVersion.TLSv1_1
                old.maximum_version = ssl.TLSVersion.TLSv1_1
            old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
            with pytest.raises((ssl.SSLError, ConnectionError)) as tls_exc:
                await connect(system.url, "c0", "1.6", ssl=old, additional_headers=auth)
            assert_server_refused(tls_exc.value)
            weak = client_context(pki)
            weak.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.3 suites are not cipher-set
            weak.set_ciphers("ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA256")
            with pytest.raises((ssl.SSLError, ConnectionError)) as tls_exc:
                await connect(system.url, "c0", "1.6", ssl=weak, additional_headers=auth)
            assert_server_refused(tls_exc.value)
            # each listed TLS 1.2 suite the (ECDSA) server certificate allows works
            for cipher in OCPP_TLS12_CIPHERS[:2]:
                ok = client_context(pki)
                ok.maximum_version = ssl.TLSVersion.TLSv1_2
                ok.set_ciphers(cipher)
                conn = await connect(system.url, "c0", "1.6", ssl=ok, additional_headers=auth)
                assert conn.ws.transport.get_extra_info("ssl_object").cipher()[0] == cipher
                await conn.close()
            await until(lambda: system.connected() == [])
        finally:
            await system.stop()

    run(go())
