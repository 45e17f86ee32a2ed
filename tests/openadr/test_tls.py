"""The VEN against openleadr's real VTN over mutual TLS, with signed messages.

A fixture makes a CA, a VTN certificate (SAN 127.0.0.1 and localhost) and a VEN certificate
with ``cryptography`` in a temporary directory (ECC P-256, as OpenADR's ECDHE-ECDSA suite
wants); nothing secret is committed. The VTN is openleadr's ``OpenADRServer`` with
``http_cert``/``http_key``/``http_ca_file`` (client certificates required) and ``cert``/``key``
(signing), knowing the VEN's fingerprint through ``ven_lookup``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import ssl
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from openleadr import OpenADRServer
from openleadr import messaging as oadr_messaging
from openleadr.service.vtn_service import VTNService

from connectors.openadr import tls
from connectors.openadr.validation import OutgoingMessageError, OutgoingValidator
from connectors.openadr.ven import Ven, VenSettings
from tests.certs import issue
from tests.openadr.vtn import POLL, PREFIX, VTN_ID, Vtn, _AckingOptService, free_port, run, until

# openleadr's OpenADRServer stores itself in its aiohttp app under a str key (server.py).
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


# ---------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Pki:
    ca: Path
    vtn_cert: Path
    vtn_key: Path
    ven_cert: Path
    ven_key: Path
    other_cert: Path  # issued by the same CA, but not the VTN's
    other_key: Path

    def fingerprint(self, cert: Path) -> str:
        return tls.certificate_fingerprint(cert.read_bytes())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = issue("Test OpenADR CA", ca_key, None, ca_key, ca=True)
    (d / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths: dict[str, Path] = {}
    for name, san in [
        ("vtn", [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        ("ven", None),
        ("other", None),
    ]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue(f"test-{name}", key, ca_cert.subject, ca_key, san=san)
        paths[f"{name}_cert"] = d / f"{name}.pem"
        paths[f"{name}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[f"{name}_key"] = _write_key(key, d / f"{name}.key")
    return Pki(ca=d / "ca.pem", **paths)


# ---------------------------------------------------------------------- the TLS VTN


class TlsVtn(Vtn):
    """The test VTN (``tests/openadr/vtn.py``) on mutual TLS, signing its messages (or not).

    ``replay_next_poll``: the next oadrPoll is answered with the last signed oadrDistributeEvent
    the VTN sent, byte for byte (a replay by whoever recorded the traffic).
    """

    def __init__(self, port: int, pki: Pki, *, sign: bool = True) -> None:
        super().__init__(port)
        self.ven_fingerprint = pki.fingerprint(pki.ven_cert)
        self.last_distribute: bytes | None = None
        self.replay_next_poll = False
        # openleadr keeps fingerprint_lookup on its VTNService class; a stale one would win.
        if "fingerprint_lookup" in VTNService.__dict__:
            del VTNService.fingerprint_lookup
        self.server = OpenADRServer(
            vtn_id=VTN_ID,
            http_host="127.0.0.1",
            http_port=port,
            requested_poll_freq=POLL,
            ven_lookup=self.ven_lookup,
            show_fingerprint=False,
            http_cert=str(pki.vtn_cert),
            http_key=str(pki.vtn_key),
            http_ca_file=str(pki.ca),
            cert=str(pki.vtn_cert) if sign else None,
            key=str(pki.vtn_key) if sign else None,
        )
        self.server.add_handler("on_create_party_registration", self.on_create_party_registration)
        opt_service = _AckingOptService(VTN_ID, self.create_opts)
        self.server.app.add_routes([web.post(f"{PREFIX}/EiOpt", opt_service.handler)])
        self.server.app.middlewares.append(self._recorder)

    def ven_lookup(self, ven_id: str) -> dict[str, Any] | None:
        info = super().ven_lookup(ven_id)
        if info is not None:
            info["fingerprint"] = self.ven_fingerprint
        return info

    @web.middleware
    async def _recorder(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.endswith("/OadrPoll") and self.replay_next_poll and self.last_distribute:
            self.replay_next_poll = False
            return web.Response(body=self.last_distribute, content_type="application/xml")
        response: web.StreamResponse = await handler(request)
        body = getattr(response, "body", None)
        if isinstance(body, bytes) and b"oadrDistributeEvent" in body:
            self.last_distribute = body
        return response

    def sign_with(self, cert: Path, key: Path) -> None:
        """From now on the VTN signs with another certificate (openleadr keeps it class-wide)."""
        VTNService._create_message = partial(
            oadr_messaging.create_message, cert=cert.read_bytes(), key=key.read_bytes()
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{PREFIX}"


def tls_settings(vtn: TlsVtn, pki: Pki, **overrides: Any) -> VenSettings:
    values: dict[str, Any] = {
        "vtn_url": vtn.url,
        "ven_name": "fleet-ven",
        "vtn_fingerprint": pki.fingerprint(pki.vtn_cert),
        "cert": str(pki.ven_cert),
        "key": str(pki.ven_key),
        "ca_file": str(pki.ca),
        "poll_interval_s": 0.3,
        "retry_min_s": 0.05,
        "retry_max_s": 0.3,
    }
    values.update(overrides)
    return VenSettings(**values)


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def __call__(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        return "optIn"


def accepted(ven: Ven, message_type: str) -> list[str]:
    """Records each message of ``message_type`` that passed openleadr's checks and was parsed."""
    seen: list[str] = []

    def hook(received_type: str, payload: dict[str, Any]) -> None:
        if received_type == message_type:
            seen.append(received_type)

    ven._client.hooks["after_parse_xml"].append(hook)
    return seen


