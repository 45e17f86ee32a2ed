"""The Grafana dashboard follows the time-series contract and the provisioned data source.

Every query (panels, annotations, variables) names measurements from docs/timeseries.md, and
only the tags and fields that document lists for them; every data source reference is the uid
the provisioning file creates. (The Flux itself is not run here: no InfluxDB in the tests.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "docker" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "influxdb.yaml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "aggregator.yaml"
CONTRACT = ROOT / "docs" / "timeseries.md"

MEASUREMENT = re.compile(r'(?:_measurement\s*==\s*|measurement:\s*)"([^"]+)"')
FIELD = re.compile(r'_field\s*==\s*"([^"]+)"')
COLUMN = re.compile(r"\br\.([A-Za-z][A-Za-z0-9_]*)")
TICKED = re.compile(r"`([^`]+)`")


def contract() -> dict[str, set[str]]:
    """Measurement -> the tag and field names docs/timeseries.md lists for it."""
    text = CONTRACT.read_text(encoding="utf-8")
    section = text.split("## Measurements", 1)[1]
    out: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        names = TICKED.findall(cells[1]) + TICKED.findall(cells[2])
        out[TICKED.findall(cells[0])[0]] = {n.split()[0] for n in names}
    return out


def panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in items:
        out.append(p)
        out.extend(panels(p.get("panels", [])))
    return out


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, Flux) of every panel target, annotation and query variable."""
    found = []
    for p in panels(dashboard["panels"]):
        for t in p.get("targets", []):
            found.append((f"panel {p['title']!r} target {t['refId']}", t["query"]))
    for a in dashboard["annotations"]["list"]:
        if "target" in a:
            found.append((f"annotation {a['name']!r}", a["target"]["query"]))
    for v in dashboard["templating"]["list"]:
        if v.get("type") == "query":
            found.append((f"variable {v['name']!r}", v["query"]))
    return found


def datasource_refs(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every ``datasource`` object in the dashboard, with where it is."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, dict):
                out.append((f"{path}.datasource", value))
            else:
                out.extend(datasource_refs(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(datasource_refs(value, f"{path}[{i}]"))
    return out


def provisioned_datasource() -> dict[str, Any]:
    doc = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))
    (source,) = doc["datasources"]
    return source


@pytest.fixture(params=DASHBOARDS, ids=lambda p: p.name)
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    return json.loads(request.param.read_text(encoding="utf-8"))


def test_there_is_a_dashboard_and_the_contract_lists_measurements() -> None:
    assert DASHBOARDS, "no dashboard JSON under docker/grafana/dashboards"
    measurements = contract()
    assert {"telemetry", "site_power", "setpoint", "plan", "price", "forecast"} <= set(measurements)
    assert {"power_kw", "site_id", "soc"} <= measurements["telemetry"]


def test_every_panel_query_names_contract_measurements_tags_and_fields(
    dashboard: dict[str, Any],
) -> None:
    measurements = contract()
    data_panels = [p for p in panels(dashboard["panels"]) if p["type"] != "row"]
    assert data_panels
    for p in data_panels:
        assert p.get("targets"), f"panel {p['title']!r} has no query"
    checked = 0
    for where, flux in queries(dashboard):
        named = set(MEASUREMENT.findall(flux))
        if where.startswith("variable") and not named:
            continue  # e.g. the bucket list: no measurement involved
        assert named, f"{where} names no measurement"
        unknown = named - set(measurements)
        assert not unknown, f"{where}: {sorted(unknown)} not in docs/timeseries.md"
        allowed = set().union(*(measurements[m] for m in named))
        fields = set(FIELD.findall(flux))
        assert fields <= allowed, f"{where}: fields {sorted(fields - allowed)} not in the contract"
        # r.<name> outside Flux's own columns (_time, _value, _field...) is a tag or field.
        columns = {c for c in COLUMN.findall(flux) if not c.startswith("_")} - {"name"}
        assert columns <= allowed, f"{where}: {sorted(columns - allowed)} not in the contract"
        checked += 1
    assert checked >= len(data_panels)


def test_the_required_views_are_there(dashboard: dict[str, Any]) -> None:
    text = json.dumps(dashboard)
    for needed in ('"site_power"', '"import_limit_kw"', '"soc"', '"grid_event"'):
        assert needed.replace('"', '\\"') in text, f"no query uses {needed}"


def test_every_datasource_reference_is_the_provisioned_uid(dashboard: dict[str, Any]) -> None:
    source = provisioned_datasource()
    assert source["type"] == "influxdb"
    assert source["jsonData"]["version"] == "Flux"
    refs = datasource_refs(dashboard)
    influx = [(where, ref) for where, ref in refs if ref.get("type") != "grafana"]
    assert influx
    for where, ref in influx:
        assert ref == {"type": "influxdb", "uid": source["uid"]}, where
    # Every panel with queries says which data source it uses.
    for p in panels(dashboard["panels"]):
        for t in p.get("targets", []):
            assert t.get("datasource", p.get("datasource")) is not None, p["title"]


def test_panel_ids_are_unique_and_the_provider_loads_a_folder(
    dashboard: dict[str, Any],
) -> None:
    ids = [p["id"] for p in panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"]
    providers = yaml.safe_load(PROVIDERS.read_text(encoding="utf-8"))["providers"]
    assert [p["type"] for p in providers] == ["file"]
    assert providers[0]["options"]["path"].startswith("/")


def test_secrets_come_from_the_environment() -> None:
    source = provisioned_datasource()
    assert source["secureJsonData"]["token"] == "${INFLUXDB_TOKEN}"
    assert source["url"].startswith("${")
