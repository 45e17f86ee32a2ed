"""Errors of scenario loading: one line naming the file, the entry and the reason."""

from __future__ import annotations


def one_line(text: str) -> str:
    """Collapse whitespace and line breaks so a message always fits on one terminal line."""
    return " ".join(text.split())


class ScenarioError(Exception):
    """A scenario that cannot be loaded. ``str(err)`` is ``<file>: <entry>: <reason>``."""

    def __init__(self, file: str, entry: str, reason: str) -> None:
        self.file = file
        self.entry = entry
        self.reason = one_line(reason)
        parts = [p for p in (file, one_line(entry), self.reason) if p]
        super().__init__(": ".join(parts))


class InputError(Exception):
    """A rejected entry of a scenario, before the loader adds the file name."""

    def __init__(self, entry: str, reason: str) -> None:
        self.entry = entry
        self.reason = reason
        super().__init__(f"{entry}: {reason}")


class DataError(ValueError):
    """Bad content in a referenced data file (CSV, JSON); the caller names the entry."""