# ---------------------------------------------------------------------- settings and context


def test_https_settings_fail_closed(pki: Pki) -> None:
    base = {"vtn_url": "https://vtn.example/OpenADR2/Simple/2.0b", "ven_name": "v"}
    full = {
        **base,
        "cert": str(pki.ven_cert),
        "key": str(pki.ven_key),
        "vtn_fingerprint": pki.fingerprint(pki.vtn_cert),
    }
    with pytest.raises(ValueError, match="cert, key, vtn_fingerprint: required"):
        tls.check_security(VenSettings(**base))
    with pytest.raises(ValueError, match="vtn_fingerprint: required"):
        tls.check_security(VenSettings(**{**full, "vtn_fingerprint": None}))
    with pytest.raises(ValueError, match="disable_signature"):
        tls.check_security(VenSettings(**{**full, "disable_signature": True}))
    with pytest.raises(ValueError, match="10 colon-separated hex bytes"):
        tls.check_security(VenSettings(**{**full, "vtn_fingerprint": "AB:CD"}))
    with pytest.raises(ValueError, match="https://"):
        tls.check_security(VenSettings(**{**full, "vtn_url": "ftp://vtn.example/"}))
    tls.check_security(VenSettings(**full))
    # The Ven refuses them too, before any connection.
    with pytest.raises(ValueError, match="required for an https:// VTN"):
        Ven(VenSettings(**base), Recorder())
    assert tls.normalize_fingerprint(" ab:cd:ef:01:23:45:67:89:0a:bc ") == (
        "AB:CD:EF:01:23:45:67:89:0A:BC"
    )


def test_context_is_tls12_plus_with_the_openadr_suites(pki: Pki) -> None:
    settings = VenSettings(
        vtn_url="https://127.0.0.1/x",
        ven_name="v",
        cert=str(pki.ven_cert),
        key=str(pki.ven_key),
        ca_file=str(pki.ca),
        vtn_fingerprint=pki.fingerprint(pki.vtn_cert),
    )
    context = tls.ssl_context(settings)
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == {"ECDHE-ECDSA-AES128-SHA256", "AES128-SHA256"}
    plain = VenSettings(vtn_url="http://127.0.0.1/x", ven_name="v")
    assert tls.ssl_context(plain) is None


