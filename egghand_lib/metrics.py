"""Forecasting metrics in metres, in the two conventions of docs/conventions.md ("Metrics").

Inputs everywhere: ``pred``, ``gt`` (N, T, 42, 3) target frames (numpy or torch), ``valid`` (N, T, 42)
bool from the ground truth. Coordinates of invalid joints are never read (they may be NaN). Results
are python floats (curves: numpy arrays). All maths runs in float64 numpy, vectorised over samples.

Conventions:
- ``"egghand"`` (official EggHand evaluation, paper Table 1):
  ADE: per sample, per target frame with >= 1 valid wrist the mean L2 over its valid wrists; the mean
  over those frames; then the mean over samples that have any. FDE: the same at the final frame.
  MPJPE (wrist-relative, "R-MPJPE"): pooled over every (sample, frame, joint) whose joint AND same-hand
  wrist are valid of ||(p_j - p_w) - (g_j - g_w)|| (wrists are in the pool with error 0).
  MPJPE-F: the same pooled over the final frame.
- ``"egoh4"`` (EgoH4 release): every error pooled over (sample, frame, joint) at once. ADE/FDE over valid
  wrists (all frames / final frame); MPJPE/MPJPE-F absolute ||p_j - g_j|| over valid joints.

Both reduce to one structure, used by every function here: per (sample, frame) a value with a weight,
then per sample a weighted mean over frames, then a weighted mean over samples. The egghand ADE/FDE
give every sample (and every frame inside a sample) with a valid wrist the weight 1; pooled metrics
weigh by the number of valid entries.

A metric with no valid entry at all is ``float('nan')``. An explicitly empty selection (zero samples or
zero frames) raises ValueError, as do bad shapes, masks that do not match and NaN/inf in valid entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from egghand_lib._checks import as_bool_mask, check_finite_where_valid, check_joints, check_nonempty, to_numpy
from egghand_lib.skeleton import JOINTS_PER_HAND, NUM_JOINTS, WRIST_INDICES, WRIST_OF

Array = Any  # np.ndarray | torch.Tensor

CONVENTIONS: tuple[str, ...] = ("egghand", "egoh4")
METRIC_KEYS: tuple[str, ...] = ("ade", "fde", "mpjpe", "mpjpe_f")
_WRISTS = np.array(WRIST_INDICES)
_WRIST_OF = np.array(WRIST_OF)


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention: unknown {convention!r}; expected one of {CONVENTIONS}")


_CHUNK_COORDS = 1 << 21  # coordinates per chunk of samples: bounds the float64 temporaries (~100 MB)


def _chunks(pred: Array, gt: Array, valid: Array, pred_ndim: int = 4) -> list[tuple]:
    """Split inputs into chunks of whole samples, after checking the full shapes once.

    Every metric is a sum over samples, so chunking is exact; it only bounds the memory of the
    float64 copies (8,830 test windows x K samples would otherwise need gigabytes).
    """
    pred, gt, valid = (x if isinstance(x, (np.ndarray, torch.Tensor)) else np.asarray(x) for x in (pred, gt, valid))
    name = "samples" if pred_ndim == 5 else "pred"
    check_joints(pred, name, pred_ndim)
    check_joints(gt, "gt", 4)
    expected = (pred.shape[0],) + tuple(pred.shape[-3:]) if pred_ndim == 5 else tuple(pred.shape)
    if tuple(gt.shape) != expected:
        raise ValueError(f"gt: shape {tuple(gt.shape)} does not match {name} shape {tuple(pred.shape)}")
    if tuple(valid.shape) != tuple(gt.shape[:-1]):
        raise ValueError(
            f"valid: mask shape {tuple(valid.shape)} does not match the data, expected {tuple(gt.shape[:-1])}"
        )
    n = int(pred.shape[0])
    size = max(1, _CHUNK_COORDS // max(1, int(np.prod(pred.shape[1:]))))
    starts = range(0, n, size) if n > 0 else [0]  # zero samples: one empty chunk, rejected by _prepare
    return [(pred[i : i + size], gt[i : i + size], valid[i : i + size]) for i in starts]


def _prepare(pred: Array, gt: Array, valid: Array, pred_ndim: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked float64 copies with invalid coordinates zeroed (so no NaN ever enters the arithmetic).

    pred (N, T, 42, 3) (or (N, K, T, 42, 3) with pred_ndim=5), gt (N, T, 42, 3), valid (N, T, 42).
    Returns pred, gt, valid with pred's extra K axis kept and gt / valid given a matching axis of 1.
    """
    p, g = to_numpy(pred, "pred", np.float64), to_numpy(gt, "gt", np.float64)
    name = "samples" if pred_ndim == 5 else "pred"
    check_joints(p, name, pred_ndim)
    check_joints(g, "gt", 4)
    expected = (p.shape[0],) + p.shape[-3:] if pred_ndim == 5 else p.shape
    if g.shape != expected:
        raise ValueError(f"gt: shape {g.shape} does not match {name} shape {p.shape}")
    v = as_bool_mask(to_numpy(valid, "valid"), "valid", g.shape[:-1])
    check_nonempty(p, name, dims=pred_ndim - 2)
    check_finite_where_valid(g, v, "gt")
    if pred_ndim == 5:
        g, v = g[:, None], v[:, None]
    check_finite_where_valid(p, np.broadcast_to(v, p.shape[:-1]), name)
    return np.where(v[..., None], p, 0.0), np.where(v[..., None], g, 0.0), v


