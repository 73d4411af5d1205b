"""Video-text encoders behind one interface (base.VideoTextEncoder), built by name.

    enc = build_encoder("offline")                                   # MiniLM text (frozen) + small CNN (trained)
    enc = build_encoder("egovideo", checkpoint="ckpt_4frames.pth")   # frozen, the paper's encoder
    enc = build_encoder("internvl", model_dir="InternVL3_5-1B-HF")   # frozen, paper Table 4
    enc = build_encoder("cached", video_dim=1408, text_dim=512)      # features precomputed in the batch
    out = enc(frames, prompts)  # EncoderOutput(video_tokens, video_mask, text_tokens, text_mask)

Heavy modules (transformers) are imported only when an encoder that needs them is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from egghand_lib.models.encoders.base import EncoderOutput, VideoTextEncoder
from egghand_lib.models.encoders.cached import CachedEncoder, features_from_batch

# name -> "module:callable"; the callable takes keyword options and returns a VideoTextEncoder
ENCODER_REGISTRY: dict[str, str | Callable[..., VideoTextEncoder]] = {
    "offline": "egghand_lib.models.encoders.offline:OfflineEncoder",
    "egovideo": "egghand_lib.models.encoders.egovideo:build_egovideo_encoder",
    "internvl": "egghand_lib.models.encoders.internvl:InternVLEncoder",
    "cached": "egghand_lib.models.encoders.cached:CachedEncoder",
}


def register_encoder(name: str, factory: str | Callable[..., VideoTextEncoder]) -> None:
    """Add an encoder factory ("module:callable" or a callable) under ``name``."""
    ENCODER_REGISTRY[name] = factory


def available_encoders() -> list[str]:
    return sorted(ENCODER_REGISTRY)


def build_encoder(name: str, **kwargs) -> VideoTextEncoder:
    """Build the encoder registered as ``name`` with keyword options (see each encoder's docstring).

    offline:  image_size=64, video_width=128, grid=4, stem_channels=32, mid_channels=64, max_text_len=32,
              text_model_dir=None, text_cache_size=50000
    egovideo: checkpoint (required), tokenizer_path=None, config=None (EgoVideoConfig or dict),
              video_output="cls" | "all" | "pooled", max_text_len=59, dtype="float32"
    internvl: model_dir (required), video_tokens="frame_mean" | "all", max_text_len=32, image_size=None,
              dtype="float32"
    cached:   video_dim, text_dim, num_video_tokens=1, num_text_tokens=None, source_key=None
    """
    if name not in ENCODER_REGISTRY:
        raise ValueError(f"encoder: unknown name {name!r}; expected one of {available_encoders()}")
    factory = ENCODER_REGISTRY[name]
    if isinstance(factory, str):
        module_name, attr = factory.split(":")
        factory = getattr(importlib.import_module(module_name), attr)
    return factory(**kwargs)


__all__ = [
    "ENCODER_REGISTRY",
    "CachedEncoder",
    "EncoderOutput",
    "VideoTextEncoder",
    "available_encoders",
    "build_encoder",
    "features_from_batch",
    "register_encoder",
]
