"""Egomotion score of a window and the high-egomotion subset (docs/conventions.md, "Egomotion"; paper Sec. 5.2.3).

score = mean over consecutive frames (t-1, t) of the window (observation + target) of ||E_t - E_{t-1}||_F,
with E the 3x4 world -> camera matrix. Rotation changes count in radians-ish units (a chord of the
rotation matrices) and translation changes in metres, as in the paper: a plain norm of the variation.
Since t = -R c, the translation part depends on where the origin of the frame is (a head turn far from
the origin moves t a lot): pass extrinsics in the window's canonical frame (origin at the first camera
centre, as egghand_lib.data.windows does) so that scores compare across takes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from egghand_lib._checks import as_bool_mask, to_numpy

Array = Any  # np.ndarray | torch.Tensor


def egomotion_score(extrinsics: Array, valid_frames: Array | None = None) -> Array:
    """Egomotion of each window: extrinsics (N, T, 3, 4) or (N, T, 4, 4) -> (N,).

    valid_frames: optional (N, T) bool, False for frames without a real camera pose (for example the
    clamped copies outside an episode); only pairs of ADJACENT frames that are both valid are used, so
    a gap is never bridged. A window without such a pair scores NaN. Extrinsics of invalid frames may
    be anything (NaN included). Returns the input's array type (numpy float64 for numpy input, torch
    in the input's dtype for torch input).
    """
    is_torch = isinstance(extrinsics, torch.Tensor)
    E = extrinsics if is_torch else to_numpy(extrinsics, "extrinsics", np.float64)
    if E.ndim != 4 or tuple(E.shape[-2:]) not in ((3, 4), (4, 4)):
        raise ValueError(f"extrinsics: expected shape (N, T, 3, 4) or (N, T, 4, 4), got {tuple(E.shape)}")
    n, t = int(E.shape[0]), int(E.shape[1])
    if n == 0:
        raise ValueError(f"extrinsics: empty selection (shape {tuple(E.shape)})")
    if t < 2:
        raise ValueError(f"extrinsics: need at least 2 frames per window, got shape {tuple(E.shape)}")
    E = E[..., :3, :]
    xp = torch if is_torch else np

    if valid_frames is None:
        ok = torch.ones((n, t), dtype=torch.bool, device=E.device) if is_torch else np.ones((n, t), bool)
    else:
        vf = valid_frames if is_torch else to_numpy(valid_frames, "valid_frames")
        vf = torch.as_tensor(vf, device=E.device) if is_torch else vf
        ok = as_bool_mask(vf, "valid_frames", (n, t))
    finite = xp.isfinite(E).reshape(n, t, 12).all(-1)
    if bool((ok & ~finite).any()):
        raise ValueError("extrinsics: NaN or inf in a valid frame; mark the frame invalid instead")

    E = xp.where(ok[..., None, None], E, xp.zeros_like(E))
    pair_ok = ok[:, 1:] & ok[:, :-1]  # (N, T-1)
    diff = E[:, 1:] - E[:, :-1]
    step = (diff**2).sum((-1, -2)) ** 0.5 if xp is np else torch.linalg.matrix_norm(diff)
    count = pair_ok.sum(1)
    total = xp.where(pair_ok, step, xp.zeros_like(step)).sum(1)
    if xp is np:
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))


def top_fraction_mask(scores: Array, fraction: float = 0.1) -> Array:
    """Windows at or above the (1 - fraction) quantile of the finite scores: (N,) -> (N,) bool.

    fraction=0.1 is the paper's "top 10%" (at or above the 90th percentile, linear interpolation).
    NaN scores are never selected and do not enter the quantile. Returns numpy or torch like the input.
    """
    if not 0 < float(fraction) <= 1:
        raise ValueError(f"fraction: expected a number in (0, 1], got {fraction!r}")
    s = to_numpy(scores, "scores", np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores: expected shape (N,), got {s.shape}")
    if s.size == 0:
        raise ValueError("scores: empty selection (no windows)")
    if np.isinf(s).any():
        raise ValueError("scores: inf score; egomotion scores are finite or NaN")
    finite = np.isfinite(s)
    if not finite.any():
        raise ValueError("scores: no finite score (every window is NaN)")
    # min(): interpolation rounding must never push the threshold above the largest score.
    threshold = min(np.quantile(s[finite], 1.0 - float(fraction)), s[finite].max())
    mask = finite & (s >= threshold)
    return torch.as_tensor(mask, device=scores.device) if isinstance(scores, torch.Tensor) else mask
