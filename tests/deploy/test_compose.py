"""docker/: the compose stack, its .env example, the Dockerfile and the Mosquitto files.

No Docker engine runs here, so the files are checked, not started (docker/README.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILES = ["compose.yaml", "compose.multi-site.yaml"]
SECRET_WORDS = ("PASSWORD", "TOKEN", "PASSPHRASE", "SECRET")


def _compose(name: str = "compose.yaml") -> dict:
    data = yaml.safe_load((DOCKER / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _env_example() -> dict[str, str]:
    values = {}
    for line in (DOCKER / ".env.example").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example: not KEY=value: {line}"
        values[key] = value
    return values


def _referenced_vars(text: str) -> set[str]:
    # ${VAR}, ${VAR:-default}, ${VAR:?message}; $$ escapes a literal dollar.
    return set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


def test_every_service_has_a_healthcheck() -> None:
    services = _compose()["services"]
    expected = {"aggregator", "postgres", "mosquitto", "influxdb", "grafana", "demo"}
    assert expected <= set(services)
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and check.get("test"), f"service {name} has no healthcheck"
        assert not check.get("disable"), name


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_referenced_variable_is_in_the_env_example(name: str) -> None:
    referenced = _referenced_vars((DOCKER / name).read_text(encoding="utf-8"))
    assert referenced, name
    missing = referenced - set(_env_example())
    assert not missing, f"{name} uses {sorted(missing)}, not in docker/.env.example"


def test_env_example_holds_no_secret_values() -> None:
    for key, value in _env_example().items():
        if any(word in key for word in SECRET_WORDS):
            assert value == "", f".env.example gives {key} a value"
    ignored = (DOCKER / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored and "certs/" in ignored


def test_no_secret_is_written_into_compose() -> None:
    for name in COMPOSE_FILES:
        for service in (_compose(name).get("services") or {}).values():
            env = service.get("environment") or {}
            assert isinstance(env, dict)
            for key, value in env.items():
                if any(word in key for word in SECRET_WORDS):
                    assert isinstance(value, str) and value.startswith("${"), (name, key)


def test_stack_wiring() -> None:
    services = _compose()["services"]
    agg = services["aggregator"]
    assert agg["build"]["dockerfile"] == "docker/Dockerfile"
    assert set(agg["depends_on"]) == {"postgres", "mosquitto", "influxdb"}
    assert "/etc/aggregator/config/single-site.yaml" in agg["command"]
    assert services["demo"]["profiles"] == ["demo"]
    for name, service in services.items():
        if name != "demo":
            assert "profiles" not in service, name
    # Persistence: every stateful service keeps its data on a named volume.
    volumes = set(_compose()["volumes"])
    for name, target in [
        ("postgres", "/var/lib/postgresql/data"),
        ("mosquitto", "/mosquitto/data"),
        ("influxdb", "/var/lib/influxdb2"),
        ("aggregator", "/var/lib/aggregator"),
    ]:
        mounts = [m.split(":") for m in services[name]["volumes"]]
        assert any(m[0] in volumes and m[1] == target for m in mounts), name
    influx = services["influxdb"]["environment"]
    assert influx["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    for key in ("BUCKET", "ORG", "ADMIN_TOKEN", "USERNAME", "PASSWORD"):
        assert influx[f"DOCKER_INFLUXDB_INIT_{key}"], key
    # Bind mounts name files that exist in the repository (certs/ is the operator's).
    for name in COMPOSE_FILES:
        for service in _compose(name)["services"].values():
            for mount in service.get("volumes") or []:
                source = mount.split(":")[0]
                if source.startswith(".") and "/certs/" not in source + "/":
                    assert (DOCKER / source).exists(), mount


def test_grafana_is_provisioned_from_docker_grafana() -> None:
    grafana = _compose()["services"]["grafana"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in grafana["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    assert mounts["/var/lib/grafana/dashboards/aggregator"] == "./grafana/dashboards"
    env = grafana["environment"]
    for key in ("INFLUXDB_URL", "INFLUXDB_ORG", "INFLUXDB_BUCKET", "INFLUXDB_TOKEN"):
        assert key in env
    influx = _compose()["services"]["influxdb"]["environment"]
    assert env["INFLUXDB_ORG"] == influx["DOCKER_INFLUXDB_INIT_ORG"]
    assert env["INFLUXDB_BUCKET"] == influx["DOCKER_INFLUXDB_INIT_BUCKET"]


def test_multi_site_override_runs_the_multi_site_config() -> None:
    agg = _compose("compose.multi-site.yaml")["services"]["aggregator"]
    config = agg["command"][-1].rsplit("/", 1)[-1]
    assert (ROOT / "config" / config).exists()
    assert {"AGGREGATOR_OSCP__TOKEN", "AGGREGATOR_OSCP__CP_TOKEN"} <= set(agg["environment"])
    base = _compose()["services"]["aggregator"]["environment"]
    # An AGGREGATOR_OSCP__* variable, even empty, would create an oscp section.
    assert not [k for k in base if k.startswith("AGGREGATOR_OSCP__")]


def test_dockerfile() -> None:
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*", text, re.M)
    assert "/healthz" in text.split("HEALTHCHECK", 1)[1]
    assert re.search(r"^RUN pip install \.", text, re.M)
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    for needed in ("aggregator/", "models/", "connectors/", "pyproject.toml"):
        assert f"!{needed}" in ignore


def _conf_lines(path: Path) -> list[list[str]]:
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line.split())
    return lines


def test_mosquitto_conf_parses() -> None:
    lines = _conf_lines(DOCKER / "mosquitto" / "mosquitto.conf")
    known = {
        "persistence", "persistence_location", "autosave_interval", "log_dest", "log_type",
        "per_listener_settings", "allow_anonymous", "password_file", "acl_file", "listener",
        "protocol", "certfile", "keyfile", "cafile", "tls_version", "max_inflight_messages",
        "max_queued_messages",
    }  # fmt: skip
    settings: dict[str, list[str]] = {}
    for words in lines:
        assert words[0] in known, f"unknown mosquitto option {words[0]}"
        assert len(words) >= 2, words
        settings.setdefault(words[0], []).append(" ".join(words[1:]))
    assert settings["persistence"] == ["true"]
    assert settings["allow_anonymous"] == ["false"]
    assert settings["listener"] == ["8883"]
    assert settings["tls_version"] == ["tlsv1.2"]
    # The files it names are where compose and the entrypoint put them.
    mosquitto = _compose()["services"]["mosquitto"]
    targets = {m.split(":")[1] for m in mosquitto["volumes"]}
    assert settings["acl_file"] == ["/mosquitto/config/acl"]
    assert "/mosquitto/config/acl" in targets
    assert settings["persistence_location"][0].rstrip("/") in targets
    for key in ("certfile", "keyfile", "cafile"):
        assert settings[key][0].startswith("/mosquitto/certs/")
    entrypoint = (DOCKER / "mosquitto" / "entrypoint.sh").read_text(encoding="utf-8")
    assert settings["password_file"][0] in entrypoint


def test_mosquitto_acl_parses() -> None:
    lines = _conf_lines(DOCKER / "mosquitto" / "acl")
    assert lines
    for words in lines:
        assert words[0] in {"user", "topic", "pattern"}, words
        if words[0] in {"topic", "pattern"}:
            rest = words[1:]
            if rest[0] in {"read", "write", "readwrite", "deny"}:
                rest = rest[1:]
            assert len(rest) == 1 and rest[0].startswith("aggregator/"), words
    patterns = [w for w in lines if w[0] == "pattern"]
    assert all("%u" in w[-1] for w in patterns), "every pattern is confined to the user's site"


def test_readme_says_the_image_is_not_built_here() -> None:
    text = (DOCKER / "README.md").read_text(encoding="utf-8")
    assert "no Docker engine" in text
