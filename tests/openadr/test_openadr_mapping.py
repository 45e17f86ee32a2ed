"""The ``openadr`` config section -> OpenAdrMapping: the YAML shape, lookups and rejects."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from connectors.openadr.mapping import LevelAction, OpenAdrConfigError, OpenAdrMapping

YAML = """
programs:
  peak:
    market_context: http://vtn.example/programs/peak
    simple_levels:
      1: {shed_kw: 50}
      2: {shed_kw: 100}
      3: {cap_kw: 0}
  rtp:
    price_mode: add
    price_unit: per_kwh
resources:
  north: [site-a, site-b]
  1234: [site-c]
groups:
  depot: [site-a]
"""


def test_yaml_section_builds_the_mapping() -> None:
    mapping = OpenAdrMapping.from_config(yaml.safe_load(YAML))
    peak = mapping.program_for("http://vtn.example/programs/peak")
    assert peak is not None and peak.name == "peak"
    assert dict(peak.simple_levels) == {
        1: LevelAction(shed_kw=50.0),
        2: LevelAction(shed_kw=100.0),
        3: LevelAction(cap_kw=0.0),
    }
    assert (peak.price_mode, peak.price_unit) == ("replace", "per_mwh")
    rtp = mapping.program_for("rtp")  # market_context defaults to the program name
    assert rtp is not None and (rtp.price_mode, rtp.price_unit) == ("add", "per_kwh")
    assert mapping.resources["1234"] == {"site-c"}
    assert mapping.groups["depot"] == {"site-a"}
    assert mapping.program_for("urn:other") is None
    assert mapping.program_for(None) is None


def test_empty_or_missing_section_is_an_empty_mapping() -> None:
    assert OpenAdrMapping.from_config(None) == OpenAdrMapping()
    assert OpenAdrMapping.from_config({}).program_for("x") is None


def test_default_program_catches_unlisted_market_contexts() -> None:
    mapping = OpenAdrMapping.from_config({"programs": {"*": {"price_mode": "add"}}})
    program = mapping.program_for("urn:anything")
    assert program is not None and program.name == "*"


def test_mapping_is_read_only() -> None:
    mapping = OpenAdrMapping.from_config(yaml.safe_load(YAML))
    with pytest.raises(TypeError):
        mapping.resources["x"] = frozenset({"y"})  # type: ignore[index]


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ([], "openadr: expected a mapping, got list"),
        ({"program": {}}, "openadr: unknown keys ['program']"),
        ({"programs": {"p": {"simple_levels": {4: {"cap_kw": 1}}}}}, "simple_levels.4: levels"),
        ({"programs": {"p": {"simple_levels": {0: {"cap_kw": 1}}}}}, "simple_levels.0: levels"),
        (
            {"programs": {"p": {"simple_levels": {1: {"cap_kw": 1, "shed_kw": 2}}}}},
            "openadr.programs.p.simple_levels.1: give exactly one of cap_kw, shed_kw",
        ),
        ({"programs": {"p": {"simple_levels": {1: {"shed_kw": -5}}}}}, "shed_kw: must be >= 0"),
        ({"programs": {"p": {"simple_levels": {1: {"cap_kw": "x"}}}}}, "cap_kw: expected a"),
        ({"programs": {"p": {"price_mode": "max"}}}, "p.price_mode: expected 'replace' or 'add'"),
        ({"programs": {"p": {"price_unit": "ct"}}}, "p.price_unit: expected 'per_mwh' or"),
        ({"programs": {"p": {"market_context": ""}}}, "p.market_context: expected a non-empty"),
        ({"programs": {"p": {"levels": {}}}}, "openadr.programs.p: unknown keys ['levels']"),
        ({"resources": {"r": "site-a"}}, "openadr.resources.r: expected a non-empty list"),
        ({"groups": {"g": []}}, "openadr.groups.g: expected a non-empty list"),
        ({"groups": {"g": [""]}}, "openadr.groups.g: site ids must be non-empty strings"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(section: Any, expected: str) -> None:
    with pytest.raises(OpenAdrConfigError) as info:
        OpenAdrMapping.from_config(section)
    assert expected in str(info.value)
