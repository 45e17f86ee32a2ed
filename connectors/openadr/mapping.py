"""How OpenADR programs and targets map onto our fleet: the ``openadr`` config section.

The VTN speaks in programs (market contexts), ``SIMPLE`` levels and target resources/groups;
the planner speaks in kW and site ids. This module holds the site-specific glue, validated once
at start-up. YAML shape (every key optional)::

    programs:
      peak:                                   # program name, used in logs and DrEvent.program
        market_context: http://vtn.example/peak   # defaults to the program name
        simple_levels:                        # SIMPLE level -> exactly one of shed_kw, cap_kw
          1: {shed_kw: 50}
          2: {shed_kw: 100}
          3: {cap_kw: 0}
        price_mode: replace                   # `price` signals replace the import price, or `add`
        price_unit: per_mwh                   # unit of prices sent without an item base
      "*": {...}                              # default for market contexts not listed
    resources:                                # target resourceID -> site ids
      charger-park-north: [site-a, site-b]
    groups:                                   # target groupID -> site ids
      depot-fleet: [site-a]

Level 0 always means "no limit" and cannot be configured. Targets by ``venID``/``partyID``, or
no targets at all, mean every site.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

PriceMode = Literal["replace", "add"]
PriceUnit = Literal["per_mwh", "per_kwh"]
DEFAULT_PROGRAM = "*"
SIMPLE_LEVELS = (1, 2, 3)


class OpenAdrConfigError(ValueError):
    """An ``openadr`` config section that cannot be used; the text names the key and why."""


@dataclass(frozen=True, slots=True)
class LevelAction:
    """What one ``SIMPLE`` level asks of the targeted sites: a cap or a shed. [kW]"""

    cap_kw: float | None = None
    shed_kw: float | None = None


@dataclass(frozen=True, slots=True)
class ProgramMapping:
    """Per-program rules: ``SIMPLE`` levels, and how price signals combine and are quoted."""

    name: str
    market_context: str
    simple_levels: Mapping[int, LevelAction] = field(default_factory=dict)
    price_mode: PriceMode = "replace"
    price_unit: PriceUnit = "per_mwh"


def _frozen(mapping: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class OpenAdrMapping:
    """Programs by name, and target ``resourceID``/``groupID`` -> site ids."""

    programs: Mapping[str, ProgramMapping] = field(default_factory=dict)
    resources: Mapping[str, frozenset[str]] = field(default_factory=dict)
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read-only views, so a shared mapping cannot be changed behind the translator's back.
        object.__setattr__(self, "programs", _frozen(self.programs))
        object.__setattr__(self, "resources", _frozen(self.resources))
        object.__setattr__(self, "groups", _frozen(self.groups))

    def program_for(self, market_context: str | None) -> ProgramMapping | None:
        """The program an event's market context belongs to, the ``*`` default, or None."""
        if market_context is not None:
            for program in self.programs.values():
                if program.market_context == market_context:
                    return program
            if market_context in self.programs:
                return self.programs[market_context]
        return self.programs.get(DEFAULT_PROGRAM)

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> OpenAdrMapping:
        """Build from the ``openadr`` config section (a dict, e.g. loaded from YAML)."""
        if section is None:
            return cls()
        _require_mapping(section, "openadr")
        unknown = set(section) - {"programs", "resources", "groups"}
        if unknown:
            raise OpenAdrConfigError(f"openadr: unknown keys {sorted(map(str, unknown))}")
        programs = {
            str(name): _program(str(name), body)
            for name, body in _section(section, "programs").items()
        }
        return cls(
            programs=programs,
            resources=_site_lists(section, "resources"),
            groups=_site_lists(section, "groups"),
        )


def _require_mapping(value: Any, where: str) -> None:
    if not isinstance(value, Mapping):
        raise OpenAdrConfigError(f"{where}: expected a mapping, got {type(value).__name__}")


def _section(parent: Mapping[str, Any], key: str, where: str = "openadr") -> Mapping[Any, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    _require_mapping(value, f"{where}.{key}")
    return value  # type: ignore[no-any-return]


def _site_lists(section: Mapping[str, Any], key: str) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for target, sites in _section(section, key).items():
        where = f"openadr.{key}.{target}"
        if isinstance(sites, str) or not isinstance(sites, list | tuple) or not sites:
            raise OpenAdrConfigError(f"{where}: expected a non-empty list of site ids")
        if not all(isinstance(s, str) and s for s in sites):
            raise OpenAdrConfigError(f"{where}: site ids must be non-empty strings")
        out[str(target)] = frozenset(sites)
    return out


def _program(name: str, body: Any) -> ProgramMapping:
    where = f"openadr.programs.{name}"
    _require_mapping(body, where)
    unknown = set(body) - {"market_context", "simple_levels", "price_mode", "price_unit"}
    if unknown:
        raise OpenAdrConfigError(f"{where}: unknown keys {sorted(map(str, unknown))}")
    market_context = body.get("market_context", name)
    if not isinstance(market_context, str) or not market_context:
        raise OpenAdrConfigError(f"{where}.market_context: expected a non-empty string")
    price_mode = body.get("price_mode", "replace")
    if price_mode not in ("replace", "add"):
        raise OpenAdrConfigError(f"{where}.price_mode: expected 'replace' or 'add'")
    price_unit = body.get("price_unit", "per_mwh")
    if price_unit not in ("per_mwh", "per_kwh"):
        raise OpenAdrConfigError(f"{where}.price_unit: expected 'per_mwh' or 'per_kwh'")
    levels = {
        _level(key, where): _action(action, f"{where}.simple_levels.{key}")
        for key, action in _section(body, "simple_levels", where).items()
    }
    return ProgramMapping(
        name=name,
        market_context=market_context,
        simple_levels=MappingProxyType(levels),
        price_mode=price_mode,
        price_unit=price_unit,
    )


def _level(key: Any, where: str) -> int:
    try:
        level = int(key)
    except (TypeError, ValueError):
        level = -1
    if level not in SIMPLE_LEVELS or isinstance(key, bool):
        raise OpenAdrConfigError(f"{where}.simple_levels.{key}: levels are 1, 2 or 3")
    return level


def _action(value: Any, where: str) -> LevelAction:
    _require_mapping(value, where)
    if set(value) not in ({"cap_kw"}, {"shed_kw"}):
        raise OpenAdrConfigError(f"{where}: give exactly one of cap_kw, shed_kw")
    (key, number), *_ = value.items()
    bad = isinstance(number, bool) or not isinstance(number, int | float)
    if bad or not math.isfinite(number):
        raise OpenAdrConfigError(f"{where}.{key}: expected a finite number [kW]")
    if key == "shed_kw":
        if number < 0:
            raise OpenAdrConfigError(f"{where}.shed_kw: must be >= 0 [kW]")
        return LevelAction(shed_kw=float(number))
    return LevelAction(cap_kw=float(number))
