"""Min-max normalisation of the state and action numbers: the one normaliser of the toolkit.

The model, the windows and the LeRobot processors all use ``MinMaxNormalizer`` (or its functional form
``minmax_normalize`` / ``minmax_unnormalize``) with the training split's ``NormStats``: every dimension
d maps ``[min_d, max_d]`` to ``[-1, 1]`` (docs/conventions.md, "Normalisation")::

    x_n = 2 (x - min) / (max - min) - 1          x = (x_n + 1) (max - min) / 2 + min

A constant dimension (max == min) maps to 0 (``constant="zero"``, this toolkit's default); the official
EggHand code divides by 1 instead, so there its minimum maps to -1 (``constant="minus-one"``).

Out of range inputs: a dimension that is nearly constant in the training split (a camera that never rolls:
a rotation entry spanning micrometres) maps the smallest change of another take to a huge number (2 x 10^4
for 1 cm), and the model's forecast goes metres off. ``MinMaxNormalizer(state_clip=c)`` clips normalised
states to [-c, c]; the training split's own states lie in [-1, 1], so any ``c >= 1`` leaves training
unchanged and only bounds what the model never saw. ``EggHandPolicy`` clips at
``EggHandConfig.state_clip`` (docs/conventions.md, "Normalisation"); actions are never clipped.

Statistics files (``stats.json`` of a prepared folder or a saved model) use lerobot's layout:
``{"observation.state": {"min": [...138], "max": [...]}, "action": {"min": [...126], "max": [...]}}``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from egghand_lib.batch import ACTION_DIM, STATE_DIM, NormStats
from egghand_lib.io import atomic_write_json, read_json

# Half-ranges at or below this count as a constant dimension (float32 noise of a truly constant one).
CONSTANT_HALF_RANGE = 1e-8
KEYS = ("state", "action")
# How a constant dimension (max == min) maps: "zero" (this toolkit) or "minus-one" (the official code:
# its range is replaced by 1, so x_n = 2 (x - min) - 1 and the minimum maps to -1).
CONSTANT_CONVENTIONS = ("zero", "minus-one")


def _check_constant(constant: str) -> None:
    if constant not in CONSTANT_CONVENTIONS:
        raise ValueError(f"constant: expected one of {CONSTANT_CONVENTIONS}, got {constant!r}")


def minmax_normalize(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, constant: str = "zero") -> torch.Tensor:
    """Map [lo, hi] to [-1, 1] per dimension (last axis). x (..., D); lo, hi (D,).

    A constant dimension maps to 0 (``constant="zero"``) or, as in the official code, is divided by a range
    of 1 (``constant="minus-one"``: x_n = 2 (x - lo) - 1).
    """
    _check_constant(constant)
    if constant == "minus-one":
        span = hi - lo
        return 2 * (x - lo) / torch.where(span == 0, torch.ones_like(span), span) - 1
    mid, half = (hi + lo) / 2, (hi - lo) / 2
    scale = torch.where(half > CONSTANT_HALF_RANGE, 1.0 / half.clamp_min(CONSTANT_HALF_RANGE), torch.zeros_like(half))
    return (x - mid) * scale


def minmax_unnormalize(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, constant: str = "zero") -> torch.Tensor:
    """Inverse of ``minmax_normalize`` ("zero": a constant dimension comes back as its value). x (..., D)."""
    _check_constant(constant)
    if constant == "minus-one":
        span = hi - lo
        return (x + 1) * torch.where(span == 0, torch.ones_like(span), span) / 2 + lo
    return x * (hi - lo) / 2 + (hi + lo) / 2


class MinMaxNormalizer(nn.Module):
    """State (..., 138) and action (..., 126) min-max normalisation with the statistics as buffers.

    The buffers (``state_min``, ``state_max``, ``action_min``, ``action_max``) travel with ``.to(device)``
    and the weights file of a model; they are NaN until ``set_stats`` is called. ``constant``: how a
    constant dimension maps (``CONSTANT_CONVENTIONS``).
    """

    def __init__(self, state_dim: int = STATE_DIM, action_dim: int = ACTION_DIM, stats: NormStats | None = None,
                 constant: str = "zero", state_clip: float | None = None):
        super().__init__()
        _check_constant(constant)
        self.constant = constant
        self.dims = {"state": int(state_dim), "action": int(action_dim)}
        if state_clip is not None and not state_clip >= 1.0:
            raise ValueError(f"state_clip: must be >= 1 (the training states span [-1, 1]) or None, got {state_clip!r}")
        self.state_clip = None if state_clip is None else float(state_clip)  # normalised states clipped to +-this
        for key, dim in self.dims.items():
            self.register_buffer(f"{key}_min", torch.full((dim,), float("nan")))
            self.register_buffer(f"{key}_max", torch.full((dim,), float("nan")))
        if stats is not None:
            self.set_stats(stats)

    def set_stats(self, stats: NormStats) -> None:
        """Install training statistics (checked: shapes, finite, min <= max)."""
        for key, dim in self.dims.items():
            lo = torch.as_tensor(getattr(stats, f"{key}_min"), dtype=torch.float32)
            hi = torch.as_tensor(getattr(stats, f"{key}_max"), dtype=torch.float32)
            if key == "action" and lo.shape == hi.shape == (self.dims["state"],) and dim < self.dims["state"]:
                # The official data files give 138-d action bounds (joints then camera): keep the joints.
                lo, hi = lo[:dim], hi[:dim]
            if lo.shape != (dim,) or hi.shape != (dim,):
                got = f"{tuple(lo.shape)}/{tuple(hi.shape)}"
                raise ValueError(f"stats.{key}_min/max: expected shape ({dim},), got {got}")
            if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()) or (hi < lo).any():
                raise ValueError(f"stats.{key}_min/max: must be finite with min <= max")
            getattr(self, f"{key}_min").copy_(lo)
            getattr(self, f"{key}_max").copy_(hi)

    @property
    def has_stats(self) -> bool:
        return not bool(torch.isnan(self.state_min).any())

    @property
    def stats(self) -> NormStats | None:
        if not self.has_stats:
            return None
        return NormStats(*(getattr(self, f"{k}_{m}").detach().cpu().clone() for k in KEYS for m in ("min", "max")))

    def bounds(self, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(min, max) of "state" or "action"; an error when no statistics were installed."""
        if key not in self.dims:
            raise ValueError(f"key: expected one of {KEYS}, got {key!r}")
        if not self.has_stats:
            raise ValueError("no normalisation statistics: call set_stats(stats) (or set_norm_stats) first")
        return getattr(self, f"{key}_min"), getattr(self, f"{key}_max")

    def normalize(self, x: torch.Tensor, key: str, dims: slice = slice(None), clip: bool = True) -> torch.Tensor:
        """x (..., d) in metres / camera numbers -> [-1, 1]; ``dims`` selects which of the key's dimensions
        x holds (e.g. ``slice(0, 63)``: the right hand's joints only). States beyond ``state_clip`` are clipped
        to it (unless ``clip=False``)."""
        lo, hi = self.bounds(key)
        out = minmax_normalize(x, lo[dims], hi[dims], self.constant)
        return out.clamp(-self.state_clip, self.state_clip) if key == "state" and self.state_clip and clip else out

    def unnormalize(self, x: torch.Tensor, key: str, dims: slice = slice(None)) -> torch.Tensor:
        lo, hi = self.bounds(key)
        return minmax_unnormalize(x, lo[dims], hi[dims], self.constant)

    def centre(self, key: str) -> torch.Tensor:
        """What a normalised 0 means in each dimension (the middle of its range)."""
        return self.unnormalize(torch.zeros_like(self.bounds(key)[0]), key)


