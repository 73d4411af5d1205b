"""Every bench script (bench/*.py) runs with --tiny and ends with its `name: value` figures (finite numbers).

Speed is never asserted here (benchmarks are scripts; the figures live in BENCHMARKS.md). The scripts
share one tiny EgoSynth generation in a temporary work folder; data_prep runs first and makes it.
Scripts not listed in EXPECTED (added by other areas) must print at least one finite figure.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
LINE = re.compile(r"^([A-Za-z0-9_]+): (\S+)$")

# script -> figures it must print (a subset of what it prints)
EXPECTED = {
    "data_prep.py": ("windows", "library_windows_per_s", "reference_python_windows_per_s",
                     "reference_numpy_windows_per_s", "speedup_windowing_vs_python_loop",
                     "speedup_windowing_vs_numpy_loop", "speedup_files_to_windows_vs_python_loop",
                     "library_peak_traced_mb"),
    "accuracy.py": ("static_ade", "cvm_ade", "egghand_ade", "egghand_mpjpe", "egghand_fde", "egghand_mpjpe_f",
                    "egghand_over_cvm_ade", "egghand_over_cvm_mpjpe", "noisy_vision_mpjpe", "dummy_language_mpjpe",
                    "noisy_vision_over_clean_mpjpe", "dummy_language_over_clean_ade"),
    "memory.py": ("train_peak_rss_mb", "train_rss_before_mb", "decoder_params_m", "decoder_build_peak_rss_mb"),
    "latency.py": ("cached_b1_median_ms", "cached_b1_p95_ms", "encoder_b1_median_ms", "cached_b8_windows_per_s",
                   "encoder_over_cached_b1"),
    "train_speed.py": ("cached_step_s", "loop_step_s", "speedup_cached_vs_loop", "encoder_params_m"),
}


# data_prep first (it generates the shared tiny data), then the others in name order
SCRIPTS = ["data_prep.py"] + sorted(p.name for p in BENCH.glob("*.py")
                                    if not p.name.startswith("_") and p.name != "data_prep.py")
WORK_ARG = ("data_prep.py", "accuracy.py", "memory.py", "lerobot_io.py")  # scripts that take --work


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench_work")


def run_bench(script: str, *args: str) -> dict[str, float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(BENCH / script), "--tiny", *args], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    # the figures come LAST: a trailing block of `name: value` lines
    figures: dict[str, float] = {}
    for ln in reversed(lines):
        m = LINE.match(ln.strip())
        if not m:
            break
        figures[m.group(1)] = float(m.group(2))
    assert figures, f"{script}: no `name: value` lines at the end of its output:\n{proc.stdout[-2000:]}"
    assert all(LINE.match(ln) or ln.startswith("#") for ln in lines[-len(figures) - 3:]), proc.stdout[-2000:]
    return figures


def test_every_expected_script_exists() -> None:
    assert set(EXPECTED) <= set(SCRIPTS), sorted(set(EXPECTED) - set(SCRIPTS))


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_prints_finite_figures(script: str, work: Path) -> None:
    args = ("--work", str(work)) if script in WORK_ARG else ()
    figures = run_bench(script, *args)
    missing = [k for k in EXPECTED.get(script, ()) if k not in figures]
    assert not missing, f"{script}: missing figures {missing}; got {sorted(figures)}"
    bad = {k: v for k, v in figures.items() if not math.isfinite(v)}
    assert not bad, f"{script}: non-finite figures {bad}"
    if script == "data_prep.py":
        assert figures["windows"] > 0 and figures["library_windows_per_s"] > 0
    if script == "memory.py":
        assert figures["train_peak_rss_mb"] >= figures["train_rss_before_mb"] > 0
