"""Small helpers the notebooks share, so that no notebook cell carries library code.

Each helper is idempotent: a notebook re-run reuses what an earlier run produced (a generated dataset,
a prepared folder, a finished training run) instead of redoing it.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egghand_lib.batch import collate_windows
from egghand_lib.geometry import camera_center, camera_forward, invert_rigid, transform_points
from egghand_lib.skeleton import BONES, WRIST_INDICES


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
    from egghand_lib.data import egosynth
    from egghand_lib.data.prepare import prepare_dataset

    data_dir = workdir(data_dir)
    raw, prep = data_dir / "raw", data_dir / "prepared"
    before = (raw / "manifest.json").read_text() if (raw / "manifest.json").is_file() else None
    try:
        egosynth.generate_egosynth(raw, preset=preset, seed=seed, progress=progress, **synth_overrides)
    except FileExistsError:
        # The folder holds another generation (other parameters or generator version): it belongs to the
        # notebooks, so regenerate it rather than stop.
        print(f"[egosynth] {raw} holds another generation; regenerating it")
        egosynth.generate_egosynth(raw, preset=preset, seed=seed, progress=progress, overwrite=True,
                                   **synth_overrides)
    if before is not None and (raw / "manifest.json").read_text() != before:
        shutil.rmtree(prep, ignore_errors=True)  # prepared from the old generation: stale
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
# The canonical frame (notebook 01)
# ---------------------------------------------------------------------------------------------------


def canonical_checks(dataset: Any, max_windows: int | None = 500, up: Sequence[float] | None = None
                     ) -> dict[str, tuple[float, str]]:
    """Numerical checks of SPEC section 2 on a WindowDataset: {check: (worst value over windows, expected)}.

    - the first observed camera's centre in the canonical frame (expected 0),
    - its horizontal viewing direction: sideways component (0) and smallest forward component (> 0),
    - how far the world up axis moves under the transform (0), and its rotation's orthonormality error (0),
    - bone-length change between the canonical joints and the same joints mapped back to the world (0),
    - canonical joints mapped back to the world vs the episode's stored world joints (0).
    Only windows with index < max_windows (evenly spaced) are compared with the episodes.
    """
    a = dataset.arrays()
    up = np.asarray(up if up is not None else getattr(dataset, "up", (0.0, 0.0, 1.0)), dtype=np.float64)
    up = up / np.linalg.norm(up)
    T = np.asarray(a["canonical_T"], dtype=np.float64)
    E0 = np.asarray(a["past_extrinsics"][:, 0], dtype=np.float64)
    c0 = camera_center(E0)
    f0 = camera_forward(E0)
    f_h = f0 - (f0 @ up)[:, None] * up  # horizontal part of the viewing direction
    R = T[:, :3, :3]
    n = len(T)
    idx = np.arange(n) if max_windows is None or n <= max_windows else np.unique(
        np.linspace(0, n - 1, max_windows).round().astype(int))
    past = np.asarray(a["past_joints"][idx], dtype=np.float64)
    pv = np.asarray(a["past_valid"][idx], dtype=bool)
    world = transform_points(invert_rigid(T[idx])[:, None], past)
    bones = np.array(BONES)
    both = pv[..., bones[:, 0]] & pv[..., bones[:, 1]]
    len_can = np.linalg.norm(past[..., bones[:, 1], :] - past[..., bones[:, 0], :], axis=-1)
    len_world = np.linalg.norm(world[..., bones[:, 1], :] - world[..., bones[:, 0], :], axis=-1)
    stored_err = 0.0
    for k, i in enumerate(idx):
        ep = episode_of(dataset, int(i))
        pos = int(np.flatnonzero(ep.frame_numbers == int(a["frame_index"][i]))[0])
        frames = np.arange(pos - past.shape[1] + 1, pos + 1)
        inside = frames >= 0
        m = pv[k] & inside[:, None]
        if m.any():
            stored = ep.joints[np.clip(frames, 0, None)].astype(np.float64)
            stored_err = max(stored_err, float(np.abs(world[k] - stored)[m].max()))
    return {
        "first camera centre, distance from origin (m)": (float(np.linalg.norm(c0, axis=-1).max()), "0"),
        "first camera heading, sideways component": (float(np.abs(f_h[:, 1]).max()) if up[2] > 0.9 else float(
            "nan"), "0"),
        "first camera heading, smallest forward component": (float(f_h[:, 0].min()), "> 0"),
        "up axis moved by the transform": (float(np.linalg.norm(R @ up - up, axis=-1).max()), "0"),
        "rotation orthonormality error": (float(np.abs(R @ R.transpose(0, 2, 1) - np.eye(3)).max()), "0"),
        "bone length change, canonical vs world (m)": (float(np.abs(len_can - len_world)[both].max()), "0"),
        "canonical -> world vs stored world joints (m)": (stored_err, "0"),
    }


def checks_markdown(checks: Mapping[str, tuple[float, str]]) -> str:
    """A markdown table of ``canonical_checks``."""
    lines = ["| check | worst over windows | expected |", "|---|---|---|"]
    lines += [f"| {k} | {v:.2e} | {e} |" if abs(v) < 1e-3 else f"| {k} | {v:.3f} | {e} |"
              for k, (v, e) in checks.items()]
    return "\n".join(lines)


def wrist_positions(dataset: Any, wrist: int = WRIST_INDICES[0]) -> dict[str, np.ndarray]:
    """One wrist at the current frame t of every window where it is valid, in both frames: {name: (N, 3)}."""
    a = dataset.arrays()
    can = np.asarray(a["past_joints"][:, -1, wrist], dtype=np.float64)
    ok = np.asarray(a["past_valid"][:, -1, wrist], dtype=bool)
    world = transform_points(invert_rigid(np.asarray(a["canonical_T"], dtype=np.float64)), can[:, None])[:, 0]
    return {"world frame": world[ok], "canonical frame": can[ok]}


# ---------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------


def train_or_load(config: Any, prep_dir: str | os.PathLike, out_dir: str | os.PathLike, progress: bool = True,
                  **overrides: Any):
    """The model of a finished run in ``out_dir``, else train it (resuming an interrupted run).

    A run of another config already in ``out_dir`` (e.g. left by an older toolkit) is kept; this config then
    trains in ``<out_dir>-<config hash>``. Use the returned folder.

    config: a TrainConfig or a name ("tiny", "cpu-small", "paper"); overrides: TrainConfig fields.
    Returns (model in eval mode, run folder).
    """
    import json

    from egghand_lib.training import TrainConfig, load_trained, train

    cfg = TrainConfig.named(config) if isinstance(config, str) else config
    cfg = cfg.replace(**overrides) if overrides else cfg
    now = cfg.weight_fields()

    def run_config(folder: Path) -> dict | None:
        saved = folder / "train_config.json"
        return json.loads(saved.read_text()) if saved.is_file() else None

    out = Path(out_dir)
    then = run_config(out)
    if then is not None and any(then.get(k) != v for k, v in now.items()):
        # The folder holds a run of another config (e.g. made by an older version of the toolkit): keep it,
        # and train this config beside it, in a folder named after the config.
        print(f"[train_or_load] {out} holds a run of another config; using {out.name}-{cfg.digest()} for this one")
        out = out.with_name(f"{out.name}-{cfg.digest()}")
        then = run_config(out)
    if then is not None and (out / "model" / "config.json").is_file():
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


def steering_markdown(forecasts: Mapping[str, np.ndarray], window: Mapping[str, Any]) -> str:
    """Markdown table for language steering: per prompt, the final-wrist shift from the forecast under the
    window's own prompt (first entry if the own prompt is absent) and ADE / MPJPE against the ground truth."""
    from egghand_lib.metrics import forecast_metrics

    own = window.get("task")
    ref = forecasts[own] if own in forecasts else next(iter(forecasts.values()))
    gt = np.asarray(window["future_joints"])[None]
    valid = np.asarray(window["future_valid"])[None]
    lines = ["| prompt | final-wrist shift vs own prompt (mm) | ADE (m) | MPJPE (m) |", "|---|---|---|---|"]
    for prompt, pred in forecasts.items():
        pred = np.asarray(pred)
        w = list(WRIST_INDICES)
        shift = float(np.linalg.norm(pred[-1, w] - ref[-1, w], axis=-1).mean())
        m = forecast_metrics(pred[None], gt, valid)
        label = f"**{prompt}** (own)" if prompt == own else prompt
        lines.append(f"| {label} | {1000 * shift:.1f} | {m['ade']:.3f} | {m['mpjpe']:.3f} |")
    return "\n".join(lines)


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


