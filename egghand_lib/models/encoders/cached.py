"""Features precomputed by a frozen encoder, read back from the batch (keys of egghand_lib.batch.FEATURE_KEYS).

``CachedEncoder.encode_batch(batch)`` returns the batch's ``video_tokens`` / ``video_mask`` /
``text_tokens`` / ``text_mask`` as an EncoderOutput after checking them; it never sees pixels.
``features_from_batch(encoder, batch)`` is the general rule for any encoder: use what the batch
carries, compute only the missing half (e.g. cached MiniLM text + the trained offline video CNN).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from egghand_lib.models.encoders.base import EncoderOutput, VideoTextEncoder

_HOW_TO = "precompute them with a frozen encoder (the data pipeline's feature cache) or use another encoder"


def _feature_pair(batch: Mapping, tokens_key: str, mask_key: str, dim: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked (B, N, D) tokens + (B, N) bool mask (all True if the mask key is absent)."""
    tokens = batch[tokens_key]
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 3:
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"batch[{tokens_key!r}]: expected a (B, N, D) tensor, got {shape}")
    if dim is not None and tokens.shape[-1] != dim:
        raise ValueError(f"batch[{tokens_key!r}]: feature width {tokens.shape[-1]} != expected {dim} (stale cache?)")
    mask = batch.get(mask_key)
    if mask is None:
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
    elif not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(tokens.shape[:2]):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"batch[{mask_key!r}]: expected shape {tuple(tokens.shape[:2])}, got {shape}")
    return tokens.float(), mask.bool()


class CachedEncoder(VideoTextEncoder):
    """Stands in for a frozen encoder whose features were precomputed into the batch.

    video_dim / text_dim (and num_video_tokens) describe the cached features so the model can size its
    adapters; ``source_key`` is the cache_key() of the encoder that produced them (returned by cache_key()).
    """

    name = "cached"
    frozen = True
    external_prefixes = ()

    def __init__(
        self,
        video_dim: int,
        text_dim: int,
        num_video_tokens: int = 1,
        num_text_tokens: int | None = None,
        source_key: dict | None = None,
    ):
        super().__init__()
        self.video_dim = int(video_dim)
        self.text_dim = int(text_dim)
        self.num_video_tokens = int(num_video_tokens)
        self.num_text_tokens = num_text_tokens
        self.source_key = dict(source_key) if source_key else None

    def encode_batch(self, batch: Mapping) -> EncoderOutput:
        """batch with video_tokens (B, Nv, Dv) [+ video_mask], text_tokens (B, Nt, Dt) [+ text_mask]."""
        missing = [k for k in ("video_tokens", "text_tokens") if k not in batch]
        if missing:
            raise ValueError(f"cached encoder: the batch has no {missing} features; {_HOW_TO}")
        video, video_mask = _feature_pair(batch, "video_tokens", "video_mask", self.video_dim)
        text, text_mask = _feature_pair(batch, "text_tokens", "text_mask", self.text_dim)
        if video.shape[0] != text.shape[0]:
            raise ValueError(f"cached encoder: video batch {video.shape[0]} != text batch {text.shape[0]}")
        return EncoderOutput(video, video_mask, text, text_mask)

    def forward(self, frames: torch.Tensor, prompts: list[str]) -> EncoderOutput:
        raise ValueError(f"cached encoder: cannot encode frames/prompts; it reads features from the batch: {_HOW_TO}")

    def encode_video(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise ValueError(f"cached encoder: the batch has no 'video_tokens'; {_HOW_TO}")

    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        raise ValueError(f"cached encoder: the batch has no 'text_tokens'; {_HOW_TO}")

    def cache_key(self) -> dict:
        if self.source_key is None:
            raise ValueError("cached encoder: no source_key given, so the feature cache cannot be checked")
        return dict(self.source_key)


def features_from_batch(encoder: VideoTextEncoder, batch: Mapping) -> EncoderOutput:
    """Context features for a window batch: cached ones where the batch carries them, else computed.

    Uses batch["video_tokens"] / ["text_tokens"] (+ masks) when present, otherwise runs
    ``encoder.encode_video(batch["frames"])`` / ``encoder.encode_text(batch["task"])``.
    """
    dims = {"video": getattr(encoder, "video_dim", None), "text": getattr(encoder, "text_dim", None)}
    if "video_tokens" in batch:
        video, video_mask = _feature_pair(batch, "video_tokens", "video_mask", dims["video"])
    else:
        if "frames" not in batch:
            raise ValueError(f"{encoder.name} encoder: the batch has neither 'video_tokens' nor 'frames'")
        video, video_mask = encoder.video_for(batch["frames"], list(batch.get("task", [])))
    if "text_tokens" in batch:
        text, text_mask = _feature_pair(batch, "text_tokens", "text_mask", dims["text"])
    else:
        if "task" not in batch:
            raise ValueError(f"{encoder.name} encoder: the batch has neither 'text_tokens' nor 'task'")
        text, text_mask = encoder.encode_text(batch["task"])
    if video.shape[0] != text.shape[0]:
        raise ValueError(f"{encoder.name} encoder: video batch {video.shape[0]} != text batch {text.shape[0]}")
    return EncoderOutput(video, video_mask, text.to(video.device), text_mask.to(video.device))
