"""Evaluation: Static, CVM and a trained model on one split (docs/conventions.md: metrics, baselines).

Every number comes from ``egghand_lib.metrics`` on the forecasts of all windows of the split (or an
evenly spaced subset): both metric conventions, per-horizon curves, per-task and per-hand tables, the
top-10% egomotion subset, and for sampled forecasts best-of-K and spread. Results are written as
markdown, CSV and JSON, each file atomically.

    from egghand_lib.evaluation import evaluate
    results = evaluate("data/prepared", split="test", model="runs/cpu-small", out_dir="results/eval")
    results["metrics"]["EggHand"]["egghand"]["all"]["mpjpe"]
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from egghand_lib.baselines import ConstantVelocity, LastPose, StaticPose
from egghand_lib.batch import batch_to, collate_windows, target_offsets
from egghand_lib.data.feature_cache import attach_feature_cache
from egghand_lib.data.sources import open_windows
from egghand_lib.egomotion import top_fraction_mask
from egghand_lib.io import atomic_write_json, atomic_write_text
from egghand_lib.metrics import CONVENTIONS, METRIC_KEYS, ForecastErrors, best_of_k, sample_spread
from egghand_lib.models.egghand import EggHandPolicy
from egghand_lib.normalization import minmax_normalize

MODEL_NAME = "EggHand"
BASELINES = ("Static", "CVM")
METRIC_LABELS = {"ade": "ADE", "fde": "FDE", "mpjpe": "MPJPE", "mpjpe_f": "MPJPE-F"}
Transform = Callable[[dict], dict]


# ----------------------------------------------------------------------------------------------
# Forecasts


def baseline_forecasts(arrays: dict[str, Any], train_arrays: dict[str, Any], protocol: str = "future",
                       methods: Sequence[str] = ("Static", "CVM")) -> dict[str, np.ndarray]:
    """Baseline forecasts (N, 10, 42, 3) float32 for the windows in ``arrays``, one per name in ``methods``.

    Static is fitted on the training windows' observed joints (the mean canonical pose; docs/conventions.md,
    "Baselines"); CVM
    falls back to that pose for joints never observed. "LastPose" (each joint held where it was last
    seen; not in the paper) may be asked for too. ``protocol`` sets the target offsets.
    """
    makers = {"Static": lambda s: s, "CVM": ConstantVelocity, "LastPose": LastPose}
    unknown = [m for m in methods if m not in makers]
    if unknown:
        raise ValueError(f"methods: unknown baseline(s) {unknown}; expected names from {list(makers)}")
    offsets = target_offsets(protocol)
    static = StaticPose().fit(train_arrays["past_joints"], train_arrays["past_valid"])
    past, past_valid = arrays["past_joints"], arrays["past_valid"]
    kw = dict(horizon=len(offsets), first_offset=offsets[0])
    return {m: np.asarray(makers[m](static).predict(past, past_valid, **kw), dtype=np.float32) for m in methods}


def states_outside_training_range(model: nn.Module, arrays: dict[str, Any]) -> dict[str, Any] | None:
    """How far the observed states of ``arrays`` lie outside the model's training range: the fraction of valid
    state numbers whose min-max normalised value exceeds the model's ``state_clip`` (they are clipped to it),
    the worst dimension and its normalised value. None for a model without min-max statistics."""
    norm = getattr(model, "normalizer", None)
    if norm is None or not getattr(norm, "has_stats", False):
        return None
    lo, hi = (t.detach().cpu().double().numpy() for t in norm.bounds("state"))
    past, valid, ext = (np.asarray(arrays[k]) for k in ("past_joints", "past_valid", "past_extrinsics"))
    state = np.concatenate([past.reshape(*past.shape[:2], -1), ext.reshape(*ext.shape[:2], 12)], axis=-1)
    known = np.concatenate([np.repeat(valid, 3, axis=-1), np.ones((*state.shape[:2], 12), bool)], axis=-1)
    z = minmax_normalize(torch.from_numpy(state.astype(np.float64)), torch.from_numpy(lo), torch.from_numpy(hi),
                         getattr(norm, "constant", "zero"))
    z = np.where(known, np.abs(z.numpy()), 0.0)
    limit = norm.state_clip if norm.state_clip is not None else 1.0
    worst = int(np.argmax(z.reshape(-1, z.shape[-1]).max(axis=0)))
    return {"clip": norm.state_clip, "fraction_beyond": float((z > limit).sum() / max(1, known.sum())),
            "worst_dim": worst, "worst_value": float(z[..., worst].max())}


def subset_indices(num_items: int, max_windows: int | None) -> np.ndarray:
    """All indices, or ``max_windows`` evenly spaced ones (deterministic)."""
    if max_windows is None or num_items <= max_windows:
        return np.arange(num_items)
    return np.unique(np.linspace(0, num_items - 1, max_windows).round().astype(np.int64))


@torch.no_grad()
def predict_model(model: nn.Module, dataset, indices: Sequence[int] | None = None, *, batch_size: int = 32,
                  transform: Transform | None = None, num_samples: int = 0, sample_seed: int = 0,
                  device: str | torch.device | None = None, progress: bool = True, desc: str = "forecast",
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """The model's deterministic forecasts (N, 10, 42, 3) float32 for ``dataset[indices]`` and, with
    ``num_samples`` K > 0, sampled forecasts (N, K, 10, 42, 3) (else None).

    ``transform(batch) -> batch`` is applied to every batch before the model sees it (modality
    corruptions of the ablations). The model's RNG use never leaks out (``fork_rng``).
    """
    indices = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    if not indices:
        raise ValueError("indices: empty selection (no windows to forecast)")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    collate = getattr(dataset, "collate_fn", collate_windows)
    was_training = model.training
    model.eval()
    preds, samples = [], []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for lo in tqdm(range(0, len(indices), batch_size), desc=desc, disable=not progress, dynamic_ncols=True,
                       leave=False):
            batch = collate([dataset[i] for i in indices[lo:lo + batch_size]])
            if transform is not None:
                batch = transform(batch)
            batch = batch_to(batch, device)
            preds.append(model.forecast(batch).float().cpu().numpy())
            if num_samples > 0:
                samples.append(model.sample(batch, num_samples, seed=sample_seed).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(preds), (np.concatenate(samples) if samples else None)


# ----------------------------------------------------------------------------------------------
# Metrics


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """JSON-friendly: floats (NaN -> None), ints, nested dicts / lists."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[k] = _clean(v)
        elif isinstance(v, np.ndarray):
            out[k] = [None if not math.isfinite(x) else float(x) for x in v.tolist()]
        elif isinstance(v, float | np.floating):
            out[k] = None if not math.isfinite(float(v)) else float(v)
        elif isinstance(v, np.integer):
            out[k] = int(v)
        else:
            out[k] = v
    return out


