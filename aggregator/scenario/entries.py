"""Where each domain object came from in the YAML, so domain errors name the user's entry.

A domain ``ValidationError`` says ``session s3: departure: must be after arrival``; the user
wrote ``sessions[2]`` with key ``departure``. ``Entries`` records, for every object built, its
YAML label and how domain field names map back to YAML keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from aggregator.domain import ValidationError
from aggregator.scenario.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class Where:
    """A YAML entry: its label, how domain field names map to its keys, and a key prefix."""

    label: str
    fields: Mapping[str, str] = field(default_factory=dict)
    prefix: str = ""

    def error(self, domain_field: str, reason: str) -> InputError:
        # Series fields come back as "pv_kw[3]": translate the name, keep the index.
        name, bracket, rest = domain_field.partition("[")
        key = f"{self.prefix}{self.fields.get(name, name)}{bracket}{rest}"
        return InputError(self.label, f"{key}: {reason}")


def label(section: str, index: int, ident: str) -> str:
    """``sessions[2] (id s3)``: how list entries are named in messages."""
    return f"{section}[{index}] (id {ident})"


class Entries:
    """Builds domain objects while remembering which YAML entry each one came from."""

    def __init__(self) -> None:
        self._by_entity: dict[str, Where] = {"problem": Where("")}

    def make(self, entity: str, where: Where, factory: Callable[[], T]) -> T:
        """``factory()``, with a ``ValidationError`` turned into an ``InputError`` at ``where``.

        ``entity`` is how the domain names the object in its errors (``"session s3"``).
        """
        self._by_entity[entity] = where
        try:
            return factory()
        except ValidationError as err:
            raise where.error(err.field, err.reason) from None

    def translate(self, err: ValidationError) -> InputError:
        """An error raised later (by ``FleetProblem``) about an object built here."""
        where = self._by_entity.get(err.entity, Where(err.entity))
        return where.error(err.field, err.reason)