def _frame_terms(p: np.ndarray, g: np.ndarray, v: np.ndarray, convention: str) -> dict[str, tuple]:
    """Per (..., frame) values and weights: {"disp": (val, w), "mpjpe": (val, w)}, each (..., T).

    p, g (..., T, 42, 3) with invalid coordinates zeroed; v (..., T, 42). Leading dims broadcast.
    """
    # Wrist displacement: mean over the valid wrists of a frame.
    wrist_err = np.linalg.norm(p[..., _WRISTS, :] - g[..., _WRISTS, :], axis=-1)  # (..., T, 2)
    wrist_ok = v[..., _WRISTS]
    n_wrist = wrist_ok.sum(-1)
    disp = (wrist_err * wrist_ok).sum(-1) / np.maximum(n_wrist, 1)
    disp_w = (n_wrist > 0).astype(np.float64) if convention == "egghand" else n_wrist.astype(np.float64)

    if convention == "egghand":  # wrist-relative: subtract each joint's own-hand wrist
        p = p - p[..., _WRIST_OF, :]
        g = g - g[..., _WRIST_OF, :]
        ok = v & v[..., _WRIST_OF]
    else:
        ok = v
    joint_err = np.linalg.norm(p - g, axis=-1)  # (..., T, 42)
    n_joint = ok.sum(-1)
    mpjpe = (joint_err * ok).sum(-1) / np.maximum(n_joint, 1)
    return {"disp": (disp, disp_w), "mpjpe": (mpjpe, n_joint.astype(np.float64))}


def _weighted_mean(val: np.ndarray, w: np.ndarray, axis: int = -1) -> np.ndarray:
    w = np.broadcast_to(w, np.broadcast_shapes(val.shape, w.shape))
    total = w.sum(axis)
    return (val * w).sum(axis) / np.maximum(total, 1e-300), total


def _sample_terms(p: np.ndarray, g: np.ndarray, v: np.ndarray, convention: str) -> dict[str, tuple]:
    """Per-sample (value, weight) of each metric in METRIC_KEYS; shapes (...) = leading dims."""
    return _terms_from_frames(_frame_terms(p, g, v, convention), convention)


def _terms_from_frames(frames: dict[str, tuple], convention: str) -> dict[str, tuple]:
    """Per-sample (value, weight) of each metric from the per-frame terms of ``_frame_terms``."""
    disp, disp_w = frames["disp"]
    mp, mp_w = frames["mpjpe"]
    ade, ade_w = _weighted_mean(disp, disp_w)
    if convention == "egghand":  # every sample with a valid wrist counts once
        ade_w = (ade_w > 0).astype(np.float64)
    mpjpe, mpjpe_w = _weighted_mean(mp, mp_w)
    return {
        "ade": (ade, ade_w),
        "fde": (disp[..., -1], disp_w[..., -1]),
        "mpjpe": (mpjpe, mpjpe_w),
        "mpjpe_f": (mp[..., -1], mp_w[..., -1]),
    }


def _aggregate(terms: dict[str, tuple], select: np.ndarray | None = None) -> dict[str, float]:
    """Weighted mean over samples of per-sample (value, weight) pairs; NaN when no weight."""
    out = {}
    for key, (val, w) in terms.items():
        if select is not None:
            val, w = val[select], w[select]
        total = float(w.sum())
        out[key] = float((val * w).sum() / total) if total > 0 else float("nan")
    return out


HAND_PARTS = ("right", "left")
_HAND_MASKS = {"right": np.arange(NUM_JOINTS) < JOINTS_PER_HAND, "left": np.arange(NUM_JOINTS) >= JOINTS_PER_HAND}


