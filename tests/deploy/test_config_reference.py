"""docs/configuration.md is generated from the settings model and must match it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aggregator import config_reference
from aggregator.settings import RuntimeSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "configuration.md"


def test_committed_reference_equals_the_generated_one() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == config_reference.render(), (
        "docs/configuration.md is stale: run "
        "`python -m aggregator.config_reference > docs/configuration.md`"
    )


def test_module_entry_point_prints_the_reference() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "aggregator.config_reference"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
    ).stdout
    assert out == config_reference.render()


def _leaf_paths(model: type, prefix: str = "") -> set[str]:
    keys = set()
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        keys.add(prefix + name)
        sub = config_reference._model_of(info.annotation)
        if sub is not None:
            keys |= _leaf_paths(sub, f"{prefix}{name}.")
        dict_sub = config_reference._dict_model_of(info.annotation)
        if dict_sub is not None:
            keys |= _leaf_paths(dict_sub, f"{prefix}{name}.<id>.")
    return keys


def test_every_key_is_listed_once_with_a_description() -> None:
    entries = config_reference.entries()
    keys = [e.key for e in entries]
    assert len(keys) == len(set(keys))
    assert set(keys) == _leaf_paths(RuntimeSettings)
    undocumented = [e.key for e in entries if not e.description or e.description.startswith("(")]
    assert undocumented == []
    stale = set(config_reference.SUPPLEMENT) - set(keys)
    assert stale == set(), "SUPPLEMENT names keys the settings model no longer has"


def test_secrets_are_marked() -> None:
    secret = {e.key for e in config_reference.entries() if e.secret}
    assert {"mqtt.password", "openadr.passphrase", "timeseries.token", "oscp.token"} <= secret
    assert "ocpp.chargers.<id>.password" in secret
    assert "database_url" not in secret  # explained in the header instead


@pytest.mark.parametrize(
    ("env", "value", "read"),
    [
        ("AGGREGATOR_DATABASE_URL", "sqlite:///x.db", lambda s: s.database_url),
        ("AGGREGATOR_MQTT__URL", "mqtt://broker:1883", lambda s: s.mqtt.url),
        ("AGGREGATOR_SETTLEMENT__METER__X_DAYS", "4", lambda s: str(s.settlement.meter.x_days)),
        (
            "AGGREGATOR_TIMESERIES__TOKEN",
            "tok",
            lambda s: s.timeseries.token.get_secret_value(),
        ),
    ],
)
def test_listed_environment_variables_are_read(monkeypatch, env, value, read) -> None:
    assert env in {e.env for e in config_reference.entries()}
    monkeypatch.setenv(env, value)
    assert read(load_settings(None)) == value