def compute_results(preds: dict[str, np.ndarray], arrays: dict[str, Any], *,
                    conventions: Sequence[str] = CONVENTIONS, top_fraction: float = 0.1,
                    group_key: str = "scenario", samples: dict[str, np.ndarray] | None = None,
                    reference: str = MODEL_NAME) -> dict[str, Any]:
    """All tables for the forecasts ``preds`` {method: (N, T, 42, 3)} of the windows in ``arrays``.

    ``arrays``: future_joints (N, T, 42, 3), future_valid (N, T, 42), egomotion (N,) and the
    ``group_key`` labels (N,). Returns a JSON-ready dict:
    metrics[method][convention]["all" | "top"] = {ade, fde, mpjpe, mpjpe_f};
    per_horizon[method][convention] = {"ade": [T], "mpjpe": [T]}; per_group[method] = {label: {...}}
    (egghand convention); per_hand[method] = {"right"|"left": {...}}; sampled[method] = best-of-K and
    spread; ratios["<reference>/<baseline>"] = metric ratios (egghand convention, all windows).
    """
    gt, valid = arrays["future_joints"], arrays["future_valid"]
    n = len(gt)
    for name, p in preds.items():
        if np.shape(p) != np.shape(gt):
            raise ValueError(f"preds[{name!r}]: shape {np.shape(p)} != future_joints {np.shape(gt)}")
    top = _top_mask(arrays, top_fraction)
    res: dict[str, Any] = {
        "num_windows": int(n), "top_fraction": top_fraction, "num_top": int(top.sum()) if top is not None else 0,
        "methods": list(preds), "conventions": list(conventions), "group_key": group_key,
        "metrics": {}, "per_horizon": {}, "per_group": {}, "per_hand": {}, "sampled": {}, "ratios": {},
    }
    for name, p in preds.items():
        res["metrics"][name] = {}
        res["per_horizon"][name] = {}
        errors = {}
        for conv in dict.fromkeys([*conventions, "egghand"]):  # each set of forecasts is checked once
            errors[conv] = ForecastErrors(p, gt, valid, conv, hands=conv == "egghand")
        for conv in conventions:
            entry = {"all": errors[conv].metrics()}
            if top is not None and top.any():
                entry["top"] = errors[conv].metrics(top)
            res["metrics"][name][conv] = entry
            res["per_horizon"][name][conv] = errors[conv].per_horizon()
        if group_key in arrays:
            res["per_group"][name] = errors["egghand"].by_group(list(arrays[group_key]))
        res["per_hand"][name] = errors["egghand"].per_hand()
    for name, s in (samples or {}).items():
        entry = {"k": int(s.shape[1])}
        for conv in conventions:
            entry[conv] = best_of_k(s, gt, valid, convention=conv)
        entry["spread"] = sample_spread(s, valid) if s.shape[1] >= 2 else 0.0
        res["sampled"][name] = entry
    if reference in preds:
        ref = res["metrics"][reference]["egghand"]["all"] if "egghand" in conventions else None
        for base in preds:
            if ref is not None and base != reference:
                other = res["metrics"][base]["egghand"]["all"]
                res["ratios"][f"{reference}/{base}"] = {k: ref[k] / other[k] if other[k] else float("nan")
                                                         for k in METRIC_KEYS}
    return _clean(res)