class ForecastErrors:
    """One set of forecasts, checked once, and every breakdown of its metrics.

    pred, gt (N, T, 42, 3), valid (N, T, 42). The inputs are validated and turned into per-(sample, frame)
    error terms once (in chunks of samples); ``metrics``, ``per_horizon``, ``by_group`` and ``per_hand``
    then only aggregate those terms. ``hands=True`` also keeps the terms of each hand alone (the other
    hand's joints treated as invalid) for ``per_hand``.
    """

    def __init__(self, pred: Array, gt: Array, valid: Array, convention: str = "egghand", hands: bool = False):
        _check_convention(convention)
        self.convention = convention
        parts = ("all",) + (HAND_PARTS if hands else ())
        pieces: dict[str, list] = {part: [] for part in parts}
        for chunk in _chunks(pred, gt, valid):
            p, g, v = _prepare(*chunk)
            for part in parts:
                vp = v if part == "all" else v & _HAND_MASKS[part]
                pieces[part].append(_frame_terms(p, g, vp, convention))
        self._frames = {part: {key: tuple(np.concatenate([c[key][i] for c in chunks]) for i in range(2))
                               for key in ("disp", "mpjpe")} for part, chunks in pieces.items()}
        self.num_samples = int(self._frames["all"]["disp"][0].shape[0])

    def sample_terms(self, part: str = "all") -> dict[str, tuple]:
        """{metric: (values (N,), weights (N,))}, as ``per_sample_metrics``."""
        return _terms_from_frames(self._frames[part], self.convention)

    def metrics(self, select: np.ndarray | None = None, part: str = "all") -> dict[str, float]:
        """forecast_metrics of the samples ``select`` (bool (N,) or indices; None = all)."""
        return _aggregate(self.sample_terms(part), select)

    def per_horizon(self, select: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """As ``per_horizon_errors``: {"ade": (T,), "mpjpe": (T,)}."""
        out = {}
        for key, name in (("disp", "ade"), ("mpjpe", "mpjpe")):
            val, w = self._frames["all"][key]
            if select is not None:
                val, w = val[select], w[select]
            total = w.sum(0)
            out[name] = np.where(total > 0, (val * w).sum(0) / np.maximum(total, 1e-300), np.nan)
        return out

    def by_group(self, groups: Sequence[str]) -> dict[str, dict[str, float]]:
        """As ``metrics_by_group``: per label, then "all"."""
        terms = self.sample_terms()
        labels = np.asarray([str(x) for x in groups])
        if labels.shape != (self.num_samples,):
            raise ValueError(f"groups: expected {self.num_samples} labels (one per sample), got {len(labels)}")
        if "all" in labels:
            raise ValueError("groups: the label 'all' is reserved for the whole set")
        out = {}
        for label in sorted(set(labels.tolist())):  # a loop over groups, not samples
            sel = labels == label
            out[label] = {**_aggregate(terms, sel), "num_samples": int(sel.sum())}
        out["all"] = {**_aggregate(terms), "num_samples": self.num_samples}
        return out

    def per_hand(self) -> dict[str, dict[str, float]]:
        """As ``per_hand_metrics`` (needs ``hands=True``)."""
        if HAND_PARTS[0] not in self._frames:
            raise ValueError("per_hand: build ForecastErrors with hands=True")
        return {part: self.metrics(part=part) for part in HAND_PARTS}


def per_sample_metrics(pred: Array, gt: Array, valid: Array, convention: str = "egghand") -> dict[str, tuple]:
    """Per-sample values and weights, for custom subsets, bootstraps or tables.

    Returns {key: (values (N,), weights (N,))} for key in METRIC_KEYS, numpy float64. The dataset-level
    metric of any subset S is sum(values[S] * weights[S]) / sum(weights[S]); a weight of 0 means the
    sample has no valid entry for that metric (its value is then 0 and meaningless).
    """
    return ForecastErrors(pred, gt, valid, convention).sample_terms()


def forecast_metrics(pred: Array, gt: Array, valid: Array, convention: str = "egghand") -> dict[str, float]:
    """ADE, FDE, MPJPE, MPJPE-F (metres) of pred vs gt (N, T, 42, 3) with gt validity (N, T, 42).

    Returns {"ade", "fde", "mpjpe", "mpjpe_f"}: python floats, NaN for a metric without valid entries.
    See the module docstring for the two conventions ("egghand": MPJPE wrist-relative, per-sample ADE
    and FDE means; "egoh4": everything pooled, MPJPE absolute).
    """
    return ForecastErrors(pred, gt, valid, convention).metrics()


def per_horizon_errors(pred: Array, gt: Array, valid: Array, convention: str = "egghand") -> dict[str, np.ndarray]:
    """Error curves over the T target frames: {"ade": (T,), "mpjpe": (T,)} float64 numpy.

    "ade"[t] is the wrist displacement at frame t aggregated over samples as the convention's FDE is at
    the final frame (so "ade"[-1] == fde); "mpjpe"[t] is the convention's MPJPE pooled at frame t
    (so "mpjpe"[-1] == mpjpe_f). NaN at frames without valid entries.
    """
    return ForecastErrors(pred, gt, valid, convention).per_horizon()


def per_hand_metrics(pred: Array, gt: Array, valid: Array, convention: str = "egghand") -> dict[str, dict[str, float]]:
    """forecast_metrics restricted to one hand: {"right": {...}, "left": {...}}.

    The other hand's joints are treated as invalid, so ADE/FDE use that hand's wrist only.
    """
    return ForecastErrors(pred, gt, valid, convention, hands=True).per_hand()


def metrics_by_group(
    pred: Array, gt: Array, valid: Array, groups: Sequence[str], convention: str = "egghand"
) -> dict[str, dict[str, float]]:
    """forecast_metrics per group label (e.g. task or scenario per sample), plus "all".

    groups: N labels. Returns {label: {"ade", "fde", "mpjpe", "mpjpe_f", "num_samples"}}, labels sorted,
    then "all" (same as forecast_metrics on everything). The per-group numbers use the same per-sample
    weights as the whole, so groups combine exactly into "all".
    """
    return ForecastErrors(pred, gt, valid, convention).by_group(groups)


def best_of_k(samples: Array, gt: Array, valid: Array, convention: str = "egghand") -> dict[str, float]:
    """Best-of-K (oracle) metrics of sampled forecasts: samples (N, K, T, 42, 3), gt (N, T, 42, 3).

    For each metric separately, each sample's best of its K forecasts (lowest per-sample value) is
    kept, then samples are aggregated as in forecast_metrics. For pooled metrics this is the usual
    minADE / minMPJPE (each sample's count is the same for all K). With K = 1 it equals forecast_metrics.
    """
    _check_convention(convention)
    parts = []
    for chunk in _chunks(samples, gt, valid, pred_ndim=5):
        terms = _sample_terms(*_prepare(*chunk, pred_ndim=5), convention)  # values (n, K), weights (n, 1)
        parts.append({k: (val.min(1), w[:, 0]) for k, (val, w) in terms.items()})
    return _aggregate(
        {k: tuple(np.concatenate([part[k][i] for part in parts]) for i in range(2)) for k in METRIC_KEYS}
    )


def sample_spread(samples: Array, valid: Array | None = None) -> float:
    """Diversity of sampled forecasts: average pairwise distance (APD) in metres.

    samples (N, K, T, 42, 3), K >= 2; valid (N, T, 42) optional (e.g. the ground truth's mask): the
    mean over joints in the mask and over all pairs k < l of ||x_k - x_l||. 0 when all K agree; NaN
    when the mask is empty.
    """
    if not isinstance(samples, (np.ndarray, torch.Tensor)):
        samples = np.asarray(samples)
    check_joints(samples, "samples", 5)
    check_nonempty(samples, "samples", dims=3)
    n, k = int(samples.shape[0]), int(samples.shape[1])
    if k < 2:
        raise ValueError(f"samples: need K >= 2 forecasts per sample for a spread, got shape {tuple(samples.shape)}")
    shape = (n,) + tuple(samples.shape[2:-1])
    v_all = np.ones(shape, bool) if valid is None else as_bool_mask(to_numpy(valid, "valid"), "valid", shape)
    total, size = 0.0, max(1, _CHUNK_COORDS // int(np.prod(samples.shape[1:])))
    for start in range(0, n, size):  # chunks of samples bound the memory of the float64 copies
        v = v_all[start : start + size]
        x = to_numpy(samples[start : start + size], "samples", np.float64)
        vk = np.broadcast_to(v[:, None], x.shape[:-1])
        check_finite_where_valid(x, vk, "samples")
        x = np.where(vk[..., None], x, 0.0)
        for i in range(k - 1):  # a loop over forecasts (K is small), vectorised over samples and joints
            d = np.linalg.norm(x[:, i : i + 1] - x[:, i + 1 :], axis=-1)  # (n, K-i-1, T, 42)
            total += float((d * v[:, None]).sum())
    count = v_all.sum() * k * (k - 1) / 2
    return total / count if count > 0 else float("nan")