# ---------------------------------------------------------------------------------------------------
# The paper's numbers (EgoExo4D, metres; SPEC section 11 and the paper's Tables 3-5)
# ---------------------------------------------------------------------------------------------------

PAPER_TABLE1: dict[str, dict[str, float]] = {
    "Static": {"ade": 0.335, "fde": 0.405, "mpjpe": 0.166, "mpjpe_f": 0.179},
    "CVM": {"ade": 0.346, "fde": 0.467, "mpjpe": 0.166, "mpjpe_f": 0.183},
    "EgoH4": {"ade": 0.267, "fde": 0.333, "mpjpe": 0.116, "mpjpe_f": 0.141},
    "EggHand": {"ade": 0.271, "fde": 0.271, "mpjpe": 0.076, "mpjpe_f": 0.077},
}
PAPER_ABLATIONS: dict[str, dict[str, dict[str, float]]] = {
    # Table 2 is left out: its row labels (which loss terms) were lost in the paper's text extraction.
    "Table 3: modality corruption": {
        "noisy vision": {"ade": 0.287, "fde": 0.287, "mpjpe": 0.083, "mpjpe_f": 0.083},
        "dummy language": {"ade": 0.278, "fde": 0.277, "mpjpe": 0.077, "mpjpe_f": 0.077},
        "noisy vision + dummy language": {"ade": 0.311, "fde": 0.308, "mpjpe": 0.093, "mpjpe_f": 0.093},
        "EggHand (clean)": {"ade": 0.271, "fde": 0.271, "mpjpe": 0.076, "mpjpe_f": 0.077},
    },
    "Table 4: top 10% egomotion vs all (ADE, MPJPE)": {
        "EgoH4 top 10%": {"ade": 0.294, "mpjpe": 0.139}, "EgoH4 all": {"ade": 0.267, "mpjpe": 0.116},
        "InternVL3.5-1B top 10%": {"ade": 0.303, "mpjpe": 0.112},
        "InternVL3.5-1B all": {"ade": 0.287, "mpjpe": 0.082},
        "EggHand top 10%": {"ade": 0.276, "mpjpe": 0.106}, "EggHand all": {"ade": 0.271, "mpjpe": 0.076},
    },
    "Table 5: action-head initialisation": {
        "random head": {"ade": 0.321, "fde": 0.323, "mpjpe": 0.089, "mpjpe_f": 0.089},
        "GR00T-pretrained head": {"ade": 0.271, "fde": 0.271, "mpjpe": 0.076, "mpjpe_f": 0.077},
    },
}
