"""The interface every video-text encoder implements.

``encoder(frames, prompts) -> EncoderOutput``; frames (B, 4, 3, H, W) uint8 RGB (offsets -18, -12, -6,
0) or float in [0, 1]; prompts a list of B strings. Each encoder does its own resizing / normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EncoderOutput:
    """Context tokens for the decoder.

    video_tokens (B, Nv, Dv), video_mask (B, Nv) bool (True = real token),
    text_tokens (B, Nt, Dt), text_mask (B, Nt) bool.
    """

    video_tokens: torch.Tensor
    video_mask: torch.Tensor
    text_tokens: torch.Tensor
    text_mask: torch.Tensor


class VideoTextEncoder(nn.Module):
    """Base class. Subclasses set ``name``, ``video_dim``, ``text_dim``, ``frozen`` and implement forward.

    ``frozen`` encoders never receive gradients and may be replaced by precomputed features
    (``egghand_lib.data.feature_cache``); ``cache_key()`` identifies weights + preprocessing so a stale
    cache is refused.
    """

    name: str = "base"
    video_dim: int
    text_dim: int
    num_video_tokens: int
    frozen: bool = True
    # True when the video tokens depend on the prompt (grounded tokens, EgoVideo-mini): then there is no
    # encode_video(frames) alone, and callers with cached text still run forward(frames, prompts) for the video.
    video_needs_prompt: bool = False

    def forward(self, frames: torch.Tensor, prompts: list[str]) -> EncoderOutput:
        """frames (B, 4, 3, H, W), prompts list of B str -> EncoderOutput."""
        video_tokens, video_mask = self.encode_video(frames)
        text_tokens, text_mask = self.encode_text(prompts)
        return EncoderOutput(video_tokens, video_mask, text_tokens, text_mask)

    # Added (backwards compatible): the two halves separately, so a model can use cached text features
    # with a trained video encoder (the "offline" encoder) or vice versa.
    def encode_video(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        """frames (B, 4, 3, H, W) -> video_tokens (B, Nv, Dv), video_mask (B, Nv) bool."""
        raise NotImplementedError

    def video_for(self, frames: torch.Tensor, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The video tokens and mask of frames (B, 4, 3, H, W) shown with prompts: ``encode_video`` alone,
        or ``forward`` when the video tokens read the prompt (``video_needs_prompt``)."""
        if self.video_needs_prompt:
            out = self(frames, list(prompts))
            return out.video_tokens, out.video_mask
        return self.encode_video(frames)

    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        """prompts (B strings) -> text_tokens (B, Nt, Dt), text_mask (B, Nt) bool."""
        raise NotImplementedError

    # Incremental video encoding (egghand_lib.streaming): an encoder whose video tokens are a function of
    # per-frame features, each computed from one frame alone, sets ``frames_independent`` and implements the
    # two methods below; encode_video(frames) == video_tokens_from_frames(encode_frames(each frame)). A stream
    # then encodes every frame once, as it arrives. Clip encoders (EgoVideo's video ViT attends across the 4
    # frames) keep the default: the stream encodes the 4-frame clip on every call.
    frames_independent: bool = False

    def encode_frames(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """images (N, 3, H, W), single frames -> per-frame features (N, ...)."""
        raise NotImplementedError(f"{type(self).__name__} encodes clips, not single frames")

    def video_tokens_from_frames(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        """features (B, 4, ...) of the frames at offsets -18, -12, -6, 0 -> video_tokens (B, Nv, Dv), mask (B, Nv)."""
        raise NotImplementedError(f"{type(self).__name__} encodes clips, not single frames")

    def cache_key(self) -> dict:
        """Identity of this encoder for feature caches: name, weights hash, preprocessing."""
        raise NotImplementedError(f"{type(self).__name__} cannot be cached (it is trained)")
