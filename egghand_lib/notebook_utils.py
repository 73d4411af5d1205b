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
from tqdm.auto import tqdm

from egghand_lib.ablations import run_ablations, shipped_head_models, write_ablations
from egghand_lib.batch import collate_windows
from egghand_lib.data import egoexo4d, egosynth, prepared
from egghand_lib.data.prepare import prepare_dataset
from egghand_lib.evaluation import baseline_forecasts, evaluate
from egghand_lib.geometry import camera_center, camera_forward, invert_rigid, transform_points
from egghand_lib.io import OutputFolderError, file_sha256
from egghand_lib.metrics import forecast_metrics
from egghand_lib.models.egghand import EggHandPolicy
from egghand_lib.models.egghand.modeling_egghand import SHIPPED_MINI_NAME
from egghand_lib.models.encoders.egovideo_mini import SHIPPED_DIR as SHIPPED_EGOVIDEO_MINI
from egghand_lib.models.gr00t_weights import SHIPPED_GR00T_MINI_HEAD
from egghand_lib.skeleton import BONES, WRIST_INDICES
from egghand_lib.training import TrainConfig, train


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


def data_folder(out_root: str | os.PathLike, preset: str = "tiny", seed: int = 0) -> Path:
    """The folder every notebook keeps its EgoSynth data in (raw/ and prepared/), shared by all of them."""
    return Path(out_root) / "data" / f"egosynth-{preset}-seed{seed}"


def egosynth_prepared(data_dir: str | os.PathLike, preset: str = "tiny", seed: int = 0,
                      splits: Sequence[str] = ("train", "val", "test"), progress: bool = True,
                      **synth_overrides: Any) -> Path:
    """Generate EgoSynth (``data_dir``/raw) and prepare it (``data_dir``/prepared) unless already done.

    Returns the prepared folder. Generation and preparation are atomic / resumable in their own modules,
    so an interrupted notebook simply runs this cell again. ``synth_overrides``: SynthConfig fields
    (e.g. ``num_takes={"train": 8, "val": 2, "test": 2}``); use a new ``data_dir`` when changing them.
    """
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
    if not prepared.is_prepared(prep) or not prepared.stats_path(prep).is_file():
        prepare_dataset(raw, prep, splits=tuple(splits), progress=progress)
    return prep


def data_digest(prep_dir: str | os.PathLike) -> str:
    """8 hex digits naming a prepared folder's content (its manifest's hash): a folder of results named with it
    is never reused for data generated or prepared again differently."""
    return file_sha256(prepared.manifest_path(prep_dir))[:8]


def take_files(raw_dir: str | os.PathLike, split: str = "test", index: int = 0) -> dict[str, Any]:
    """What ``egghand forecast`` reads for take ``index`` of ``split`` of an EgoExo4D-layout folder (EgoSynth):
    {"take_uid", "video", "poses" (the manual hand annotation), "camera" (camera poses), "prompt"}."""
    raw_dir = Path(raw_dir)
    uids = egoexo4d.annotated_take_uids(raw_dir, split)
    if not uids:
        raise ValueError(f"{raw_dir}: no annotated take in split {split!r}")
    uid = uids[index]
    take = egoexo4d.read_takes(raw_dir)[uid]
    return {"take_uid": uid, "video": take.video_path(raw_dir), "poses": egoexo4d.annotation_path(raw_dir, split, uid),
            "camera": egoexo4d.camera_pose_path(raw_dir, split, uid), "prompt": take.prompt}


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
    """Numerical checks of the canonical frame (docs/conventions.md, "Coordinate frames") on a WindowDataset:
    {check: (worst value over windows, expected)}.

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


def camera_steps(window: Mapping[str, Any]) -> np.ndarray:
    """||E_t - E_t-1||_F of a window's consecutive canonical camera matrices, observed then target frames: (29,)
    for the future protocol. Their mean is the window's egomotion score when all its frames are real."""
    E = np.concatenate([np.asarray(window["past_extrinsics"]), np.asarray(window["future_extrinsics"])])
    E = E.astype(np.float64)
    return np.linalg.norm((E[1:] - E[:-1]).reshape(len(E) - 1, -1), axis=1)


