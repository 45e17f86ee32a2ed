"""config/*.yaml: each deployment-shape example loads through the real settings loader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aggregator.scenario import load_scenario
from aggregator.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ["embedded-demo.yaml", "single-site.yaml", "multi-site-ocpp.yaml"]
# Dummy values for the environment variables the examples name (never real secrets).
DUMMY_ENV = {
    "PGPASSWORD": "dummy",
    "AGGREGATOR_MQTT__PASSWORD": "dummy-mqtt",
    "AGGREGATOR_TIMESERIES__TOKEN": "dummy-token",
    "AGGREGATOR_OPENADR__PASSPHRASE": "dummy-passphrase",
    "AGGREGATOR_OSCP__TOKEN": "dummy-oscp-token",
    "AGGREGATOR_OSCP__CP_TOKEN": "dummy-cp-token",
}


def _referenced_env(text: str) -> set[str]:
    names = set(re.findall(r"\b(AGGREGATOR_[A-Z0-9_]+|PG[A-Z]+)\b", text))
    # Mentioned for optional use (basic-auth chargers), not needed by the example itself.
    names.discard("AGGREGATOR_OCPP__CHARGERS")
    return names


@pytest.fixture
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("AGGREGATOR_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_loads_with_its_environment(clean_env, name) -> None:
    path = ROOT / "config" / name
    text = path.read_text(encoding="utf-8")
    for env in _referenced_env(text):
        assert env in DUMMY_ENV, f"{name} names {env}: add a dummy value here"
        clean_env.setenv(env, DUMMY_ENV[env])
    settings = load_settings(path)
    assert settings.fleet is not None
    fleet = load_scenario(settings.fleet)
    sites = {s.site_id for s in fleet.sites}
    chargers = {c.charger_id for c in fleet.chargers}
    if settings.ocpp is not None:
        for cp_id, charger in settings.ocpp.chargers.items():
            assert (charger.charger_id or cp_id) in chargers
    if settings.oscp is not None:
        for group, site_ids in settings.oscp.groups.items():
            assert set(site_ids) <= sites, group
        assert settings.oscp.token.get_secret_value() == DUMMY_ENV["AGGREGATOR_OSCP__TOKEN"]
    if settings.timeseries.backend == "influxdb":
        assert settings.timeseries.token is not None
        assert settings.timeseries.token.get_secret_value() == "dummy-token"
    if settings.mqtt.url is not None:
        assert settings.mqtt.password == "dummy-mqtt"


def test_production_examples_keep_secrets_out_of_the_file() -> None:
    for name in ("single-site.yaml", "multi-site-ocpp.yaml"):
        data_lines = [
            line.split("#", 1)[0]
            for line in (ROOT / "config" / name).read_text(encoding="utf-8").splitlines()
        ]
        body = "\n".join(data_lines)
        assert not re.search(r"^\s*(password|passphrase|token|cp_token)\s*:", body, re.M), name
        assert not re.search(r"postgresql\+psycopg://[^@/]*:[^@/]*@", body), name


def test_production_examples_need_their_secrets(clean_env) -> None:
    # Without the OSCP tokens in the environment the multi-site example must not load.
    from aggregator.settings import SettingsError

    with pytest.raises(SettingsError, match="oscp"):
        load_settings(ROOT / "config" / "multi-site-ocpp.yaml")
