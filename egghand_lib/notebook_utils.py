"""Small helpers the notebooks share, so that no notebook cell carries library code.

Each helper is idempotent: a notebook re-run reuses what an earlier run produced (a generated dataset,
a prepared folder, a finished training run) instead of redoing it.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egghand_lib.batch import collate_windows


def in_colab() -> bool:
    """True inside Google Colab (its module is imported by the runtime before any cell runs)."""
    return "google.colab" in sys.modules


def workdir(path: str | os.PathLike) -> Path:
    """Resolve a notebook's output folder (relative paths are relative to the current directory) and create it."""
    p = Path(path).expanduser().resolve()
    p.mkdir(parents=True, exist_ok=True)
    return p


def limit_threads(n: int | None = None) -> int:
    """Cap torch's CPU threads (default: all cores, at most 4) so notebooks behave on shared machines."""
    n = n or min(4, os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def environment_summary() -> dict[str, Any]:
    """What this machine offers: Python, torch, CUDA device, CPU threads."""
    cuda = torch.cuda.is_available()
    return {
        "python": sys.version.split()[0], "torch": torch.__version__, "cuda": cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None, "cpu_threads": torch.get_num_threads(),
        "colab": in_colab(),
    }


# ---------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------


def egosynth_prepared(data_dir: str | os.PathLike, preset: str = "tiny", seed: int = 0,
                      splits: Sequence[str] = ("train", "val", "test"), progress: bool = True,
                      **synth_overrides: Any) -> Path:
    """Generate EgoSynth (``data_dir``/raw) and prepare it (``data_dir``/prepared) unless already done.

    Returns the prepared folder. Generation and preparation are atomic / resumable in their own modules,
    so an interrupted notebook simply runs this cell again. ``synth_overrides``: SynthConfig fields
    (e.g. ``num_takes={"train": 8, "val": 2, "test": 2}``); use a new ``data_dir`` when changing them.
    """
    from egghand_lib.data import synthetic
    from egghand_lib.data.prepare import prepare_dataset

    data_dir = workdir(data_dir)
    raw, prep = data_dir / "raw", data_dir / "prepared"
    synthetic.generate_egosynth(raw, preset=preset, seed=seed, progress=progress, **synth_overrides)
    if not (prep / "manifest.json").is_file() or not (prep / "stats.json").is_file():
        prepare_dataset(raw, prep, splits=tuple(splits), progress=progress)
    return prep


def episode_of(dataset: Any, i: int):
    """The Episode (world-frame arrays, intrinsics, frames) that window i of a WindowDataset comes from."""
    a = dataset.arrays()
    take, ep_index = str(a["take_uid"][i]), int(a["episode_index"][i])
    frame = int(a["frame_index"][i])
    for ep in dataset.episodes:
        if ep.take_uid == take and ep.episode_index == ep_index and frame in set(ep.frame_numbers.tolist()):
            return ep
    raise ValueError(f"window {i}: no episode {take}/{ep_index} containing frame {frame} in the dataset")


def window_intrinsics(dataset: Any, i: int) -> np.ndarray:
    """Pinhole matrix (3, 3) of the stored frames of window i."""
    return np.asarray(episode_of(dataset, i).intrinsics, dtype=np.float64)


def pick_windows(dataset: Any, n: int, min_valid_fraction: float = 0.8, seed: int = 0) -> list[int]:
    """n window indices, spread over the dataset, whose observed and target joints are mostly valid."""
    a = dataset.arrays()
    ok = (np.asarray(a["past_valid"]).mean((1, 2)) >= min_valid_fraction)
    ok &= np.asarray(a["future_valid"]).mean((1, 2)) >= min_valid_fraction
    cand = np.flatnonzero(ok) if ok.any() else np.arange(len(dataset))
    pick = np.linspace(0, len(cand) - 1, min(n, len(cand))).round().astype(int)
    return [int(cand[k]) for k in pick]


# ---------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------


def train_or_load(config: Any, prep_dir: str | os.PathLike, out_dir: str | os.PathLike, progress: bool = True,
                  **overrides: Any):
    """The model of a finished run in ``out_dir``, else train it (resuming an interrupted run).

    config: a TrainConfig or a name ("tiny", "cpu-small", "paper"); overrides: TrainConfig fields.
    Returns (model in eval mode, run folder).
    """
    from egghand_lib.training import TrainConfig, load_trained, train

    cfg = TrainConfig.named(config) if isinstance(config, str) else config
    cfg = cfg.replace(**overrides) if overrides else cfg
    out = Path(out_dir)
    saved = out / "train_config.json"
    if (out / "model" / "config.json").is_file() and saved.is_file():
        import json

        if {k: v for k, v in json.loads(saved.read_text()).items() if k not in cfg._BOOKKEEPING} == {
                k: v for k, v in cfg.to_dict().items() if k not in cfg._BOOKKEEPING}:
            return load_trained(out).eval(), out
    result = train(cfg, out, prep_dir=prep_dir, progress=progress, resume=True)
    return result.model.eval(), out


def training_history(run_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """Columns of a run's metrics.csv as float arrays (empty cells are NaN)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training log (is this a training run folder?)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    cols: dict[str, np.ndarray] = {}
    for k in (rows[0].keys() if rows else []):
        cols[k] = np.array([float(r[k]) if r.get(k) not in (None, "") else np.nan for r in rows])
    return cols


def forecast_fn(model: torch.nn.Module, seed: int | None = None) -> Callable[[Mapping[str, Any]], np.ndarray]:
    """A callable window -> (10, 42, 3) forecast (canonical metres) for ``viz.forecast_explorer``."""

    def run(window: Mapping[str, Any]) -> np.ndarray:
        batch = collate_windows([dict(window)])
        dev = next(model.parameters()).device
        batch = {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in batch.items()}
        with torch.no_grad():
            return model.forecast(batch, seed=seed)[0].float().cpu().numpy()

    return run


def sample_window(model: torch.nn.Module, window: Mapping[str, Any], n: int, seed: int = 0) -> np.ndarray:
    """n sampled forecasts (n, 10, 42, 3) of one window (different noise seeds)."""
    batch = collate_windows([dict(window)])
    with torch.no_grad():
        return model.sample(batch, n, seed=seed)[0].float().cpu().numpy()


def prompt_forecasts(model: torch.nn.Module, window: Mapping[str, Any], prompts: Sequence[str],
                     seed: int | None = None) -> dict[str, np.ndarray]:
    """{prompt: (10, 42, 3) forecast} of one window under each prompt (everything else unchanged)."""
    run = forecast_fn(model, seed)
    return {p: run({**window, "task": p}) for p in prompts}


# ---------------------------------------------------------------------------------------------------
# Paper configuration on a GPU (notebook 02)
# ---------------------------------------------------------------------------------------------------


def paper_setup_status(egovideo_checkpoint: str | None, gr00t_dir: str | None) -> dict[str, Any]:
    """Whether the paper configuration can run here: CUDA plus both weight paths present.

    Returns {"use_paper": bool, "reasons": [why not], "cuda": bool, "gpu": name or None}.
    """
    env = environment_summary()
    reasons = []
    if not env["cuda"]:
        reasons.append("no CUDA GPU")
    if not egovideo_checkpoint:
        reasons.append("no EgoVideo checkpoint path (EGOVIDEO_CHECKPOINT)")
    elif not Path(egovideo_checkpoint).expanduser().is_file():
        reasons.append(f"EgoVideo checkpoint not found: {egovideo_checkpoint}")
    if not gr00t_dir:
        reasons.append("no GR00T-N1.5-3B directory (GR00T_DIR)")
    elif not (Path(gr00t_dir).expanduser() / "model.safetensors.index.json").is_file():
        reasons.append(f"GR00T directory without model.safetensors.index.json: {gr00t_dir}")
    return {"use_paper": not reasons, "reasons": reasons, "cuda": env["cuda"], "gpu": env["gpu"]}


def paper_train_config(egovideo_checkpoint: str, gr00t_dir: str, **overrides: Any):
    """TrainConfig "paper" with the user's EgoVideo checkpoint and GR00T action-head weights."""
    from egghand_lib.training import TrainConfig

    cfg = TrainConfig.named("paper")
    model_overrides = {**cfg.model_overrides, "encoder_kwargs": {"checkpoint": str(egovideo_checkpoint)},
                       "decoder_init": "gr00t", "gr00t_path": str(gr00t_dir)}
    return cfg.replace(model_overrides=model_overrides, **overrides)


# ---------------------------------------------------------------------------------------------------
# Results (notebooks 02 and 03)
# ---------------------------------------------------------------------------------------------------


def metrics_rows(results: Mapping[str, Any], convention: str = "egghand", subset: str = "all"
                 ) -> dict[str, dict[str, float]]:
    """{method: {ade, fde, mpjpe, mpjpe_f}} from ``evaluation.evaluate`` results."""
    return {m: dict(results["metrics"][m][convention][subset]) for m in results["methods"]
            if subset in results["metrics"][m].get(convention, {})}


def horizon_curves(results: Mapping[str, Any], metric: str = "ade", convention: str = "egghand"
                   ) -> dict[str, np.ndarray]:
    """{method: (T,) per-horizon error} from ``evaluation.evaluate`` results."""
    return {m: np.asarray(results["per_horizon"][m][convention][metric], dtype=float) for m in results["methods"]}


def per_group_table(results: Mapping[str, Any], metric: str = "ade") -> dict[str, dict[str, float]]:
    """{group (scenario/task): {method: value}} from ``evaluation.evaluate`` results."""
    table: dict[str, dict[str, float]] = {}
    for m, groups in results.get("per_group", {}).items():
        for g, vals in groups.items():
            if g == "all":
                continue
            v = vals.get(metric) if isinstance(vals, Mapping) else None
            if v is not None:
                table.setdefault(g, {})[m] = v
    return table


def ablation_table(results: Mapping[str, Any], table: str) -> tuple[dict[str, dict[str, float]], dict[str, dict]]:
    """(rows {variant: metrics}, extra {variant: {column: text}}) of one table of ``run_ablations`` results.

    table: "2 loss", "3 modality", "4 egomotion", "4 encoder", "5 head init". Variants that did not run
    keep their row with no metrics and a "status" column saying why.
    """
    rows, extra = {}, {}
    for r in results["rows"]:
        if r["table"] != table:
            continue
        rows[r["variant"]] = {k: r.get(k) for k in ("ade", "fde", "mpjpe", "mpjpe_f") if r.get(k) is not None}
        e = {}
        if table == "2 loss" and "weights" in r:
            w_abs, w_rel, w_pair = r["weights"]
            e = {"L_abs": "✓" if w_abs else "", "L_rel": "✓" if w_rel else "", "L_pair": "✓" if w_pair else ""}
        if table == "3 modality":
            v = r["variant"]
            e = {"vision": "noise" if "noisy" in v else "✓", "language": "dummy" if "dummy" in v else "✓"}
            if r.get("ade_vs_clean") is not None and v != "clean":
                e["ADE vs clean"] = f"{100 * r['ade_vs_clean']:+.1f}%"
        if table == "4 egomotion" and "windows" in r:
            e = {"windows": str(r["windows"])}
        if r.get("status", "ok") != "ok":
            e["status"] = f"{r['status']}: {r.get('reason', '')}"
        extra[r["variant"]] = e
    return rows, extra
