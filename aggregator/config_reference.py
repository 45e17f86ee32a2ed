"""The configuration reference, generated from the settings model.

``python -m aggregator.config_reference > docs/configuration.md`` writes it;
``tests/deploy/test_config_reference.py`` regenerates it and requires the committed file to be
equal, so the reference cannot drift from ``aggregator/settings.py``.
"""

from __future__ import annotations

import enum
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from aggregator.settings import RuntimeSettings

ENV_PREFIX = "AGGREGATOR_"
ENV_NESTING = "__"
# Plain-string fields that hold a secret (the model types the others as SecretStr).
_SECRET_NAMES = frozenset({"password", "passphrase", "token", "cp_token"})
# Descriptions for keys whose Field has none (the model's own description always wins).
# tests/deploy/test_config_reference.py checks every key has one and none here is stale.
SUPPLEMENT = {
    "log_level": "Python logging level: DEBUG, INFO, WARNING, ERROR",
    "mqtt": "The MQTT client and, with no url, the embedded broker (docs/mqtt.md)",
    "mqtt.client_id": "stable, unique client id (persistent session on the broker)",
    "mqtt.username": "broker account; use only over TLS",
    "mqtt.password": "broker password; set it as AGGREGATOR_MQTT__PASSWORD",
    "mqtt.tls_ca": "CA that issued the broker's certificate (else the system trust store)",
    "mqtt.tls_cert": "client certificate (PEM) for brokers that require one",
    "mqtt.tls_key": "its private key (PEM)",
    "mqtt.protocol": "auto: MQTT 5, falling back to 3.1.1 when the broker refuses it",
    "planning": "The planner's grid and the control loop's periods (docs/runtime.md)",
    "planning.step_minutes": "slot length",
    "planning.horizon_hours": "how far ahead each plan looks",
    "planning.default_target_soc": "target for a vehicle without a departure constraint",
    "planning.default_arrival_soc": "SoC assumed for an arrival that reports none",
    "openadr.ven_name": "our VEN name, as registered with the VTN operator",
    "openadr.cert": "VEN client certificate (PEM): mutual TLS and message signing",
    "openadr.key": "its private key (PEM)",
    "openadr.ca_file": "CA that issued the VTN's certificate (else the system trust store)",
    "settlement.meter.skip_weekends": "leave Saturdays and Sundays out of the eligible days",
    "api.enabled": "serve the HTTP API and dashboard",
}


@dataclass(frozen=True)
class Entry:
    key: str
    type: str
    default: str
    description: str
    env: str
    secret: bool


