"""Masked geometric training losses (docs/conventions.md, "Losses"; paper Eq. 12-15, weights from the
official code).

L = 0.6 L_abs + 0.2 L_rel + 0.2 L_pair, computed in float32. ``variant="paper"`` (default, the paper text):
- L_abs: mean L1 over valid (sample, frame, joint, axis) of pred - gt.
- L_rel: mean L1 of wrist-relative coordinates (joint - same-hand wrist) over non-wrist joints whose joint
  AND wrist are valid.
- L_pair: mean squared difference of predicted vs ground-truth Euclidean distances over intra-hand joint
  pairs (i < j; the mean over ordered pairs is the same) whose two joints are valid.

``variant="egghand-code"`` reproduces the official code's loss (with ``EggHandConfig.loss_space =
"normalised"`` it also runs where the official one does, on min-max normalised coordinates):
- L_rel keeps each wrist's own (absolute) coordinates in its pool: the relative representation of a hand
  is [wrist, joint_1 - wrist, ..., joint_20 - wrist], every entry valid when its joint and wrist are;
- L_pair averages over all ordered same-hand pairs including i = j (a full 21 x 21 distance matrix per
  hand; the diagonal terms are 0 here, where the official float32 matrix has tiny non-zero ones);
- a sample (first axis) without any valid joint has its mask set all true, so it trains on the
  coordinates it carries (the official data's all-zero "missing" markers; here whatever stands at invalid
  joints, which the pipeline writes as 0 m).

Invalid joints influence neither values nor gradients: their coordinates are replaced by 0 with
``torch.where`` BEFORE any arithmetic (``NaN * 0`` would still be NaN, and so would its gradient), and
distances use a square root whose gradient stays finite at 0. A term without any valid element is 0,
with a zero (finite) gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from egghand_lib._checks import as_bool_mask, check_finite_where_valid, check_joints
from egghand_lib.skeleton import JOINTS_PER_HAND, NUM_JOINTS, WRIST_INDICES, WRIST_OF, intra_hand_pairs

Array = Any  # np.ndarray | torch.Tensor

DEFAULT_WEIGHTS: tuple[float, float, float] = (0.6, 0.2, 0.2)
LOSS_VARIANTS = ("paper", "egghand-code")
# Gather indices, built once (moved to the prediction's device when used).
_NON_WRIST = torch.tensor([j for j in range(NUM_JOINTS) if j not in WRIST_INDICES])
_NON_WRIST_PARENT = torch.tensor([WRIST_OF[j] for j in _NON_WRIST.tolist()])
_PAIR_I, _PAIR_J = (torch.tensor(x) for x in zip(*intra_hand_pairs(), strict=True))
# Official variant: every ordered same-hand pair, i = j included.
_ALL_PAIR_I, _ALL_PAIR_J = (torch.tensor(x) for x in zip(*[(i, j) for h in (0, JOINTS_PER_HAND)
                                                            for i in range(h, h + JOINTS_PER_HAND)
                                                            for j in range(h, h + JOINTS_PER_HAND)], strict=True))


def _safe_norm(x: torch.Tensor) -> torch.Tensor:
    """||x|| over the last axis with a finite (zero) gradient at x = 0, where plain sqrt gives NaN."""
    sq = (x * x).sum(-1)
    pos = sq > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, sq, torch.ones_like(sq))), torch.zeros_like(sq))


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x over mask (same shape); 0 with a zero gradient when the mask is empty."""
    return torch.where(mask, x, torch.zeros_like(x)).sum() / mask.sum().clamp(min=1)


