"""InternVL3.5-1B as a frozen video-text encoder (the paper's Table 4 variant), through transformers.

The user downloads ``OpenGVLab/InternVL3_5-1B-HF`` to a local folder; it is loaded with
``local_files_only=True`` (never from a hub). Per frame, the image features are
``model.get_image_features(pixel_values, vision_feature_layer=-1, vision_feature_select_strategy="default")``
(InternViT-300M at 448 px -> pixel shuffle -> projection: 256 tokens of 1024-d; the tensor itself in
transformers 4, the ``pooler_output`` of the returned object in transformers 5). Text features are the
language model's (Qwen3-0.6B) last hidden state over the prompt, right-padded to a fixed length.

Video token layouts (``video_tokens``): "frame_mean" (default) averages each frame's tokens -> (B, 4, D),
small enough to cache; "all" keeps every token -> (B, 4 * 256, D).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from egghand_lib.models.encoders._utils import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    NUM_FRAMES,
    check_frames,
    check_prompts,
    frames_to_unit_float,
    resolve_dtype,
    state_dict_fingerprint,
)
from egghand_lib.models.encoders.base import VideoTextEncoder

VIDEO_TOKEN_LAYOUTS = ("frame_mean", "all")
_DOWNLOAD_HINT = (
    "download OpenGVLab/InternVL3_5-1B-HF (e.g. `huggingface-cli download OpenGVLab/InternVL3_5-1B-HF "
    "--local-dir <dir>` on a machine with network access) and pass model_dir=<dir>"
)


def _image_stats(model_dir: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean/std of the folder's image processor (preprocessor_config.json), ImageNet values otherwise."""
    path = model_dir / "preprocessor_config.json"
    if path.is_file():
        cfg = json.loads(path.read_text())
        if "image_mean" in cfg and "image_std" in cfg:
            return tuple(cfg["image_mean"]), tuple(cfg["image_std"])
    return IMAGENET_MEAN, IMAGENET_STD


class InternVLEncoder(VideoTextEncoder):
    """Frozen InternVL features.

    forward(frames (B, 4, 3, H, W), prompts) -> EncoderOutput with video_tokens (B, 4, D) ("frame_mean") or
    (B, 4 * n, D) ("all"), D = the language model width (1024 for InternVL3.5-1B), and text_tokens
    (B, max_text_len, D) with the padding mask. Frames are resized to the vision tower's input size.
    """

    name = "internvl"
    frozen = True
    external_prefixes = ("model.",)

    def __init__(
        self,
        model_dir: str | Path,
        video_tokens: str = "frame_mean",
        max_text_len: int = 32,
        image_size: int | None = None,
        dtype: torch.dtype | str = torch.float32,
    ):
        super().__init__()
        from transformers import AutoTokenizer, InternVLForConditionalGeneration

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(f"InternVL model_dir: no config.json in {model_dir}; {_DOWNLOAD_HINT}")
        if video_tokens not in VIDEO_TOKEN_LAYOUTS:
            raise ValueError(f"video_tokens: expected one of {VIDEO_TOKEN_LAYOUTS}, got {video_tokens!r}")
        self.model_dir = model_dir
        self.model = InternVLForConditionalGeneration.from_pretrained(
            str(model_dir), local_files_only=True, dtype=resolve_dtype(dtype)
        )
        self.model.eval().requires_grad_(False)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.tokenizer.padding_side = "right"  # real tokens first; a causal LM's real tokens never see padding
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token

        cfg = self.model.config
        size = cfg.vision_config.image_size
        self.image_size = int(image_size or (size[0] if isinstance(size, (list, tuple)) else size))
        patch = cfg.vision_config.patch_size
        patch = patch[0] if isinstance(patch, (list, tuple)) else patch
        tokens_per_frame = int(((self.image_size // patch) * cfg.downsample_ratio) ** 2)
        self.video_layout = video_tokens
        self.max_text_len = int(max_text_len)
        self.video_dim = self.text_dim = int(cfg.text_config.hidden_size)
        self.num_video_tokens = NUM_FRAMES * (1 if video_tokens == "frame_mean" else tokens_per_frame)
        self.num_text_tokens = self.max_text_len
        mean, std = _image_stats(model_dir)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self._fingerprint: str | None = None
        self.eval()

    def train(self, mode: bool = True) -> InternVLEncoder:
        return super().train(False)  # frozen: always eval

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B*T, 3, S, S) normalised pixel values."""
        check_frames(frames)
        x = frames_to_unit_float(frames.to(self.mean.device).flatten(0, 1))
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic", align_corners=False)
            x = x.clamp(0, 1)
        return (x - self.mean) / self.std

    @torch.no_grad()
    def encode_video(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = frames.shape[:2]
        pixels = self.preprocess(frames).to(self.model.dtype)
        feats = self.model.get_image_features(
            pixel_values=pixels, vision_feature_layer=-1, vision_feature_select_strategy="default"
        )
        # transformers 4 returns the features, transformers 5 an output object holding them in pooler_output
        feats = (feats if isinstance(feats, torch.Tensor) else feats.pooler_output).float()  # (B*T, n, D)
        feats = feats.view(b, t, feats.shape[1], feats.shape[2])
        tokens = feats.mean(2) if self.video_layout == "frame_mean" else feats.flatten(1, 2)
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        prompts = check_prompts(prompts)
        enc = self.tokenizer(
            prompts, padding="max_length", truncation=True, max_length=self.max_text_len, return_tensors="pt",
            return_token_type_ids=False,
        )
        device = self.mean.device
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        # model.model.language_model: the text model's place in transformers 4 and 5 alike (5 dropped the alias
        # model.language_model)
        hidden = self.model.model.language_model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        return hidden, mask.bool()

    def forward(self, frames: torch.Tensor, prompts: list[str]):
        check_prompts(prompts, frames.shape[0])
        return super().forward(frames, prompts)

    def cache_key(self) -> dict:
        if self._fingerprint is None:
            self._fingerprint = state_dict_fingerprint(self.model.state_dict())
        stats = [[round(v, 4) for v in t.flatten().tolist()] for t in (self.mean, self.std)]
        return {
            "name": "internvl",
            "model": self.model_dir.name,
            "weights": self._fingerprint,
            "video_tokens": self.video_layout,
            "max_text_len": self.max_text_len,
            "preprocessing": f"resize {self.image_size} bicubic, mean/std {stats}",
        }
