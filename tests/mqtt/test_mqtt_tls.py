"""TLS and password authentication against a Mosquitto process the test owns.

Certificates come from the ``openssl`` command: a throwaway CA, a server certificate for
127.0.0.1 and a client certificate (the broker requires one).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aggregator.domain import Setpoint
from connectors.mqtt.broker import free_port
from connectors.mqtt.client import MqttConnector
from connectors.mqtt.gateway import GatewayClient
from connectors.mqtt.settings import MqttSettings
from tests.mqtt.mqtt_helpers import (
    MOSQUITTO_BIN,
    OwnedMosquitto,
    RecordingHandler,
    setpoint,
    wait_until,
)

pytestmark = pytest.mark.skipif(
    not MOSQUITTO_BIN.exists()
    or not shutil.which("openssl")
    or not shutil.which("mosquitto_passwd"),
    reason="needs /usr/sbin/mosquitto, mosquitto_passwd and openssl",
)


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def _sign(name: str, cwd: Path, extension: str) -> None:
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
         "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=cwd)  # fmt: skip
    (cwd / f"{name}.ext").write_text(extension + "\n")
    _run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext",
         cwd=cwd)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
         "-out", "ca.crt", "-days", "1", "-subj", "/CN=test-ca", cwd=d)  # fmt: skip
    _sign("server", d, "subjectAltName=IP:127.0.0.1")
    _sign("client", d, "extendedKeyUsage=clientAuth")
    _run("mosquitto_passwd", "-b", "-c", "passwords", "site-user", "s3cret", cwd=d)
    return d


@pytest.fixture
def tls_broker(pki: Path, tmp_path: Path) -> Iterator[OwnedMosquitto]:
    broker = OwnedMosquitto(
        tmp_path,
        free_port(),
        f"cafile {pki / 'ca.crt'}\ncertfile {pki / 'server.crt'}\nkeyfile {pki / 'server.key'}\n"
        f"require_certificate true\ntls_version tlsv1.2\npassword_file {pki / 'passwords'}\n",
    )
    broker.url = broker.url.replace("mqtt://", "mqtts://")
    broker.start()
    yield broker
    broker.stop()


def _tls(pki: Path, **overrides: object) -> dict[str, object]:
    return {
        "tls_ca": str(pki / "ca.crt"),
        "tls_cert": str(pki / "client.crt"),
        "tls_key": str(pki / "client.key"),
        "username": "site-user",
        "password": "s3cret",
        **overrides,
    }


def test_setpoints_flow_over_tls_with_client_certificate_and_password(
    tls_broker: OwnedMosquitto,
    pki: Path,
    make_connector: Callable[..., tuple[MqttConnector, RecordingHandler]],
    make_settings: Callable[..., MqttSettings],
) -> None:
    got: list[Setpoint] = []
    connector, handler = make_connector(tls_broker.url, **_tls(pki))
    gateway = GatewayClient(make_settings(tls_broker.url, **_tls(pki)), "s1", got.append)
    gateway.start()
    try:
        assert wait_until(lambda: handler.online("s1") is True)
        assert connector.protocol == "5"
        connector.publish([setpoint("c1", seq=1)])
        assert wait_until(lambda: len(got) == 1)
    finally:
        gateway.stop()


# paho 2.2 leaves the socket of a failed TLS handshake to the garbage collector (its
# _ssl_wrap_socket raises from do_handshake() without closing it): a ResourceWarning per retry.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    "wrong",
    [{"password": "nope"}, {"tls_ca": None}],
    ids=["bad-password", "untrusted-broker-certificate"],
)
def test_refused_credentials_never_connect_and_never_fall_back(
    tls_broker: OwnedMosquitto,
    pki: Path,
    make_connector: Callable[..., tuple[MqttConnector, RecordingHandler]],
    wrong: dict[str, object],
) -> None:
    connector, _ = make_connector(tls_broker.url, **_tls(pki, **wrong))
    assert not connector.wait_connected(0.7)
    # A refusal for credentials is not a refusal of MQTT 5: no protocol was settled on.
    assert connector.protocol is None