# ------------------------------------------------------------------------------------------ files


def stats_to_json(stats: NormStats) -> dict:
    """NormStats -> the lerobot-layout JSON object (lists of floats)."""
    return {k: {m: torch.as_tensor(v).tolist() for m, v in d.items()} for k, d in stats.to_lerobot().items()}


def stats_from_json(obj: dict, source: str = "stats") -> NormStats:
    """A lerobot-layout statistics object -> NormStats, checked for the 138 / 126 dimensions and finiteness."""
    try:
        stats = NormStats.from_lerobot(obj)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{source}: not statistics in lerobot layout (missing or unreadable {e})") from None
    for name, dims in (("state", (STATE_DIM,)), ("action", (ACTION_DIM, STATE_DIM))):
        lo, hi = getattr(stats, f"{name}_min"), getattr(stats, f"{name}_max")
        if lo.ndim != 1 or lo.shape != hi.shape or lo.shape[0] not in dims:
            raise ValueError(f"{source}: {name} min/max have shapes {tuple(lo.shape)}/{tuple(hi.shape)}, "
                             f"expected ({dims[0]},)")
        if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
            raise ValueError(f"{source}: {name} min/max hold NaN or inf")
    return stats


def save_stats(stats: NormStats, path: str | Path, **info) -> None:
    """Write statistics as JSON in lerobot's layout (plus ``info`` when given), atomically."""
    atomic_write_json(path, {**stats_to_json(stats), **({"info": info} if info else {})})


def load_stats(path: str | Path) -> NormStats:
    """NormStats from a stats.json in lerobot layout (a prepared folder's or a saved model's)."""
    obj = read_json(path, "stats file not found (run `egghand prepare` first)")
    return stats_from_json(obj, source=str(path))