def _top_mask(arrays: dict[str, Any], fraction: float) -> np.ndarray | None:
    if "egomotion" not in arrays:
        return None
    scores = np.asarray(arrays["egomotion"], dtype=np.float64)
    if not np.isfinite(scores).any():
        return None
    return np.asarray(top_fraction_mask(scores, fraction), dtype=bool)


# ----------------------------------------------------------------------------------------------
# Writers


def _f(v: Any, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_markdown(res: dict[str, Any], title: str = "Evaluation") -> str:
    """A readable report of ``compute_results`` output."""
    keys = list(METRIC_KEYS)
    parts = [f"# {title}\n"]
    meta = {k: res[k] for k in ("split", "protocol", "num_windows", "num_top", "model") if k in res}
    parts.append(", ".join(f"{k}: {v}" for k, v in meta.items()) + " (metres)\n")
    for conv in res["conventions"]:
        label = "EggHand convention (paper Table 1)" if conv == "egghand" else "EgoH4 convention"
        parts.append(f"\n## All windows, {label}\n\n")
        rows = [[m] + [_f(res["metrics"][m][conv]["all"].get(k)) for k in keys] for m in res["methods"]]
        parts.append(md_table(["method"] + [METRIC_LABELS[k] for k in keys], rows))
    if res["ratios"]:
        parts.append("\n## Ratios (EggHand convention, all windows; < 1 = better than the baseline)\n\n")
        parts.append(md_table(["ratio"] + [METRIC_LABELS[k] for k in keys],
                              [[r] + [_f(v.get(k), 2) for k in keys] for r, v in res["ratios"].items()]))
    if res["num_top"]:
        pct = round(100 * res["top_fraction"])
        parts.append(f"\n## Top {pct}% egomotion ({res['num_top']} windows) vs all, EggHand convention\n\n")
        rows = []
        for m in res["methods"]:
            conv = "egghand" if "egghand" in res["conventions"] else res["conventions"][0]
            e = res["metrics"][m][conv]
            rows.append([m, _f(e.get("top", {}).get("ade")), _f(e.get("top", {}).get("mpjpe")),
                         _f(e["all"]["ade"]), _f(e["all"]["mpjpe"])])
        parts.append(md_table(["method", f"ADE top {pct}%", f"MPJPE top {pct}%", "ADE all", "MPJPE all"], rows))
    conv0 = res["conventions"][0]
    horizon = len(next(iter(res["per_horizon"].values()))[conv0]["ade"]) if res["per_horizon"] else 0
    if horizon:
        parts.append(f"\n## Error per target frame ({conv0} convention): wrist displacement / MPJPE\n\n")
        ph = res["per_horizon"]
        rows = [[t + 1] + [f"{_f(ph[m][conv0]['ade'][t])} / {_f(ph[m][conv0]['mpjpe'][t])}" for m in res["methods"]]
                for t in range(horizon)]
        parts.append(md_table(["frame"] + list(res["methods"]), rows))
    if res["per_group"]:
        parts.append(f"\n## Per {res['group_key']} (EggHand convention): ADE / MPJPE\n\n")
        labels = list(next(iter(res["per_group"].values())))
        first = res["methods"][0]
        rows = [[lab, res["per_group"][first][lab]["num_samples"]]
                + [f"{_f(res['per_group'][m][lab]['ade'])} / {_f(res['per_group'][m][lab]['mpjpe'])}"
                   for m in res["methods"]] for lab in labels]
        parts.append(md_table([res["group_key"], "windows"] + list(res["methods"]), rows))
    if res["per_hand"]:
        parts.append("\n## Per hand (EggHand convention): ADE / MPJPE\n\n")
        rows = [[m] + [f"{_f(res['per_hand'][m][h]['ade'])} / {_f(res['per_hand'][m][h]['mpjpe'])}"
                       for h in ("right", "left")] for m in res["methods"]]
        parts.append(md_table(["method", "right", "left"], rows))
    if res["sampled"]:
        parts.append("\n## Sampled forecasts: best-of-K (EggHand convention) and spread\n\n")
        rows = []
        for m, e in res["sampled"].items():
            conv = "egghand" if "egghand" in e else conv0
            rows.append([m, e["k"]] + [_f(e[conv].get(k)) for k in keys] + [_f(e["spread"])])
        parts.append(md_table(["method", "K"] + [f"min {METRIC_LABELS[k]}" for k in keys] + ["spread (APD)"], rows))
    return "".join(parts)


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for r in rows:
        w.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in r])
    return buf.getvalue()


