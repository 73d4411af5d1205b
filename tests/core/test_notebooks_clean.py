"""The notebooks are the source: committed clean (no outputs), valid, with stable ids, one `parameters` cell,
the same Colab cells first, a "What you will learn" opening and an "Exercises" close."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
CELL_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def test_the_five_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == ["00_quickstart", "01_canonicalization", "02_finetune_gpu",
                                           "03_ablations", "04_visualization"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_and_valid(path):
    nb = read(path)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) >= (4, 5), f"{path.name}: nbformat 4.5+ (cell ids) expected"
    for k, cell in enumerate(nb.cells):
        where = f"{path.name}, cell {k} ({cell.get('id')})"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{where}: committed with outputs (nbstripout, see README)"
            assert cell.execution_count is None, f"{where}: committed with an execution count"
        assert cell.source.strip(), f"{where}: empty cell"
    ids = [c.get("id", "") for c in nb.cells]
    assert all(CELL_ID.match(i) for i in ids), f"{path.name}: cell ids must be short readable slugs: {ids}"
    assert len(set(ids)) == len(ids), f"{path.name}: duplicate cell ids"
    # Metadata a run leaves behind (widget state, execution timings) stays out of the commit too.
    assert "widgets" not in nb.metadata, f"{path.name}: widget state in the notebook metadata"
    assert not any("execution" in c.get("metadata", {}) for c in nb.cells), f"{path.name}: execution timings"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    nb = read(path)
    cells = nb.cells
    params = [c for c in cells if "parameters" in tags(c)]
    assert len(params) == 1 and params[0].cell_type == "code", f"{path.name}: exactly one code cell tagged parameters"
    # Opens with the title and what the reader will learn, then the Colab cells, before any other code.
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    assert "## What you will learn" in cells[0].source, f"{path.name}: no 'What you will learn' in the first cell"
    assert [(c.cell_type, tags(c)) for c in cells[1:3]] == [("markdown", ["colab"]), ("code", ["colab"])], \
        f"{path.name}: cells 1-2 must be the Colab note and the Colab install cell"
    first_code = next(c for c in cells if c.cell_type == "code")
    assert "colab" in tags(first_code), f"{path.name}: the Colab cell must be the first code cell"
    # Closes with exercises that ask for a prediction.
    assert "## Exercises" in cells[-1].source and "predict" in cells[-1].source.lower(), \
        f"{path.name}: the last cell must hold the exercises"
    # Shared code lives in the library: no cell defines functions or classes.
    for c in cells:
        if c.cell_type == "code" and "colab" not in tags(c):
            assert not re.search(r"^\s*(def|class) ", c.source, re.M), f"{path.name}, cell {c.id}: library code"


def test_the_colab_cells_are_the_same_everywhere_and_install_only_the_toolkit():
    colab = {p.name: [c.source for c in read(p).cells if "colab" in tags(c)] for p in NOTEBOOKS}
    first = next(iter(colab.values()))
    assert all(v == first for v in colab.values()), "the Colab cells differ between notebooks"
    install = first[1]
    # It runs before the toolkit is installed, so it must not import it; it clones nothing (no public URL yet)
    # and installs through notebooks/colab_setup.py (the colab extra), never the test tools.
    assert "egghand_lib" not in install and "git clone" not in install
    for tool in ("pytest", "ruff", "jupyterlab", "requirements.txt"):
        assert tool not in install, f"the Colab cell mentions {tool}"
    assert 'if "google.colab" in sys.modules:' in install and "colab_setup.py" in install
