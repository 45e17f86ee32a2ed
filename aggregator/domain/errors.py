"""Domain errors: every rejection names the entity, the field and the reason."""

from __future__ import annotations


class DomainError(ValueError):
    """Base class of all errors raised by domain validation."""


class ValidationError(DomainError):
    """A value that breaks a domain rule.

    ``entity`` names the object (``"session s1"``), ``field`` the attribute, ``reason`` the rule.
    """

    def __init__(self, entity: str, field: str, reason: str) -> None:
        self.entity = entity
        self.field = field
        self.reason = reason
        super().__init__(f"{entity}: {field}: {reason}")
