"""Load a YAML scenario into a ``FleetProblem``; any bad input becomes one ``ScenarioError``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import yaml
from pydantic_core import ErrorDetails

from aggregator.domain import FleetProblem
from aggregator.scenario.builder import build_problem
from aggregator.scenario.errors import InputError, ScenarioError
from aggregator.scenario.schema import ScenarioIn

# Top-level lists whose items are reported as "sessions[2] (id s3)".
_LISTS = ("sites", "chargers", "vehicles", "sessions", "events")


def load_scenario(path: Path) -> FleetProblem:
    """Read the scenario at ``path``. Files it names are relative to its folder.

    Raises ``ScenarioError`` with a one-line ``<file>: <entry>: <reason>`` message.
    """
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ScenarioError(shown, "", f"cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise ScenarioError(shown, "", f"cannot read: not UTF-8 text ({err.reason})") from None
    raw = parse_yaml(text, shown)
    try:
        doc = ScenarioIn.model_validate(raw)
    except pydantic.ValidationError as err:
        entry, reason = describe_validation_error(err, raw)
        raise ScenarioError(shown, entry, reason) from None
    try:
        return build_problem(doc, path.parent)
    except InputError as err:
        raise ScenarioError(shown, err.entry, err.reason) from None


def parse_yaml(text: str, shown: str) -> dict[str, Any]:
    """The YAML document as a mapping; syntax errors name the line and column."""
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "YAML"
        raise ScenarioError(shown, where, f"invalid YAML: {err.problem or err}") from None
    except yaml.YAMLError as err:
        raise ScenarioError(shown, "YAML", f"invalid YAML: {err}") from None
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else type(raw).__name__
        raise ScenarioError(shown, "top level", f"must be a mapping of keys, got {got}")
    return raw


def describe_validation_error(
    err: pydantic.ValidationError, raw: dict[str, Any]
) -> tuple[str, str]:
    """(entry, reason) for the first problem pydantic found; more problems are counted."""
    errors = err.errors(include_url=False)
    first = errors[0]
    entry, key = _locate(first["loc"], raw)
    reason = _reason(first)
    if key:
        reason = f"{key}: {reason}"
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more)"
    return entry, reason


def _locate(loc: tuple[int | str, ...], raw: dict[str, Any]) -> tuple[str, str]:
    """Split a pydantic location into the YAML entry and the key path inside it."""
    if len(loc) >= 2 and loc[0] in _LISTS and isinstance(loc[1], int):
        section, index = str(loc[0]), loc[1]
        entry = f"{section}[{index}]"
        item = _item(raw.get(section), index)
        if isinstance(item, dict) and "id" in item:
            entry += f" (id {item['id']})"
        return entry, _path(loc[2:])
    if len(loc) >= 1:
        return str(loc[0]), _path(loc[1:])
    return "top level", ""


def _item(section: Any, index: int) -> Any:
    return section[index] if isinstance(section, list) and 0 <= index < len(section) else None


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _reason(error: ErrorDetails) -> str:
    if error["type"] == "value_error":
        # Our own validators: the message already reads well without pydantic's prefix.
        reason = str(error.get("ctx", {}).get("error", error["msg"]))
    else:
        reason = error["msg"]
        reason = reason[:1].lower() + reason[1:]
        if error["type"] not in ("missing", "extra_forbidden") and _is_scalar(error["input"]):
            reason += f", got {error['input']!r}"
    return reason


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None
