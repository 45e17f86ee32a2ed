"""The layer contracts of DESIGN.md hold, and the code is lint- and type-clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)


def test_import_linter_contracts_hold() -> None:
    result = _run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_import_linter_catches_a_broken_contract(tmp_path: Path) -> None:
    # The contracts must be able to fail: a domain module importing numpy breaks the first one.
    bad = ROOT / "aggregator" / "domain" / "_contract_probe.py"
    bad.write_text("import numpy\n")
    try:
        result = _run(str(BIN / "lint-imports"), "--no-cache")
    finally:
        bad.unlink()
    assert result.returncode != 0
    assert "BROKEN" in result.stdout


def test_ruff_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_strict_is_clean() -> None:
    result = _run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr
