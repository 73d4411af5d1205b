"""Colab set-up of the EggHand notebooks: where the toolkit comes from, and how it is installed there.

The first code cell of every notebook finds this file in a copy of the repository on the Colab machine (a
folder or an uploaded zip in /content, or a folder in Google Drive) and calls ``install`` from it, before
anything imports ``egghand_lib``. It installs the package with its ``colab`` extra only: the toolkit's own
dependencies (lerobot, transformers, ... chosen by Python version, 3.12 on Colab) and plotly, trimesh and
ipywidgets; Colab already has Jupyter and torch. No test or lint tool, no JupyterLab.

REPO_URL is the repository's public git URL, the one place to set it; None while there is none. With it set,
``python colab_setup.py`` (this file fetched alone) clones the repository to /content and installs it.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

REPO_URL: str | None = None
CLONE_DIR = Path("/content/egghand-toolkit")


def pip_command(repo_dir: str | os.PathLike) -> list[str]:
    """The install command: the package at ``repo_dir`` with its colab extra (not editable: importable at once)."""
    return [sys.executable, "-m", "pip", "install", "-q", f"{Path(repo_dir)}[colab]"]


def _imported_versions() -> dict[str, str | None]:
    """Versions of the installed distributions whose top-level modules this Python has imported already."""
    return {dist: _version_or_none(dist) for module, dists in importlib.metadata.packages_distributions().items()
            if module in sys.modules for dist in dists}


def _version_or_none(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def install(setup_file: str | os.PathLike, dry_run: bool | None = None) -> Path:
    """Install the repository holding ``setup_file`` (its notebooks/colab_setup.py) and move into its notebooks/
    folder, where the notebooks' relative output folder (../runs/notebooks) lies inside that copy.

    Says to restart the session when pip changed a package this Python had imported already (the install is
    kept; run the notebook again). dry_run (default: environment EGGHAND_COLAB_DRY_RUN=1) prints the command
    instead of running it. Returns the repository folder.
    """
    repo = Path(setup_file).resolve().parent.parent
    if not (repo / "pyproject.toml").is_file():
        raise RuntimeError(f"{repo}: no pyproject.toml; is this a copy of the egghand-toolkit repository?")
    dry_run = os.environ.get("EGGHAND_COLAB_DRY_RUN") == "1" if dry_run is None else dry_run
    cmd = pip_command(repo)
    print(f"[colab] installing the toolkit from {repo} (a few minutes the first time)")
    if dry_run:
        print("[colab] would run:", " ".join(cmd))
    else:
        before = _imported_versions()
        subprocess.run(cmd, check=True)
        changed = sorted(n for n, v in before.items() if _version_or_none(n) not in (v, None))
        if changed:
            print(f"[colab] pip changed packages this session had loaded already ({', '.join(changed)}): use "
                  "Runtime > Restart session, then run the notebook again (the install is kept).")
    os.chdir(repo / "notebooks")
    print(f"[colab] ready; working folder {repo / 'notebooks'}")
    return repo


def clone_and_install() -> Path:
    """Clone REPO_URL to CLONE_DIR (once) and install it."""
    if not REPO_URL:
        raise SystemExit("colab_setup.py: REPO_URL is not set (there is no public repository URL yet): upload a zip "
                         "of the repository to /content instead and run the notebook's first cell")
    if not CLONE_DIR.is_dir():
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, str(CLONE_DIR)], check=True)
    return install(CLONE_DIR / "notebooks" / "colab_setup.py")


if __name__ == "__main__":
    clone_and_install()
