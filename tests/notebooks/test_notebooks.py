"""The traders' notebooks: committed without outputs, and every one runs from top to bottom.

Each notebook is executed with nbclient in a kernel on this interpreter (a kernelspec written
to a temporary folder names ``sys.executable``, so it is the venv's ipykernel, not whatever
``python3`` kernel the machine has), in ``notebooks/`` as Jupyter would, offline: the store
setting is removed from the kernel's environment. A cell that raises fails the test, and so
does anything a cell writes to stderr (warnings included).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
KERNEL = "aggregator-tests"
CELL_TIMEOUT_S = 300  # a guard against a hung cell, not a speed requirement


def test_the_three_notebooks_are_there() -> None:
    names = {p.stem for p in NOTEBOOKS}
    assert names == {"forecast_review", "v2g_arbitrage", "event_review"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name} cell {i} has outputs: strip them"
        assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    assert "widgets" not in nb.metadata


@pytest.fixture
def venv_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec on this interpreter, found first through ``JUPYTER_PATH``."""
    spec = tmp_path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (test venv)",
        "language": "python",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    return KERNEL


def run(path: Path, env: dict[str, str], kernel: str) -> tuple[nbformat.NotebookNode, float]:
    """Execute ``path`` in ``notebooks/`` with ``env``; raises on the first failing cell."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=kernel,  # nbclient starts, and shuts down, its own kernel
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(FOLDER)}},
    )
    start = time.perf_counter()
    client.execute(env=env)
    return nb, time.perf_counter() - start


def _figures(nb: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in o.get("data", {})
        for cell in nb.cells
        for o in cell.get("outputs", [])
        if o.get("output_type") in ("display_data", "execute_result")
    )


def _stderr(nb: nbformat.NotebookNode) -> list[str]:
    out = []
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stderr":
                out.append(f"cell {i}: {o['text']}")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_executes(path: Path, venv_kernel: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_DATABASE_URL"}
    nb, elapsed = run(path, env, venv_kernel)
    assert not _stderr(nb), "\n".join(_stderr(nb))
    assert _figures(nb) >= 1, f"{path.name} showed no figure"
    print(f"{path.name}: {elapsed:.1f} s")


@pytest.mark.slow
def test_event_review_reads_the_store_when_one_is_configured(
    venv_kernel: str, settled_store: str
) -> None:
    env = {**os.environ, "AGGREGATOR_DATABASE_URL": settled_store}
    nb, _ = run(FOLDER / "event_review.ipynb", env, venv_kernel)
    assert not _stderr(nb), "\n".join(_stderr(nb))
    text = "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        for o in cell.get("outputs", [])
    )
    assert "stored settlement of dr-morning-shed (modification 2" in text
    assert "offline comparison is skipped" in text
    assert _figures(nb) == 1