def largest_turn_deg(window: Mapping[str, Any], frames: int = 5) -> float:
    """The largest change of the camera's heading (degrees, about gravity) over ``frames`` consecutive frames of
    a window (5 = half a second at 10 fps), observed and target frames together."""
    E = np.concatenate([np.asarray(window["past_extrinsics"]), np.asarray(window["future_extrinsics"])])
    view = E[:, 2, :3].astype(np.float64)  # the viewing axis (3rd row of the rotation) in the canonical frame
    heading = np.degrees(np.unwrap(np.arctan2(view[:, 1], view[:, 0])))
    return float(np.abs(heading[frames:] - heading[:-frames]).max())


def inside_episode(dataset: Any) -> np.ndarray:
    """(N,) bool: the windows whose observed and target frames all lie inside their episode (none is a copy
    of an edge frame)."""
    a = dataset.arrays()
    n_obs, n_tgt = np.asarray(a["past_valid"]).shape[1], np.asarray(a["future_valid"]).shape[1]
    frames = {(ep.take_uid, ep.episode_index): np.asarray(ep.frame_numbers) for ep in dataset.episodes}
    out = np.zeros(len(a["frame_index"]), dtype=bool)
    for i, (take, ep, frame) in enumerate(zip(a["take_uid"], a["episode_index"], a["frame_index"], strict=True)):
        numbers = frames.get((str(take), int(ep)))
        if numbers is not None:
            pos = int(np.searchsorted(numbers, int(frame)))
            out[i] = pos >= n_obs - 1 and pos + n_tgt < len(numbers)
    return out


def calm_and_agitated(dataset: Any) -> tuple[int, int]:
    """Indices of the windows with the smallest and the largest egomotion score among those inside their
    episode (``inside_episode``: every camera pose real, so the score is the mean of ``camera_steps``)."""
    scores = np.asarray(dataset.arrays()["egomotion"], dtype=np.float64)
    ok = inside_episode(dataset) & np.isfinite(scores)
    if not ok.any():
        raise ValueError("no window lies inside its episode with a finite egomotion score")
    cand = np.flatnonzero(ok)
    return int(cand[np.argmin(scores[cand])]), int(cand[np.argmax(scores[cand])])


def top_vs_all_changes(results: Mapping[str, Any], metric: str = "ade", convention: str = "egghand"
                       ) -> dict[str, float]:
    """{method: % change of its error on the top egomotion windows vs all windows} from ``evaluate`` results."""
    out = {}
    for m in results["methods"]:
        e = results["metrics"][m][convention]
        if "top" in e and e["all"][metric]:
            out[m] = 100 * (e["top"][metric] / e["all"][metric] - 1)
    return out


def wrist_speed(arrays: Mapping[str, Any]) -> np.ndarray:
    """Mean speed of the two wrists over each window's target frames, metres per 10 fps frame: (N,) (NaN for a
    window without two consecutive valid wrist positions)."""
    j = np.asarray(arrays["future_joints"], dtype=np.float64)[:, :, list(WRIST_INDICES)]
    v = np.asarray(arrays["future_valid"], dtype=bool)[:, :, list(WRIST_INDICES)]
    step = np.linalg.norm(np.diff(j, axis=1), axis=-1)
    ok = v[:, 1:] & v[:, :-1]
    total, count = np.where(ok, step, 0.0).sum((1, 2)), ok.sum((1, 2))
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


# ---------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------


def train_or_load(config: Any, prep_dir: str | os.PathLike, out_dir: str | os.PathLike, progress: bool = True,
                  **overrides: Any):
    """The model of a finished run in ``out_dir``, else train it (resuming an interrupted run).

    A run of another config or on other data already in ``out_dir`` (e.g. left by an older toolkit) is kept;
    this config then trains in ``<out_dir>-<config hash>-<data hash>``. Use the returned folder.

    config: a TrainConfig or a name ("tiny", "cpu-small", "paper"); overrides: TrainConfig fields.
    Returns (model in eval mode, run folder).
    """
    cfg = TrainConfig.named(config) if isinstance(config, str) else config
    cfg = cfg.replace(**overrides) if overrides else cfg
    out = Path(out_dir)
    try:
        result = train(cfg, out, prep_dir=prep_dir, progress=progress, resume=True)
    except OutputFolderError:
        # The folder holds another run (e.g. made by an older version of the toolkit): keep it, and train
        # this config beside it, in a folder named after the config and the data.
        beside = out.with_name(f"{out.name}-{cfg.digest()}-{data_digest(prep_dir)}")
        print(f"[train_or_load] {out} holds another run; using {beside.name} for this one")
        out, result = beside, train(cfg, beside, prep_dir=prep_dir, progress=progress, resume=True)
    return result.model.eval(), out


