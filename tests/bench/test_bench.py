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

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
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
                   "encoder_over_cached_b1", "stream_step_median_ms", "stream_step_p95_ms"),
    # (stream_encode_frame_median_ms only for an encoder whose frames are encoded one by one; cpu-small's
    # EgoVideo-mini attends across its 4 frames)
    "train_speed.py": ("cached_step_s", "loop_step_s", "speedup_cached_vs_loop", "encoder_params_m"),
    "predictability.py": ("lastpose_over_cvm_mpjpe", "oracle_rotation_over_cvm_mpjpe",
                          "oracle_articulation_over_cvm_mpjpe", "state_mlp_over_cvm_ade", "state_mlp_over_cvm_mpjpe",
                          "state_mlp_true_objects_over_cvm_mpjpe", "true_objects_gain_ade"),
}


# scripts with their own tests below (not the generic --tiny run)
OWN_TESTS = ("gpu_check.py",)
# data_prep first (it generates the shared tiny data), then the others in name order
SCRIPTS = ["data_prep.py"] + sorted(p.name for p in BENCH.glob("*.py")
                                    if not p.name.startswith("_") and p.name not in ("data_prep.py", *OWN_TESTS))
# scripts that take --work
WORK_ARG = ("data_prep.py", "accuracy.py", "memory.py", "lerobot_io.py", "predictability.py")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench_work")


def run_bench(script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore", **(env or {})}
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
    assert all((BENCH / name).is_file() for name in OWN_TESTS)


def test_gpu_check_without_cuda_says_so_and_exits_77() -> None:
    """CI has no GPU: gpu_check says it skipped, why, and exits 77 ("skipped"), with no figures."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(BENCH / "gpu_check.py")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 77, proc.stdout + proc.stderr
    assert proc.stderr.startswith("gpu_check: skipped: no CUDA device") and proc.stdout == ""


def test_gpu_check_code_path_runs_tiny_on_the_cpu() -> None:
    figures = run_bench("gpu_check.py", "--device", "cpu", "--steps", "2", "--loop-steps", "1", "--latency-calls",
                        "2", env={"CUDA_VISIBLE_DEVICES": ""})
    timed = ("cached_step_s", "loop_step_s", "forecast_cached_b1_ms", "forecast_encoder_b1_ms")
    assert all(math.isfinite(figures[k]) and figures[k] > 0 for k in timed), figures
    # no GPU memory on a CPU: reported as nan, not as a made-up number
    assert math.isnan(figures["cached_peak_gpu_mem_gb"]) and math.isnan(figures["loop_peak_gpu_mem_gb"])


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


def test_accuracy_over_seeds_prints_means_spreads_and_the_head_comparison(work: Path) -> None:
    figures = run_bench("accuracy.py", "--work", str(work / "seeds"), "--seeds", "2", "--head-init")
    assert figures["trainings"] == 2
    # two seeds train two models: their figures differ, so the spread is positive; the baselines have none
    assert figures["egghand_ade_sd"] > 0 and "lastpose_ade_sd" not in figures
    assert figures["egghand_ade"] > 0 and figures["noisy_vision_over_clean_ade"] > 0
    # the tiny config's head is random already: "from a random head" is the same training, to the last digit
    assert figures["random_head_over_pretrained_ade"] == 1.0 and figures["random_head_over_pretrained_ade_sd"] == 0
    # the same four trainings two at a time in worker processes (one thread each, as above): the same models
    parallel = run_bench("accuracy.py", "--work", str(work / "seeds_jobs"), "--seeds", "2", "--head-init",
                         "--jobs", "2")
    for name in ("egghand_ade", "egghand_ade_sd", "noisy_vision_over_clean_ade", "random_head_ade"):
        assert parallel[name] == figures[name], name


def test_predictability_oracles_split_rotation_from_articulation() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from predictability import oracle_forecasts
    finally:
        sys.path.remove(str(BENCH))
    rng = np.random.default_rng(0)
    anchor = rng.normal(0, 0.05, (3, 42, 3))

    def rot(a: float) -> np.ndarray:
        c, s = np.cos(a), np.sin(a)
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])

    # Future 1: each hand turns rigidly about its wrist (and moves): the rotation oracle is exact, the
    # articulation oracle keeps the last pose's wrist-relative shape.
    gt = np.empty((3, 2, 42, 3))
    for h in range(2):
        hand = slice(21 * h, 21 * h + 21)
        w = anchor[:, 21 * h][:, None]
        for t in range(2):
            gt[:, t, hand] = (anchor[:, hand] - w) @ rot(0.3 * (t + 1) + h).T + w + 0.1
    valid = np.ones(gt.shape[:-1], bool)
    out = oracle_forecasts(anchor, gt, valid)
    rel = lambda x: x - np.repeat(x[..., [0, 21], :], 21, axis=-2)  # noqa: E731
    assert np.allclose(rel(out["oracle_rotation"]), rel(gt), atol=1e-9)
    assert np.allclose(rel(out["oracle_articulation"]), rel(np.broadcast_to(anchor[:, None], gt.shape)), atol=1e-9)
    # Future 2: fingers move, hands do not turn (palm joints fixed): the other way round.
    gt2 = np.broadcast_to(anchor[:, None], gt.shape).copy()
    fingers = [j for j in range(42) if j % 21 not in (0, 1, 5, 9, 13, 17)]
    gt2[:, :, fingers] += rng.normal(0, 0.01, (3, 2, len(fingers), 3))
    out2 = oracle_forecasts(anchor, gt2, valid)
    assert np.allclose(rel(out2["oracle_articulation"]), rel(gt2), atol=1e-9)
    assert np.allclose(rel(out2["oracle_rotation"]), rel(np.broadcast_to(anchor[:, None], gt.shape)), atol=1e-9)


def test_predictability_trains_its_probes_on_extra_takes_when_asked(work: Path) -> None:
    figures = run_bench("predictability.py", "--work", str(work), "--extra-train-takes", "1")
    assert figures["extra_train_windows"] > 0
    assert figures["mlp_train_windows"] > figures["extra_train_windows"]  # the split's own windows stay in
    assert math.isfinite(figures["state_mlp_over_cvm_ade"]) and math.isfinite(figures["true_objects_gain_ade"])
    assert (work / "probe_train_seed1_1" / "raw" / "manifest.json").is_file()  # made inside --work