def _optional_inner(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (annotation, False)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def _model_of(annotation: Any) -> type[BaseModel] | None:
    inner, _ = _optional_inner(annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return inner
    return None


def _dict_model_of(annotation: Any) -> type[BaseModel] | None:
    """The value model of ``dict[str, Model]``."""
    inner, _ = _optional_inner(annotation)
    if get_origin(inner) is dict:
        value = get_args(inner)[1]
        if isinstance(value, type) and issubclass(value, BaseModel):
            return value
    return None


def _type_name(annotation: Any) -> str:
    inner, optional = _optional_inner(annotation)
    suffix = " \\| null" if optional else ""
    origin = get_origin(inner)
    if origin is Literal:
        return " \\| ".join(repr(a).replace("'", '"') for a in get_args(inner)) + suffix
    if origin is dict:
        key, value = get_args(inner)
        return f"mapping {_type_name(key)} → {_type_name(value)}{suffix}"
    if origin is list:
        return f"list of {_type_name(get_args(inner)[0])}{suffix}"
    if inner is Any:
        return "any"
    if inner is SecretStr:
        return "secret string" + suffix
    if inner is Path:
        return "path" + suffix
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return "section" + suffix
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        return " \\| ".join(str(m.value) for m in inner) + suffix
    if isinstance(inner, type):
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(
            inner.__name__, inner.__name__
        ) + suffix
    return str(inner) + suffix


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    factory = info.default_factory
    value = factory() if factory is not None else info.default  # type: ignore[call-arg]
    if value is PydanticUndefined:
        return "**required**"
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, dict | list) and not value:
        return "empty"
    if isinstance(value, Path):
        return f"`{value.as_posix()}`"
    return f"`{value}`"


def _constraints(info: FieldInfo) -> str:
    parts = []
    for item in info.metadata:
        for name, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            bound = getattr(item, name, None)
            if bound is not None:
                parts.append(f"{sign} {bound}")
    return ", ".join(parts)


def _env(path: list[str]) -> str:
    if any(part.startswith("<") for part in path):
        return ""
    return ENV_PREFIX + ENV_NESTING.join(p.upper() for p in path)


def _walk(model: type[BaseModel], path: list[str]) -> list[Entry]:
    entries: list[Entry] = []
    for name, info in model.model_fields.items():
        here = [*path, name]
        annotation = info.annotation
        inner, _ = _optional_inner(annotation)
        secret = inner is SecretStr or name in _SECRET_NAMES
        description = info.description or SUPPLEMENT.get(".".join(here), "")
        bounds = _constraints(info)
        if bounds:
            description = f"{description} ({bounds})" if description else f"({bounds})"
        sub = _model_of(annotation)
        dict_sub = _dict_model_of(annotation)
        env = _env(here)
        if sub is not None or dict_sub is not None:
            doc = (sub.__doc__ or "").strip() if sub is not None else ""
            if sub is not None and _optional_inner(annotation)[1]:
                doc = (doc + " Unset: off.").strip()
            entries.append(
                Entry(
                    key=".".join(here),
                    type=_type_name(annotation),
                    default=_default(info),
                    description=" ".join((description or doc).split()),
                    env=f"{env} (JSON)" if env else "",
                    secret=False,
                )
            )
            if sub is not None:
                entries.extend(_walk(sub, here))
            else:
                assert dict_sub is not None
                entries.extend(_walk(dict_sub, [*here, "<id>"]))
            continue
        complex_value = get_origin(inner) in (dict, list)
        entries.append(
            Entry(
                key=".".join(here),
                type=_type_name(annotation),
                default=_default(info),
                description=" ".join(description.split()),
                env=f"{env} (JSON)" if env and complex_value else env,
                secret=secret,
            )
        )
    return entries


def entries() -> list[Entry]:
    """Every key of ``RuntimeSettings``, depth first in the model's order."""
    return _walk(RuntimeSettings, [])


_HEADER = """\
# Configuration reference

<!-- Generated by `python -m aggregator.config_reference > docs/configuration.md` from
aggregator/settings.py. Do not edit by hand: tests/deploy/test_config_reference.py fails when
this file differs from what the generator writes. -->

Settings come from a YAML file (`aggregator run --config FILE`) and from environment variables,
and **the environment wins**. A variable is `AGGREGATOR_` followed by the key's dotted path in
upper case with `__` for each dot: `mqtt.url` is `AGGREGATOR_MQTT__URL`. Values that are
mappings or lists (marked JSON) take JSON in a variable. Entries under a mapping keyed by id
(`ocpp.chargers.<id>`) are set in the file, or as the whole mapping in JSON. Relative paths in
the file (`fleet`, `forecast.history_csv`) are relative to the file; other paths are relative
to the working directory. Unknown keys are refused, and every error names its key.

A section whose default is *unset* (`openadr`, `forecast`, `ocpp`, `oscp`) is off until it is
given; its **required** keys are required only then.

Variables marked **secret** are secrets: set them from the environment (an `.env` file that is not
committed, a secret store), never in a committed file. `database_url` may carry a password
too (`postgresql+psycopg://user:password@host/db`): give it as `AGGREGATOR_DATABASE_URL`.

Examples per deployment shape: `config/embedded-demo.yaml`, `config/single-site.yaml`,
`config/multi-site-ocpp.yaml`; how to run them: `docs/operations.md`.

"""


def render() -> str:
    """The whole reference as Markdown, grouped by top-level section."""
    rows = entries()
    out = [_HEADER]
    groups: dict[str, list[Entry]] = {}
    for entry in rows:
        top = entry.key.split(".")[0]
        group = (
            top
            if "." in entry.key or _model_of(RuntimeSettings.model_fields[top].annotation)
            else "(top level)"
        )
        groups.setdefault(group, []).append(entry)
    for group, items in groups.items():
        out.append(f"## `{group}`\n" if group != "(top level)" else "## Top level\n")
        out.append("| key | type | default | environment variable | description |")
        out.append("|---|---|---|---|---|")
        for e in items:
            env = f"`{e.env.removesuffix(' (JSON)')}`" if e.env else "(in the file)"
            if e.env.endswith(" (JSON)"):
                env += " (JSON)"
            if e.secret:
                env += " **secret**"
            desc = e.description.replace("|", "\\|")
            out.append(f"| `{e.key}` | {e.type} | {e.default} | {env} | {desc} |")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
