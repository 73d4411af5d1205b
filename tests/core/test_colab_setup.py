"""The Colab path: the notebooks' first cell finds a copy of the repository (an uploaded zip, a folder, Drive) and
installs it through notebooks/colab_setup.py with the `colab` extra only; without a copy it says what to do."""

from __future__ import annotations

import os
import runpy
import sys
import tomllib
import types
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "notebooks" / "colab_setup.py"


def colab_cell() -> str:
    nb = nbformat.read(ROOT / "notebooks" / "00_quickstart.ipynb", as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code" and "colab" in c.metadata.get("tags", []))


def run_cell_on_fake_colab(content: Path, monkeypatch) -> None:
    """Run the Colab cell as Colab would, with /content mapped to ``content`` and pip replaced by a dry run."""
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setenv("EGGHAND_COLAB_DRY_RUN", "1")
    monkeypatch.chdir(content)
    exec(compile(colab_cell().replace('"/content', f'"{content}'), "colab-setup", "exec"), {})


def repository_copy(where: Path) -> Path:
    """A minimal copy of the repository: what the Colab cell and colab_setup.py look at."""
    (where / "notebooks").mkdir(parents=True)
    (where / "notebooks" / "colab_setup.py").write_text(SETUP.read_text())
    (where / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    return where


def test_outside_colab_the_cell_does_nothing(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.chdir(tmp_path)
    exec(compile(colab_cell(), "colab-setup", "exec"), {})
    assert Path.cwd() == tmp_path and list(tmp_path.iterdir()) == []


def test_without_a_copy_the_cell_says_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="upload a zip of the repository") as err:
        run_cell_on_fake_colab(tmp_path, monkeypatch)
    assert "Google Drive" in str(err.value) and "[colab]" in str(err.value)


def test_an_uploaded_zip_is_unpacked_and_installed_with_the_colab_extra(tmp_path, monkeypatch, capsys):
    repo = repository_copy(tmp_path / "build" / "egghand-toolkit-main")
    content = tmp_path / "content"
    content.mkdir()
    with zipfile.ZipFile(content / "egghand-toolkit-main.zip", "w") as z:  # GitHub's "Download ZIP" layout
        for f in repo.rglob("*"):
            z.write(f, f.relative_to(repo.parent))
    zipfile.ZipFile(content / "photos.zip", "w").close()  # an unrelated zip: left alone
    run_cell_on_fake_colab(content, monkeypatch)
    unpacked = content / "egghand-toolkit-main" / "egghand-toolkit-main"
    assert (unpacked / "notebooks" / "colab_setup.py").is_file() and not (content / "photos").exists()
    assert Path.cwd() == unpacked / "notebooks"  # the notebooks' ../runs/notebooks lies inside the copy
    out = capsys.readouterr().out
    assert f"install -q {unpacked}[colab]" in out
    # Running the cell again reuses the unpacked copy.
    run_cell_on_fake_colab(content, monkeypatch)
    assert f"install -q {unpacked}[colab]" in capsys.readouterr().out


def test_a_folder_in_drive_is_found(tmp_path, monkeypatch, capsys):
    repo = repository_copy(tmp_path / "drive" / "MyDrive" / "egghand-toolkit")
    run_cell_on_fake_colab(tmp_path, monkeypatch)
    assert Path.cwd() == repo / "notebooks" and f"{repo}[colab]" in capsys.readouterr().out


def test_colab_setup_installs_only_the_colab_extra(tmp_path):
    setup = runpy.run_path(str(SETUP))
    assert setup["pip_command"]("/r") == [sys.executable, "-m", "pip", "install", "-q", "/r[colab]"]
    assert setup["REPO_URL"] is None  # no public URL yet: the one place to set it
    with pytest.raises(SystemExit, match="REPO_URL is not set"):
        setup["clone_and_install"]()
    (tmp_path / "notebooks").mkdir()
    with pytest.raises(RuntimeError, match="pyproject.toml"):
        setup["install"](tmp_path / "notebooks" / "colab_setup.py", dry_run=True)
    # The colab extra is the viz extra: plotly, trimesh, ipywidgets; no test, lint or Jupyter tools anywhere in it
    # or in the toolkit's own dependencies (Colab has Jupyter and torch).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert extras["colab"] == ["egghand-toolkit[viz]"]
    pulled = [d.split(">")[0].split("=")[0].split("[")[0].split(";")[0].strip().lower()
              for d in project["dependencies"] + extras["viz"]]
    assert {"plotly", "trimesh", "ipywidgets"} <= set(pulled)
    assert not {"pytest", "ruff", "jupyterlab", "nbmake", "hypothesis", "ipykernel"} & set(pulled)
    # Python 3.12 (Colab's) resolves its own lerobot / transformers pair.
    deps = " ".join(project["dependencies"])
    assert "lerobot[dataset]>=0.6,<0.7; python_version >= '3.12'" in deps
    assert "transformers>=5,<6; python_version >= '3.12'" in deps
    assert os.environ.get("EGGHAND_COLAB_DRY_RUN") is None  # the other tests' monkeypatching did not leak