# The models a notebook can show (its MODEL parameter): a name below, or a run / saved-model folder.
DEMO_MODELS: dict[str, str] = {
    SHIPPED_MINI_NAME: "the shipped EggHand-mini: cpu-small fine-tuned 2,000 steps on the EgoSynth bench train "
                       "split, loaded in a second (data_cards/egghand_mini.md)",
    "train-tiny": "the tiny configuration trained here for a few steps (seconds; shows the machinery, not a result)",
    "train-cpu-small": "the cpu-small configuration trained here (600 steps: 10-20 minutes on 2 cores, by machine)",
}


def demo_model(model: str | os.PathLike, prep_dir: str | os.PathLike, out_root: str | os.PathLike,
               train_steps: int | None = None, progress: bool = True) -> tuple[torch.nn.Module, Path | None, str]:
    """The model a notebook shows, chosen by its MODEL parameter, in one place.

    model: a name of ``DEMO_MODELS`` ("egghand-mini": the shipped trained model; "train-<config>": that
    training config, trained into ``out_root``/models/<data>-<config>-<steps> unless that run finished
    already, so notebooks sharing data and settings share the run) or a finished run / saved-model folder.
    train_steps: optimizer steps of a "train-" model (None: the config's own).
    Returns (model in eval mode, its run folder or None, a one-line description).
    """
    name = str(model)
    if name == SHIPPED_MINI_NAME:
        return EggHandPolicy.from_pretrained(name).eval(), None, f"{name}: {DEMO_MODELS[name]}"
    if name in DEMO_MODELS:
        config = name.removeprefix("train-")
        data_tag = Path(prep_dir).resolve().parent.name
        run_dir = Path(out_root) / "models" / f"{data_tag}-{config}-{train_steps}"
        net, run_dir = train_or_load(config, prep_dir, run_dir, progress=progress, max_steps=train_steps,
                                     eval_split=None, log_every=1)
        return net, run_dir, f"{name}: {DEMO_MODELS[name]}; {train_steps or 'all its'} steps, in {run_dir}"
    path = Path(name).expanduser()
    if not path.exists():
        raise ValueError(f"MODEL: {name!r} is neither a folder nor one of {sorted(DEMO_MODELS)}")
    net = EggHandPolicy.from_pretrained(path).eval()
    return net, path if (path / "metrics.csv").is_file() else None, f"loaded from {path}"


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


# Every comparison of a model in the notebooks shows these baselines beside it.
COMPARED_BASELINES = ("Static", "CVM", "LastPose")


def compare_with_baselines(prep_dir: str | os.PathLike, split: str, model: torch.nn.Module | None, **kwargs: Any
                           ) -> dict[str, Any]:
    """``evaluation.evaluate`` with Static, CVM and LastPose beside the model (kwargs: evaluate's)."""
    return evaluate(prep_dir, split, model, baselines=COMPARED_BASELINES, **kwargs)


def window_baselines(window: Mapping[str, Any], train_arrays: Mapping[str, Any],
                     methods: Sequence[str] = COMPARED_BASELINES) -> dict[str, np.ndarray]:
    """{baseline: (10, 42, 3) forecast} of one window (Static fitted on ``train_arrays``' observed joints)."""
    arrays = {k: np.asarray(window[k])[None] for k in ("past_joints", "past_valid")}
    return {m: p[0] for m, p in baseline_forecasts(arrays, train_arrays, methods=methods).items()}


