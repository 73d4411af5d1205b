"""Input checks shared by metrics, losses, baselines and egomotion.

Every check raises ``ValueError`` naming the argument and the problem, so a bad batch fails at the
boundary instead of producing a silent NaN three functions later. Coordinates of INVALID joints may be
anything (NaN, inf, 0): they are never read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from egghand_lib.skeleton import NUM_JOINTS

Array = Any  # np.ndarray | torch.Tensor


def to_numpy(x: Array, name: str, dtype: Any = None) -> np.ndarray:
    """numpy view/copy of an array-like (torch tensors are detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
        x = x.numpy()
    try:
        out = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"{name}: cannot be read as an array ({e})") from None
    return out if dtype is None else out.astype(dtype, copy=False)


def check_joints(x: Array, name: str, ndim: int | None = None) -> None:
    """x must be (..., 42, 3) and, when ``ndim`` is given, have exactly that many dimensions."""
    shape = tuple(x.shape)
    if len(shape) < 2 or shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"{name}: expected joints of shape (..., {NUM_JOINTS}, 3), got {shape}")
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {shape}")


def as_bool_mask(mask: Array, name: str, shape: tuple[int, ...]) -> Array:
    """Check a validity mask's shape and turn 0/1 integer masks into bool (keeps numpy / torch)."""
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name}: mask shape {tuple(mask.shape)} does not match the data, expected {tuple(shape)}")
    if isinstance(mask, torch.Tensor):
        if mask.dtype == torch.bool:
            return mask
        if mask.dtype.is_floating_point or mask.dtype.is_complex or ((mask != 0) & (mask != 1)).any():
            raise ValueError(f"{name}: expected a bool mask (or 0/1 integers), got dtype {mask.dtype}")
        return mask.bool()
    mask = np.asarray(mask)
    if mask.dtype == np.bool_:
        return mask
    if not np.issubdtype(mask.dtype, np.integer) or ((mask != 0) & (mask != 1)).any():
        raise ValueError(f"{name}: expected a bool mask (or 0/1 integers), got dtype {mask.dtype}")
    return mask.astype(bool)


def check_finite_where_valid(x: Array, mask: Array, name: str) -> None:
    """Raise if a coordinate of a valid joint is NaN or inf. x (..., 42, 3), mask (..., 42)."""
    if isinstance(x, torch.Tensor):
        bad = (~torch.isfinite(x.detach())).any(-1) & mask
        if bool(bad.any()):
            first = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise ValueError(f"{name}: NaN or inf in a valid entry (first at index {first}); mark it invalid instead")
    else:
        bad = (~np.isfinite(x)).any(-1) & mask
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{name}: NaN or inf in a valid entry (first at index {first}); mark it invalid instead")


def check_nonempty(x: Array, name: str, dims: int = 2) -> None:
    """The leading ``dims`` dimensions (samples, frames, ...) must be non-empty."""
    if any(int(s) == 0 for s in tuple(x.shape)[:dims]):
        raise ValueError(f"{name}: empty selection (shape {tuple(x.shape)}); pass at least one sample and frame")