def test_tls12_handshake_uses_an_openadr_suite_and_other_suites_fail(pki: Pki) -> None:
    async def handshake(vtn: TlsVtn) -> tuple[str, str]:
        context = tls.ssl_context(tls_settings(vtn, pki))
        _, writer = await asyncio.open_connection("127.0.0.1", vtn.port, ssl=context)
        ssl_object = writer.get_extra_info("ssl_object")
        result = (ssl_object.version(), ssl_object.cipher()[0])
        writer.close()
        return result

    async def body() -> None:
        vtn = TlsVtn(free_port(), pki)
        vtn.server.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2  # a 2.0b-era VTN
        await vtn.start()
        try:
            assert await handshake(vtn) == ("TLSv1.2", "ECDHE-ECDSA-AES128-SHA256")
        finally:
            await vtn.stop()

        vtn = TlsVtn(free_port(), pki)
        vtn.server.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
        vtn.server.ssl_context.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")  # not OpenADR's
        await vtn.start()
        try:
            # The VTN aborts the handshake: no suite in common (SSLError or a reset).
            with pytest.raises(OSError):
                await handshake(vtn)
        finally:
            await vtn.stop()

    run(body)


# ---------------------------------------------------------------------- over TLS


def test_registers_and_gets_a_signed_event_over_mutual_tls(pki: Pki) -> None:
    async def body() -> None:
        vtn = TlsVtn(free_port(), pki)
        await vtn.start()
        handler = Recorder()
        ven = Ven(tls_settings(vtn, pki), handler)
        distributed = accepted(ven, "oadrDistributeEvent")
        await ven.start()
        try:
            await until(lambda: ven.registered)
            event_id = vtn.add_event(ven.ven_id)
            await until(lambda: (event_id, "optIn") in vtn.opts)
            assert [e["event_descriptor"]["event_id"] for e in handler.events] == [event_id]
            assert distributed  # the signed event passed signature + fingerprint checks
            assert await ven.opt_out(event_id, 0)
            assert ven.registration_failures == 0
            # Every message we sent was checked against openleadr's 2.0b XSD, signature included.
            assert {
                "oadrQueryRegistration",
                "oadrCreatePartyRegistration",
                "oadrRequestEvent",
                "oadrPoll",
                "oadrCreatedEvent",
                "oadrCreateOpt",
            } <= set(ven.outgoing.validated)
            assert not ven.outgoing.invalid
        finally:
            await ven.stop()
            await vtn.stop()

    run(body)


