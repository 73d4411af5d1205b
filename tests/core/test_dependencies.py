"""requirements.txt (pins) and pyproject.toml (ranges) describe the same two environments, Python 3.11 and 3.12.

Both files choose lerobot / transformers / torch by environment markers; for each of the two Pythons, every
package pyproject.toml declares (runtime and extras) must be pinned exactly once in requirements.txt, to a
version inside the declared range.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
PROJECT = "egghand-toolkit"


def _environment(python: str) -> dict[str, str]:
    return {**default_environment(), "python_version": python, "python_full_version": f"{python}.0"}


def _applies(req: Requirement, env: dict[str, str]) -> bool:
    return req.marker is None or req.marker.evaluate({**env, "extra": ""})


def _pins(env: dict[str, str]) -> dict[str, list[Version]]:
    """Package -> the versions requirements.txt pins for ``env`` (a list: a package must appear once)."""
    pins: dict[str, list[Version]] = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):  # comments, `-e .[dev]`
            continue
        req = Requirement(line)
        if _applies(req, env):
            (spec,) = req.specifier
            assert spec.operator == "==", f"requirements.txt: {line!r} is not an exact pin"
            pins.setdefault(canonicalize_name(req.name), []).append(Version(spec.version))
    return pins


def _ranges(env: dict[str, str]) -> dict[str, Requirement]:
    """Package -> its declaration in pyproject.toml (runtime dependencies and every extra) that applies to ``env``."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    out: dict[str, Requirement] = {}
    for text in declared:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name != PROJECT and _applies(req, env):
            assert name not in out, f"pyproject.toml: {name} is declared twice for Python {env['python_version']}"
            out[name] = req
    return out


@pytest.mark.parametrize("python", ["3.11", "3.12"])
def test_every_declared_package_is_pinned_once_inside_its_range(python):
    env = _environment(python)
    pins, ranges = _pins(env), _ranges(env)
    for name, req in ranges.items():
        count = len(pins.get(name, []))
        assert count == 1, f"requirements.txt pins {name} {count} times for Python {python}, expected once"
        assert req.specifier.contains(pins[name][0], prereleases=True), (
            f"requirements.txt pins {name}=={pins[name][0]} for Python {python}, pyproject.toml declares {req}")
    assert {"lerobot", "transformers", "torch"} <= set(ranges)


def test_the_two_environments_differ_as_documented():
    old, new = _pins(_environment("3.11")), _pins(_environment("3.12"))
    assert old["lerobot"][0].release[:2] == (0, 4) and old["transformers"][0].major == 4
    assert new["lerobot"][0].release[:2] == (0, 6) and new["transformers"][0].major == 5
    assert "dataset" in _ranges(_environment("3.12"))["lerobot"].extras  # lerobot 0.6's dataset code needs it
