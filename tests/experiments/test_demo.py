"""egghand demo --quick: every stage runs, writes its tables and plots, and a re-run skips what exists."""

from __future__ import annotations

import json

import pytest

from egghand_lib.demo import run_demo
from tests.fixtures.learnable_episodes import single_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def test_quick_demo_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "demo"
    summary = run_demo(out, quick=True, progress=False, train_overrides={"max_steps": 6})
    res = out / "results"
    for name in ("evaluation.md", "evaluation.csv", "evaluation.json", "ablations.md", "ablations.csv",
                 "ablations.json", "summary.md", "summary.json", "error_vs_horizon.png", "ablations.png"):
        assert (res / name).is_file() and (res / name).stat().st_size > 0, name
    assert (res / "error_vs_horizon.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(summary["metrics"]) == {"Static", "CVM", "EggHand"}
    assert summary["training"]["steps"] == 6
    ev = json.loads((res / "evaluation.json").read_text())
    assert summary["metrics"]["CVM"]["mpjpe"] == ev["metrics"]["CVM"]["egghand"]["all"]["mpjpe"]
    assert {"clean", "noisy vision", "dummy language", "noisy vision + dummy language"} <= set(summary["modality"])
    assert "EggHand top 10%" in summary["egomotion"]
    assert "EggHand demo summary" in capsys.readouterr().out

    # A second run finds every stage done and recomputes nothing.
    weights = out / "runs" / "tiny" / "model" / "model.safetensors"
    stamp = (weights.stat().st_mtime_ns, (res / "evaluation.json").stat().st_mtime_ns)
    again = run_demo(out, quick=True, progress=False, train_overrides={"max_steps": 6})
    assert (weights.stat().st_mtime_ns, (res / "evaluation.json").stat().st_mtime_ns) == stamp
    assert again["metrics"] == summary["metrics"]
    assert capsys.readouterr().out.count("done already") == 4

    # Other settings in the same folder are refused rather than mixed.
    with pytest.raises(ValueError, match="other settings"):
        run_demo(out, quick=True, progress=False, train_overrides={"max_steps": 7})