def forecast_loss(
    pred: torch.Tensor, gt: Array, valid: Array, weights: Sequence[float] = DEFAULT_WEIGHTS, variant: str = "paper"
) -> dict[str, torch.Tensor]:
    """Masked abs / wrist-relative / pairwise-distance losses of pred vs gt.

    pred: (..., 42, 3) torch tensor in metres (typically (B, T, 42, 3)), differentiable.
    gt: same shape (torch or numpy); valid: (...,  42) bool (ground-truth validity).
    weights: (w_abs, w_rel, w_pair); variant: "paper" or "egghand-code" (module docstring).
    Returns scalar float32 tensors {"total", "abs", "rel", "pair"}.
    """
    if variant not in LOSS_VARIANTS:
        raise ValueError(f"variant: expected one of {LOSS_VARIANTS}, got {variant!r}")
    if not isinstance(pred, torch.Tensor):
        raise ValueError(f"pred: expected a torch.Tensor, got {type(pred).__name__}")
    check_joints(pred, "pred")
    gt = torch.as_tensor(gt, device=pred.device)
    if gt.shape != pred.shape:
        raise ValueError(f"gt: shape {tuple(gt.shape)} does not match pred shape {tuple(pred.shape)}")
    valid = as_bool_mask(torch.as_tensor(valid, device=pred.device), "valid", tuple(pred.shape[:-1]))
    if pred.numel() == 0:
        raise ValueError(f"pred: empty selection (shape {tuple(pred.shape)})")
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (3,) or not np.isfinite(w).all():
        raise ValueError(f"weights: expected 3 finite numbers (abs, rel, pair), got {weights!r}")
    check_finite_where_valid(gt, valid, "gt")
    check_finite_where_valid(pred, valid, "pred")
    if variant == "egghand-code":
        # A sample without any valid joint: the official mask turns all true (it trains on its markers).
        lead = valid.reshape(valid.shape[0], -1) if valid.ndim >= 3 else valid.reshape(1, -1)
        empty = ~lead.any(-1)
        if bool(empty.any()):
            check_finite_where_valid(gt, torch.ones_like(valid), "gt")
            check_finite_where_valid(pred, torch.ones_like(valid), "pred")
            valid = valid | (empty.view(-1, *([1] * (valid.ndim - 1))) if valid.ndim >= 3 else empty)

    # Zero invalid coordinates first: nothing downstream ever sees a NaN or a huge value.
    m = valid[..., None]
    p = torch.where(m, pred.float(), torch.zeros((), dtype=torch.float32, device=pred.device))
    g = torch.where(m, gt.float(), torch.zeros((), dtype=torch.float32, device=pred.device))

    l_abs = _masked_mean((p - g).abs(), m.expand_as(p))

    dev = pred.device
    if variant == "paper":
        nw, par = _NON_WRIST.to(dev), _NON_WRIST_PARENT.to(dev)
        rel_err = ((p[..., nw, :] - p[..., par, :]) - (g[..., nw, :] - g[..., par, :])).abs()
        rel_ok = (valid[..., nw] & valid[..., par])[..., None].expand_as(rel_err)
    else:  # wrists stay absolute in the pool: [w, j - w, ...] per hand
        wrist = torch.tensor(WRIST_OF, device=dev)
        is_wrist = torch.zeros(NUM_JOINTS, dtype=torch.bool, device=dev)
        is_wrist[list(WRIST_INDICES)] = True
        keep = is_wrist[:, None]  # (42, 1): a wrist's own coordinates, not wrist - wrist
        rel_p = torch.where(keep, p, p - p[..., wrist, :])
        rel_g = torch.where(keep, g, g - g[..., wrist, :])
        rel_err = (rel_p - rel_g).abs()
        rel_ok = (valid & valid[..., wrist])[..., None].expand_as(rel_err)
    l_rel = _masked_mean(rel_err, rel_ok)

    i, j = (_PAIR_I.to(dev), _PAIR_J.to(dev)) if variant == "paper" else (_ALL_PAIR_I.to(dev), _ALL_PAIR_J.to(dev))
    d_pred = _safe_norm(p[..., i, :] - p[..., j, :])
    d_gt = _safe_norm(g[..., i, :] - g[..., j, :])
    l_pair = _masked_mean((d_pred - d_gt) ** 2, valid[..., i] & valid[..., j])

    total = float(w[0]) * l_abs + float(w[1]) * l_rel + float(w[2]) * l_pair
    return {"total": total, "abs": l_abs, "rel": l_rel, "pair": l_pair}