def metric_conventions(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> dict[str, dict[str, float]]:
    """Both metric conventions (docs/conventions.md, "Metrics") of one set of forecasts (N, T, 42, 3), on all
    windows and on the windows whose two wrists are valid at every target frame: there the two conventions'
    ADE and FDE are the same number (a mean of per-frame means over 2 wrists = the pooled mean). The second
    pair of rows is left out when no window has both wrists at every target frame."""
    full = np.asarray(valid)[:, :, list(WRIST_INDICES)].all((1, 2))
    rows = {}
    for name, sel in (("all windows", slice(None)), ("wrists always valid", full)):
        if isinstance(sel, np.ndarray) and not sel.any():
            continue
        for conv in ("egghand", "egoh4"):
            rows[f"{conv}, {name}"] = forecast_metrics(pred[sel], gt[sel], valid[sel], convention=conv)
    return rows


def forecast_fn(model: torch.nn.Module, seed: int | None = None) -> Callable[[Mapping[str, Any]], np.ndarray]:
    """A callable window -> (10, 42, 3) forecast (canonical metres) for ``viz.forecast_explorer``."""

    def run(window: Mapping[str, Any]) -> np.ndarray:
        batch = collate_windows([dict(window)])
        dev = next(model.parameters()).device
        batch = {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in batch.items()}
        with torch.no_grad():
            return model.forecast(batch, seed=seed)[0].float().cpu().numpy()

    return run


def sample_window(model: torch.nn.Module, window: Mapping[str, Any], n: int, seed: int | None = None
                  ) -> np.ndarray:
    """n sampled forecasts (n, 10, 42, 3) of one window, from the noise seeds seed, seed + 1, ...

    seed None: the seed of the model's deterministic forecast, so hypothesis 0 is that forecast.
    """
    seed = model.config.noise_seed if seed is None else seed
    batch = collate_windows([dict(window)])
    with torch.no_grad():
        return model.sample(batch, n, seed=seed)[0].float().cpu().numpy()


def prompt_forecasts(model: torch.nn.Module, window: Mapping[str, Any], prompts: Sequence[str],
                     seed: int | None = None) -> dict[str, np.ndarray]:
    """{prompt: (10, 42, 3) forecast} of one window under each prompt (everything else unchanged)."""
    run = forecast_fn(model, seed)
    return {p: run({**window, "task": p}) for p in prompts}


def renamed_target_prompts(window: Mapping[str, Any], objects: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """{prompt: object name}: the window's prompt with its target renamed as each other object of the scene
    that the prompt does not name already (``objects``: ``grounding.scene_objects``); the sentence, and so the
    task, stays the same, only which object it names changes."""
    own = str(window["task"])
    target = next((n for n, o in objects.items() if o["role"] == "target"), None)
    if target is None or target not in own:
        raise ValueError(f"the prompt {own!r} does not name the scene's target object {target!r}")
    return {own.replace(target, name): name for name in objects if name != target and name not in own}


def pull_toward(forecast: np.ndarray, reference: np.ndarray, point: np.ndarray) -> float:
    """How much closer (m) the final wrists of ``forecast`` end to ``point`` than those of ``reference``
    ((10, 42, 3) each; the mean over the two wrists; > 0: pulled toward it)."""
    w = list(WRIST_INDICES)
    before = np.linalg.norm(np.asarray(reference)[-1, w] - point, axis=-1)
    after = np.linalg.norm(np.asarray(forecast)[-1, w] - point, axis=-1)
    return float((before - after).mean())


def steering_markdown(forecasts: Mapping[str, np.ndarray], window: Mapping[str, Any],
                      baselines: Mapping[str, np.ndarray] | None = None,
                      named: Mapping[str, np.ndarray] | None = None) -> str:
    """Markdown table for language steering: per prompt, the final-wrist shift from the forecast under the
    window's own prompt (first entry if the own prompt is absent) and ADE / MPJPE against the ground truth;
    then a row per baseline forecast in ``baselines`` (no prompt, no shift), for scale. ``named``: {prompt:
    (3,) position of the object it names}: adds how much closer that prompt's final wrists end to it
    (``pull_toward``)."""
    own = window.get("task")
    ref = forecasts[own] if own in forecasts else next(iter(forecasts.values()))
    gt = np.asarray(window["future_joints"])[None]
    valid = np.asarray(window["future_valid"])[None]
    named = dict(named or {})
    lines = ["| prompt | final-wrist shift vs own prompt (mm) | toward the object it names (mm) | ADE (m) "
             "| MPJPE (m) |", "|---|---|---|---|---|"]
    for prompt, pred in forecasts.items():
        pred = np.asarray(pred)
        w = list(WRIST_INDICES)
        shift = float(np.linalg.norm(pred[-1, w] - ref[-1, w], axis=-1).mean())
        pull = f"{1000 * pull_toward(pred, ref, named[prompt]):+.1f}" if prompt in named and prompt != own else "-"
        m = forecast_metrics(pred[None], gt, valid)
        label = f"**{prompt}** (own)" if prompt == own else prompt
        lines.append(f"| {label} | {1000 * shift:.1f} | {pull} | {m['ade']:.3f} | {m['mpjpe']:.3f} |")
    for name, pred in (baselines or {}).items():
        m = forecast_metrics(np.asarray(pred)[None], gt, valid)
        lines.append(f"| {name} (baseline, no prompt) | - | - | {m['ade']:.3f} | {m['mpjpe']:.3f} |")
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
        if table == "4 encoder" and r.get("top_ade") is not None:
            e = {"top-10% ADE": f"{r['top_ade']:.3f}"}
        if r.get("status", "ok") != "ok":
            e["status"] = f"{r['status']}: {r.get('reason', '')}"
        extra[r["variant"]] = e
    return rows, extra


def ablation_plan(which: Sequence[str], train_config: Any, max_windows: int | None, gr00t_path: str | None = None,
                  egovideo_path: str | None = None, internvl_path: str | None = None,
                  head_models: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What ``run_ablations`` will do for ``which``: {"trainings", "steps", "passes", "text"}.

    trainings: retrained variants, as ``run_ablations`` trains them: Table 2: 4; Table 4's encoder swap: the
    offline pair (EgoVideo-mini if shipped, the scratch CNN) + EgoVideo and InternVL with both encoders' weights;
    Table 5: the random head and the motion MLP, + GR00T-N1.5-3B's head with its weights, else the shipped
    gr00t-mini head for a cpu-small ``train_config``; none with ``head_models`` (trained models, one pass each).
    Each ``train_config.max_steps`` optimizer steps. passes: forecasts over the evaluated windows (Table 3:
    clean + 3 corruptions, Table 4: 1, one per trained variant or given head model).
    """
    cfg = TrainConfig.named(train_config) if isinstance(train_config, str) else train_config
    shipped_mini = (SHIPPED_EGOVIDEO_MINI / "config.json").is_file()
    pretrained_head = bool(gr00t_path) or (SHIPPED_GR00T_MINI_HEAD.is_dir() and cfg.model_preset == "cpu-small")
    head_trainings = 0 if head_models else 2 + pretrained_head
    trainings = 4 * ("loss" in which) + head_trainings * ("head_init" in which)
    trainings += (1 + shipped_mini + 2 * bool(egovideo_path and internvl_path)) * ("encoder" in which)
    passes = 4 * ("modality" in which) + ("egomotion" in which) + trainings
    passes += len(head_models or {}) * ("head_init" in which)
    steps = cfg.max_steps
    text = (f"{trainings} retrained variants of {steps} steps each ({cfg.model_preset}), {passes} forecast passes "
            f"over {max_windows or 'all'} test windows")
    return {"trainings": trainings, "steps": steps, "passes": passes, "text": text}


TABLE5_CHOICES = ("shipped", "retrain")


def table5_head_models(choice: str) -> dict[str, str] | None:
    """Table 5's models for a notebook's choice: "shipped": the shipped EggHand-mini and its random-head twin (the
    same 2,000-step fine-tune from the pretrained and from a random head; no training); "retrain": None, so
    ``run_ablations`` retrains the head variants with the ablation config."""
    if choice not in TABLE5_CHOICES:
        raise ValueError(f"TABLE5: {choice!r}; expected one of {TABLE5_CHOICES}")
    return shipped_head_models() if choice == "shipped" else None


def run_ablations_with_progress(prep_dir: str | os.PathLike, out_dir: str | os.PathLike, which: Sequence[str],
                                **kwargs: Any) -> dict[str, Any]:
    """``ablations.run_ablations`` one ablation at a time under a progress bar (each training and forecast
    pass shows its own bar below it); the rows of all of them, written together to ``out_dir``.

    kwargs: run_ablations' (model, train_config, split, max_windows, the weights paths, baselines, ...).
    """
    rows: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    bar = tqdm(list(which), desc="ablations", unit="table")
    for name in bar:
        bar.set_postfix_str(name)
        res = run_ablations(prep_dir, out_dir, which=(name,), **kwargs)
        rows += res.pop("rows")
        info.update(res)  # e.g. num_top from the egomotion table, vocabulary_size from the modality one
    res = {**info, "which": list(which), "rows": rows}
    write_ablations(res, out_dir)
    return res


# ---------------------------------------------------------------------------------------------------
# The paper's numbers (EgoExo4D, metres; the paper's Tables 1-5) beside this run's
# ---------------------------------------------------------------------------------------------------

PAPER_TABLE1: dict[str, dict[str, float]] = {
    "Static": {"ade": 0.335, "fde": 0.405, "mpjpe": 0.166, "mpjpe_f": 0.179},
    "CVM": {"ade": 0.346, "fde": 0.467, "mpjpe": 0.166, "mpjpe_f": 0.183},
    "EgoH4": {"ade": 0.267, "fde": 0.333, "mpjpe": 0.116, "mpjpe_f": 0.141},
    "EggHand": {"ade": 0.271, "fde": 0.271, "mpjpe": 0.076, "mpjpe_f": 0.077},
}
# Keyed like ``run_ablations``' tables, rows named like its variants where the paper's rows say which they are.
PAPER_ABLATIONS: dict[str, dict[str, dict[str, float]]] = {
    # Table 2's row labels (which loss terms) were lost in the paper's text extraction. Its text says both
    # auxiliary terms improve on L_abs alone, so row 1 (the worst) is presumably L_abs; rows 2 and 3 are
    # L_abs + one auxiliary term each, in an order the text does not give.
    "2 loss": {
        "paper row 1 (label lost)": {"ade": 0.288, "fde": 0.289, "mpjpe": 0.077, "mpjpe_f": 0.077},
        "paper row 2 (label lost)": {"ade": 0.263, "fde": 0.266, "mpjpe": 0.077, "mpjpe_f": 0.077},
        "paper row 3 (label lost)": {"ade": 0.258, "fde": 0.259, "mpjpe": 0.071, "mpjpe_f": 0.071},
    },
    "3 modality": {
        "noisy vision": {"ade": 0.287, "fde": 0.287, "mpjpe": 0.083, "mpjpe_f": 0.083},
        "dummy language": {"ade": 0.278, "fde": 0.277, "mpjpe": 0.077, "mpjpe_f": 0.077},
        "noisy vision + dummy language": {"ade": 0.311, "fde": 0.308, "mpjpe": 0.093, "mpjpe_f": 0.093},
        "clean": {"ade": 0.271, "fde": 0.271, "mpjpe": 0.076, "mpjpe_f": 0.077},
    },
    "4 egomotion": {
        "EgoH4": {"top_ade": 0.294, "top_mpjpe": 0.139, "ade": 0.267, "mpjpe": 0.116},
        "InternVL3.5-1B": {"top_ade": 0.303, "top_mpjpe": 0.112, "ade": 0.287, "mpjpe": 0.082},
        "EggHand": {"top_ade": 0.276, "top_mpjpe": 0.106, "ade": 0.271, "mpjpe": 0.076},
    },
    "5 head init": {
        "random head": {"ade": 0.321, "fde": 0.323, "mpjpe": 0.089, "mpjpe_f": 0.089},
        "GR00T-pretrained head": {"ade": 0.271, "fde": 0.271, "mpjpe": 0.076, "mpjpe_f": 0.077},
    },
}
PAPER_TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "2 loss": ("ade", "fde", "mpjpe", "mpjpe_f"), "3 modality": ("ade", "fde", "mpjpe", "mpjpe_f"),
    "4 egomotion": ("top_ade", "top_mpjpe", "ade", "mpjpe"), "5 head init": ("ade", "fde", "mpjpe", "mpjpe_f"),
}
COLUMN_LABELS = {"ade": "ADE", "fde": "FDE", "mpjpe": "MPJPE", "mpjpe_f": "MPJPE-F", "top_ade": "top-10% ADE",
                 "top_mpjpe": "top-10% MPJPE"}


def our_ablation_rows(results: Mapping[str, Any], table: str) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """This run's rows of a paper table, shaped like ``PAPER_ABLATIONS[table]``: ({row: {column: value}},
    {row: why it did not run}). Table 4 combines the egomotion rows ("<method> top 10%" / "<method> all")
    and the encoder swap's InternVL row into one row per method with top-10% and all-window columns."""
    rows: dict[str, dict[str, float]] = {}
    missing: dict[str, str] = {}
    for r in results["rows"]:
        if r.get("status", "ok") != "ok":
            if r["table"] == table or (table == "4 egomotion" and r["variant"] == "InternVL3.5-1B"):
                missing[r["variant"]] = r.get("reason", "")
            continue
        if r["table"] == table and table != "4 egomotion":
            rows[r["variant"]] = {k: r[k] for k in PAPER_TABLE_COLUMNS[table] if r.get(k) is not None}
        elif table == "4 egomotion" and r["table"] == "4 egomotion":
            method, subset = r["variant"].rsplit(" ", 1) if r["variant"].endswith(" all") else (
                r["variant"].rsplit(" top", 1)[0], "top")
            prefix = "top_" if subset == "top" else ""
            rows.setdefault(method, {}).update({f"{prefix}ade": r["ade"], f"{prefix}mpjpe": r["mpjpe"]})
        elif table == "4 egomotion" and r["table"] == "4 encoder" and r["variant"] == "InternVL3.5-1B":
            rows[r["variant"]] = {"ade": r["ade"], "mpjpe": r["mpjpe"], "top_ade": r.get("top_ade"),
                                  "top_mpjpe": r.get("top_mpjpe")}
    return rows, missing


def baseline_rows(results: Mapping[str, Any], baselines: Sequence[str] = ("LastPose",)) -> dict[str, dict[str, float]]:
    """The baselines' ADE and MPJPE on the ablation's windows (its egomotion table's "all" rows), {name: metrics},
    to draw beside the model's variants; empty when that table did not run."""
    rows, _ = our_ablation_rows(results, "4 egomotion")
    return {b: {"ade": rows[b]["ade"], "mpjpe": rows[b]["mpjpe"]} for b in baselines if b in rows}


def baseline_scale_note(results: Mapping[str, Any], baselines: Sequence[str] = ("LastPose",)) -> str:
    """One markdown line giving the baselines' errors on the ablation's windows (``baseline_rows``), for scale
    beside the model's variants; empty when that table did not run."""
    rows = baseline_rows(results, baselines)
    parts = [f"{b} ADE {r['ade']:.3f}, MPJPE {r['mpjpe']:.3f}" for b, r in rows.items()]
    return f"For scale, on the same windows and without a model: {'; '.join(parts)}." if parts else ""


def paper_vs_ours_changes(table: str, results: Mapping[str, Any], metric: str = "ade"
                          ) -> dict[str, dict[str, float]]:
    """Relative changes (%) the paper and this run show in one table, comparable across datasets whose errors
    differ in scale: {"paper (EgoExo4D)": {row: %}, "this run": {row: %}}.

    "3 modality": each corruption vs the clean row; "4 egomotion": each method's top-10% error vs its error
    on all windows. Rows without both numbers are left out.
    """
    ours, _ = our_ablation_rows(results, table)
    out = {}
    for who, rows in (("paper (EgoExo4D)", PAPER_ABLATIONS[table]), ("this run", ours)):
        if table == "3 modality":
            ref = rows.get("clean", {}).get(metric)
            out[who] = {r: 100 * (v[metric] / ref - 1) for r, v in rows.items()
                        if r != "clean" and ref and v.get(metric) is not None}
        elif table == "4 egomotion":
            out[who] = {r: 100 * (v[f"top_{metric}"] / v[metric] - 1) for r, v in rows.items()
                        if v.get(metric) and v.get(f"top_{metric}") is not None}
        else:
            raise ValueError(f"table: relative changes are defined for '3 modality' and '4 egomotion', not {table!r}")
    return out


def paper_vs_ours_markdown(table: str, results: Mapping[str, Any], digits: int = 3) -> str:
    """One paper table (``PAPER_ABLATIONS`` key) in the paper's shape, each column as "paper | ours".

    Rows: the paper's, in its order, then this run's extra ones (e.g. the baselines of Table 4). A cell
    without a number is "-"; a variant that did not run says "not run".
    """
    paper = PAPER_ABLATIONS[table]
    ours, missing = our_ablation_rows(results, table)
    columns = PAPER_TABLE_COLUMNS[table]
    header = ["row"] + [f"{COLUMN_LABELS[c]} {who}" for c in columns for who in ("paper", "ours")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def cell(row: Mapping[str, Any] | None, c: str) -> str:
        v = None if row is None else row.get(c)
        return "-" if v is None else f"{v:.{digits}f}"

    for name in list(paper) + [r for r in list(ours) + list(missing) if r not in paper]:
        not_run = name in missing and name not in ours
        cells = [name]
        for c in columns:
            cells += [cell(paper.get(name), c), "not run" if not_run else cell(ours.get(name), c)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
