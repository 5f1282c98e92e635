"""The notebooks run top to bottom from the repository root without a cell error, and are stored clean.

Each is executed in a fresh Jupyter kernel (nbclient + ipykernel); together they take about two
minutes on a 2-core CPU, so they run in the default suite.
"""
from __future__ import annotations

import re

import pytest
from conftest import REPO

nbformat = pytest.importorskip("nbformat")
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
NAMES = ["01_quickstart", "02_channels", "03_train_a_codec", "04_task_kb"]


def test_the_four_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == NAMES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs_and_only_the_public_api(path):
    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"
            # `import semsim` and its error classes only; no private modules
            for module in re.findall(r"(?:from|import)\s+(semsim\.[\w.]+)", cell.source):
                assert module == "semsim.errors", f"{path.name} imports {module}; use the public API"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path):
    from nbclient import NotebookClient

    book = nbformat.read(path, as_version=4)
    # a cell error raises CellExecutionError naming the cell and the traceback
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