def test_wrong_vtn_fingerprint_never_registers(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        vtn = TlsVtn(free_port(), pki)
        await vtn.start()
        handler = Recorder()
        wrong = pki.fingerprint(pki.other_cert)
        ven = Ven(tls_settings(vtn, pki, vtn_fingerprint=wrong), handler)
        await ven.start()
        try:
            await until(lambda: ven.registration_failures >= 3)
            assert not ven.registered
            assert ven.ven_id is None  # nothing the VTN said was believed
            assert not handler.events
        finally:
            await ven.stop()
            await vtn.stop()

    with caplog.at_level(logging.WARNING, logger="openleadr"):
        run(body)
    assert "The certificate fingerprint was incorrect" in caplog.text


def test_event_signed_with_another_certificate_is_rejected(pki: Pki) -> None:
    async def body() -> None:
        vtn = TlsVtn(free_port(), pki)
        await vtn.start()
        handler = Recorder()
        ven = Ven(tls_settings(vtn, pki), handler)
        distributed = accepted(ven, "oadrDistributeEvent")
        await ven.start()
        try:
            await until(lambda: ven.registered)
            # Same CA, valid TLS, but not the pinned certificate.
            vtn.sign_with(pki.other_cert, pki.other_key)
            failed = ven.polls_failed
            vtn.add_event(ven.ven_id)
            await until(lambda: ven.polls_failed >= failed + 3)
            assert not handler.events
            assert not distributed
        finally:
            await ven.stop()
            await vtn.stop()

    run(body)


def test_unsigned_vtn_messages_are_rejected(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        vtn = TlsVtn(free_port(), pki, sign=False)
        await vtn.start()
        ven = Ven(tls_settings(vtn, pki), Recorder())
        await ven.start()
        try:
            await until(lambda: ven.registration_failures >= 3)
            assert not ven.registered
        finally:
            await ven.stop()
            await vtn.stop()

    with caplog.at_level(logging.ERROR, logger="openleadr"):
        run(body)
    assert "could not be parsed or validated" in caplog.text


XML = {"content-type": "application/xml"}


def test_client_without_certificate_cannot_connect(pki: Pki) -> None:
    async def body() -> None:
        vtn = TlsVtn(free_port(), pki)
        await vtn.start()
        # Our context minus the client certificate: TLS and the VTN's certificate are fine.
        context = ssl.create_default_context(cafile=str(pki.ca))
        message = oadr_messaging.create_message("oadrQueryRegistration", request_id="r1")
        try:
            async with aiohttp.ClientSession(headers=XML) as session:
                with pytest.raises(aiohttp.ClientError):
                    async with session.post(
                        f"{vtn.url}/EiRegisterParty", data=message, ssl=context
                    ) as response:
                        await response.read()
        finally:
            await vtn.stop()

    run(body)


@pytest.mark.parametrize("how", ["repeated", "old"])
def test_replayed_event_is_rejected(
    pki: Pki, how: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if how == "old":  # openleadr allows 5 s; shorter keeps the test fast
        monkeypatch.setattr(oadr_messaging, "REPLAY_PROTECT_MAX_TIME_DELTA", timedelta(seconds=1))

    async def body() -> None:
        vtn = TlsVtn(free_port(), pki)
        await vtn.start()
        handler = Recorder()
        ven = Ven(tls_settings(vtn, pki), handler)
        distributed = accepted(ven, "oadrDistributeEvent")
        await ven.start()
        try:
            await until(lambda: ven.registered)
            event_id = vtn.add_event(ven.ven_id)
            await until(lambda: (event_id, "optIn") in vtn.opts)
            assert vtn.last_distribute is not None and len(distributed) == 1
            if how == "old":
                await asyncio.sleep(1.2)
            failed = ven.polls_failed
            vtn.replay_next_poll = True
            await until(lambda: not vtn.replay_next_poll and ven.polls_failed > failed)
            assert len(distributed) == 1  # the replay never got past the signature checks
            assert len(handler.events) == 1
            assert ven.registered  # and polling goes on
        finally:
            await ven.stop()
            await vtn.stop()

    with caplog.at_level(logging.ERROR, logger="openleadr"):
        run(body)
    expected = "already used" if how == "repeated" else "signed too long ago"
    assert expected in caplog.text


# ---------------------------------------------------------------------- XSD on the way out


def test_outgoing_message_failing_the_schema_is_refused_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(message_type: str, **payload: Any) -> str:
        message = oadr_messaging.create_message(message_type, **payload)
        return re.sub(r"<ei:venID>.*?</ei:venID>", "", message)  # venID is required

    validator = OutgoingValidator(broken)
    with pytest.raises(OutgoingMessageError, match="oadrPoll"):
        validator("oadrPoll", ven_id="v1")
    assert validator.invalid == {"oadrPoll": 1}
    assert "not sending oadrPoll" in caplog.text
    assert OutgoingValidator(oadr_messaging.create_message)("oadrPoll", ven_id="v1")


def test_a_poll_failing_the_schema_is_never_sent(pki: Pki) -> None:
    async def body() -> None:
        vtn = TlsVtn(free_port(), pki)
        await vtn.start()
        ven = Ven(tls_settings(vtn, pki), Recorder())
        await ven.start()
        try:
            await until(lambda: ven.registered)
            create = ven.outgoing.create

            def broken(message_type: str, **payload: Any) -> str:
                message = create(message_type, **payload)
                if message_type == "oadrPoll":
                    message = message.replace("ei:venID>", "ei:venId>")
                return message

            ven.outgoing.create = broken
            failed = ven.polls_failed
            await until(lambda: ven.outgoing.invalid["oadrPoll"] >= 2)
            assert ven.polls_failed >= failed + 2
        finally:
            await ven.stop()
            await vtn.stop()

    run(body)
