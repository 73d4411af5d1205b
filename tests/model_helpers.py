"""Tiny fixtures for the model tests: a small video-text encoder, random window batches and their NormStats."""

from __future__ import annotations

import torch
from torch import nn

from egghand_lib.batch import NormStats
from egghand_lib.models.encoders.base import EncoderOutput, VideoTextEncoder

VIDEO_DIM, TEXT_DIM, TEXT_LEN = 8, 12, 6


class TinyEncoder(VideoTextEncoder):
    """4 video tokens (per-frame mean colour -> linear) and character-hash text tokens padded to TEXT_LEN."""

    name = "tiny-test"
    video_dim = VIDEO_DIM
    text_dim = TEXT_DIM
    num_video_tokens = 4

    def __init__(self, frozen: bool = True, seed: int = 0):
        super().__init__()
        self.frozen = frozen
        g = torch.Generator().manual_seed(seed)
        self.video = nn.Linear(3, VIDEO_DIM)
        self.words = nn.Embedding(64, TEXT_DIM)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def encode_video(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = frames.float().mean(dim=(-1, -2)) / 255.0  # (B, 4, 3)
        tokens = self.video(x)
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)

    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.zeros(len(prompts), TEXT_LEN, dtype=torch.long)
        mask = torch.zeros(len(prompts), TEXT_LEN, dtype=torch.bool)
        for i, p in enumerate(prompts):
            words = p.lower().split()[:TEXT_LEN]
            for j, w in enumerate(words):
                ids[i, j] = sum(map(ord, w)) % 64
                mask[i, j] = True
        dev = self.words.weight.device
        return self.words(ids.to(dev)), mask.to(dev)

    def forward(self, frames: torch.Tensor, prompts: list[str]) -> EncoderOutput:
        v, vm = self.encode_video(frames)
        t, tm = self.encode_text(prompts)
        return EncoderOutput(v, vm, t, tm)


def make_batch(batch_size: int = 4, seed: int = 0, frame_size: int = 8) -> dict:
    """A random window batch with the keys of egghand_lib/batch.py (coordinates in metres)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(batch_size, 1, 42, 3, generator=g) * 0.1
    vel = torch.randn(batch_size, 1, 42, 3, generator=g) * 0.01
    t_past = torch.arange(-19, 1).float().view(1, 20, 1, 1)
    t_fut = torch.arange(1, 11).float().view(1, 10, 1, 1)
    past = base + vel * t_past + torch.randn(batch_size, 20, 42, 3, generator=g) * 0.002
    future = base + vel * t_fut
    past_valid = torch.rand(batch_size, 20, 42, generator=g) > 0.2
    future_valid = torch.rand(batch_size, 10, 42, generator=g) > 0.2
    past = torch.where(past_valid[..., None], past, torch.zeros(()))  # the pipeline writes 0 when missing
    ext = torch.randn(batch_size, 20, 3, 4, generator=g) * 0.1
    tasks = ["cooking pasta in the kitchen", "fixing a bike", "playing the guitar", "making coffee latte"]
    return {
        "past_joints": past,
        "past_valid": past_valid,
        "past_extrinsics": ext,
        "future_joints": future,
        "future_valid": future_valid,
        "future_extrinsics": torch.randn(batch_size, 10, 3, 4, generator=g) * 0.1,
        "frames": torch.randint(0, 256, (batch_size, 4, 3, frame_size, frame_size), generator=g, dtype=torch.uint8),
        "task": [tasks[i % len(tasks)] for i in range(batch_size)],
    }


def make_stats(*batches: dict) -> NormStats:
    """Min-max statistics over the valid joints of the batches (a constant camera entry included)."""
    st = [torch.cat([b["past_joints"].flatten(2), b["past_extrinsics"].flatten(2)], -1).flatten(0, 1) for b in batches]
    vs = [torch.cat([b["past_valid"].repeat_interleave(3, -1), torch.ones(*b["past_valid"].shape[:2], 12, dtype=bool)],
                    -1).flatten(0, 1) for b in batches]
    s, v = torch.cat(st), torch.cat(vs)
    s_min = torch.where(v, s, torch.inf).amin(0)
    s_max = torch.where(v, s, -torch.inf).amax(0)
    a = torch.cat([b["future_joints"].flatten(2).flatten(0, 1) for b in batches])
    av = torch.cat([b["future_valid"].repeat_interleave(3, -1).flatten(0, 1) for b in batches])
    a_min = torch.where(av, a, torch.inf).amin(0)
    a_max = torch.where(av, a, -torch.inf).amax(0)
    return NormStats(s_min, s_max, a_min, a_max)


def motion_windows(n: int, seed: int) -> dict:
    """n windows where each hand moves at its own constant velocity (up to 0.5 m/s) and the future
    continues it: the future is a function of the observed joints alone (frames and prompt carry nothing)."""
    g = torch.Generator().manual_seed(seed)
    hand_of = torch.arange(42) // 21
    base = torch.randn(n, 1, 42, 3, generator=g) * 0.05 + torch.randn(n, 1, 2, 3, generator=g)[:, :, hand_of] * 0.2
    vel = (torch.rand(n, 1, 2, 3, generator=g) * 2 - 1)[:, :, hand_of] * 0.05  # metres per 10 fps frame
    t_past = torch.arange(-19, 1).float().view(1, 20, 1, 1)
    t_fut = torch.arange(1, 11).float().view(1, 10, 1, 1)
    return {
        "past_joints": base + vel * t_past, "past_valid": torch.ones(n, 20, 42, dtype=torch.bool),
        "past_extrinsics": torch.eye(3, 4).expand(n, 20, 3, 4).clone(),
        "future_joints": base + vel * t_fut, "future_valid": torch.ones(n, 10, 42, dtype=torch.bool),
        "future_extrinsics": torch.eye(3, 4).expand(n, 10, 3, 4).clone(),
        "frames": torch.zeros(n, 4, 3, 8, 8, dtype=torch.uint8), "task": ["move the hands"] * n,
    }