def write_results(res: dict[str, Any], out_dir: str | Path, name: str = "evaluation",
                  title: str = "Evaluation") -> dict[str, Path]:
    """Write ``name``.json, ``name``.md, ``name``.csv (long format: method, convention, subset, metric,
    value) and ``name``_per_horizon.csv / ``name``_per_group.csv, each atomically. Returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"{name}{suffix}" for k, suffix in (
        ("json", ".json"), ("md", ".md"), ("csv", ".csv"), ("per_horizon", "_per_horizon.csv"),
        ("per_group", "_per_group.csv"))}
    rows = []
    for m, by_conv in res["metrics"].items():
        for conv, subsets in by_conv.items():
            for subset, vals in subsets.items():
                rows += [[m, conv, subset, k, vals.get(k)] for k in METRIC_KEYS]
    for m, e in res.get("sampled", {}).items():
        for conv in res["conventions"]:
            rows += [[m, conv, f"best_of_{e['k']}", k, e[conv].get(k)] for k in METRIC_KEYS]
        rows.append([m, "", f"samples_{e['k']}", "spread", e["spread"]])
    horizon_rows = []
    for m, by_conv in res["per_horizon"].items():
        for conv, curves in by_conv.items():
            horizon_rows += [[m, conv, t + 1, curves["ade"][t], curves["mpjpe"][t]] for t in range(len(curves["ade"]))]
    group_rows = [[m, lab] + [v.get(k) for k in METRIC_KEYS] + [v.get("num_samples")]
                  for m, groups in res.get("per_group", {}).items() for lab, v in groups.items()]
    atomic_write_json(paths["json"], res)
    atomic_write_text(paths["md"], to_markdown(res, title))
    atomic_write_text(paths["csv"], _csv_text(["method", "convention", "subset", "metric", "value"], rows))
    atomic_write_text(paths["per_horizon"], _csv_text(["method", "convention", "frame", "ade", "mpjpe"], horizon_rows))
    atomic_write_text(paths["per_group"], _csv_text(["method", res.get("group_key", "group")] + list(METRIC_KEYS)
                                                     + ["num_samples"], group_rows))
    return paths


# ----------------------------------------------------------------------------------------------
# The whole evaluation


def select_windows(arrays: dict[str, Any], idx: np.ndarray) -> dict[str, Any]:
    """The window arrays (``WindowDataset.arrays()``) of the windows ``idx``; other entries as they are."""
    out = {}
    for k, v in arrays.items():
        if isinstance(v, np.ndarray | torch.Tensor) and len(v) == len(arrays["future_joints"]):
            out[k] = np.asarray(v)[idx]
        elif isinstance(v, list | tuple) and len(v) == len(arrays["future_joints"]):
            out[k] = [v[i] for i in idx]
        else:
            out[k] = v
    return out


def evaluate(prep_dir: str | Path | None, split: str = "test", model: nn.Module | str | Path | None = None,
             out_dir: str | Path | None = None, *, protocol: str = "future", edges: str = "mask",
             train_split: str = "train",
             batch_size: int = 32, num_samples: int = 0, conventions: Sequence[str] = CONVENTIONS,
             top_fraction: float = 0.1, group_key: str = "scenario", max_windows: int | None = None,
             device: str | None = None, progress: bool = True, name: str = "evaluation",
             dataset=None, train_dataset=None, feature_cache: str | Path | None = None,
             lerobot_dir: str | Path | None = None, baselines: Sequence[str] = BASELINES) -> dict[str, Any]:
    """Evaluate the ``baselines`` (default Static and CVM; "LastPose" may be added) and (optionally) a model on
    ``split`` of a prepared folder (or of LeRobot datasets: ``lerobot_dir`` instead of ``prep_dir``, see
    ``egghand_lib.data.sources``; the same windows).

    ``model``: an nn.Module, a finished training run folder or a ``save_pretrained`` folder.
    ``num_samples`` K > 0 adds best-of-K and spread of K sampled forecasts. ``max_windows`` evaluates
    an evenly spaced subset. Writes ``name``.{json,md,csv} (+ per-horizon / per-group CSVs) to
    ``out_dir`` when given; returns the results dict (see ``compute_results``).
    ``dataset`` / ``train_dataset``: WindowDatasets to use instead of ``prep_dir`` (the evaluated
    windows and those the Static pose is fitted on). ``feature_cache``: a folder of precomputed encoder
    features (`egghand cache`), for a model trained on them (encoder="cached").
    """
    ds, train_ds = open_datasets(prep_dir, split, train_split, protocol, dataset, train_dataset, edges,
                                 lerobot_dir)
    if feature_cache is not None:
        ds, _ = attach_feature_cache(ds, feature_cache, split)
    idx = subset_indices(len(ds), max_windows)
    arrays = select_windows(ds.arrays(), idx)
    preds = baseline_forecasts(arrays, train_ds.arrays(), protocol, methods=baselines)
    samples = {}
    if model is not None:
        net = model if isinstance(model, nn.Module) else EggHandPolicy.from_pretrained(model)
        if device is not None:
            net.to(device)
        preds[MODEL_NAME], s = predict_model(net, ds, idx, batch_size=batch_size, num_samples=num_samples,
                                             progress=progress, desc=f"EggHand on {split}")
        if s is not None:
            samples[MODEL_NAME] = s
        outside = states_outside_training_range(net, arrays)
        if outside is not None and outside["fraction_beyond"] > 0:
            print(f"[evaluate] warning: {100 * outside['fraction_beyond']:.2g}% of the observed state numbers of "
                  f"{split} lie beyond the training range (normalised |x| > {outside['clip'] or 1:g}; worst: "
                  f"dimension {outside['worst_dim']} at {outside['worst_value']:.3g})"
                  + ("; the model sees them clipped" if outside["clip"] else ""))
    res = compute_results(preds, arrays, conventions=conventions, top_fraction=top_fraction, group_key=group_key,
                          samples=samples)
    res = {"split": split, "protocol": protocol, "edges": edges,
           "prep_dir": None if prep_dir is None else str(prep_dir),
           **({"lerobot_dir": str(lerobot_dir)} if lerobot_dir is not None else {}),
           "model": None if model is None else (str(model) if not isinstance(model, nn.Module) else "in-memory"),
           **res}
    if model is not None:
        res["state_outside_training_range"] = outside
    if out_dir is not None:
        write_results(res, out_dir, name=name, title=f"Evaluation on {split}")
    return res


def open_datasets(prep_dir, split: str, train_split: str, protocol: str, dataset=None, train_dataset=None,
                  edges: str = "mask", lerobot_dir=None):
    """(evaluated, training) window datasets: the given ones, else those of ``prep_dir`` or ``lerobot_dir``."""
    if dataset is None or train_dataset is None:
        if prep_dir is None and lerobot_dir is None:
            raise ValueError("prep_dir: needed (or lerobot_dir) unless both dataset and train_dataset are given")
        source = {"prep_dir": prep_dir, "lerobot_dir": lerobot_dir}
        if dataset is None:
            dataset = open_windows(split, protocol, edges=edges, **source)
        if train_dataset is None:
            # the Static pose needs only the training windows' joints, never their frames
            train_dataset = dataset if split == train_split else open_windows(train_split, protocol, edges=edges,
                                                                              load_frames=False, **source)
    return dataset, train_dataset


def summary_line(res: dict[str, Any]) -> str:
    """One line per method (EggHand convention, all windows)."""
    lines = []
    for m in res["methods"]:
        e = res["metrics"][m]["egghand"]["all"] if "egghand" in res["metrics"][m] else None
        if e:
            lines.append(f"{m:8s} " + "  ".join(f"{METRIC_LABELS[k]} {_f(e[k])}" for k in METRIC_KEYS))
    for r, v in res.get("ratios", {}).items():
        lines.append(f"{r}: " + "  ".join(f"{METRIC_LABELS[k]} {_f(v[k], 2)}" for k in METRIC_KEYS))
    return "\n".join(lines)
