"""Pretraining EgoVideo-mini, the offline stand-in for EgoVideo (``egghand pretrain encoder``).

Data: EgoSynth takes generated from seeds disjoint from the benchmark's (never the bench test split),
prepared like any dataset, with the generator's ground truth (``pretraining.grounding``). Objective, per
clip of 4 frames and its prompt:

- video-text contrastive alignment, in EgoVideo's spirit: InfoNCE between the pooled clip embedding and the
  pooled prompt embedding, both directions, windows that share a prompt counted as positives;
- grounding, which makes the tokens object- and position-aware:
  - pointing: each pointer (target, destination, cue lamp) must point, in every frame where its thing is
    seen, at the cell its centre projects to (cross-entropy over the frame's cells);
  - cell positions: every seen object's cell in the current frame must estimate that object's canonical
    position (smooth L1, metres): a dense, scene-independent geometry signal;
  - the prompt's target and destination positions read through the pointer (smooth L1, metres), whether
    there is a destination (BCE), the time to the next move's onset from the cue token (L1, seconds);
- the onset cue: from the cells the cue pointer points at in each frame, the lamp's phase (BCE).

The loop is the toolkit's ``training.train`` (accelerate, AdamW, cosine warm-up, exact resume); the result
is an EgoVideo-mini folder (config.json + model.safetensors) that ``build_encoder("egovideo-mini",
checkpoint=...)`` loads frozen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from egghand_lib.data.prepared import manifest_digest
from egghand_lib.models.encoders.egovideo_mini import (
    POINTERS,
    EgoVideoMiniConfig,
    EgoVideoMiniModel,
    save_egovideo_mini,
)
from egghand_lib.models.encoders.offline import MiniLMTextEncoder
from egghand_lib.pretraining.grounding import MAX_ONSET_S, GroundedWindows
from egghand_lib.training import TrainConfig, TrainResult, train

LOSS_WEIGHTS = {"contrastive": 1.0, "pointing": 1.0, "cell_position": 4.0, "target": 4.0, "destination": 4.0,
                "has_destination": 0.2, "timing": 0.5, "cue": 0.5}
POSITION_BETA = 0.05  # smooth L1 turns quadratic below 5 cm


@dataclass
class EncoderPretrainConfig:
    """Everything that defines an encoder pretraining run."""

    encoder: dict[str, Any] = field(default_factory=dict)  # EgoVideoMiniConfig fields
    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_ratio: float = 0.05
    seed: int = 0
    stride: int = 2  # every stride-th window of the pretraining takes
    train_split: str = "train"
    val_split: str | None = "val"
    loss_weights: dict[str, float] = field(default_factory=lambda: dict(LOSS_WEIGHTS))

    def train_config(self) -> TrainConfig:
        return TrainConfig(name="pretrain-egovideo-mini", model_preset="tiny", lr=self.lr,
                           weight_decay=self.weight_decay, warmup_ratio=self.warmup_ratio, batch_size=self.batch_size,
                           grad_accum_steps=1, max_steps=self.steps, seed=self.seed, train_split=self.train_split,
                           eval_split=self.val_split, log_every=25, eval_every=max(1, self.steps // 6),
                           eval_max_windows=512, save_every=max(1, self.steps // 10), mixed_precision="no",
                           model_overrides={"pretrain": {k: v for k, v in asdict(self).items()}})


class EncoderPretraining(nn.Module):
    """EgoVideo-mini with its pretraining losses: ``forward(batch) -> {"loss", parts...}``.

    batch: ``GroundedWindows`` items collated (frames (B, 4, 3, H, W), task list of B str, target (B, 3),
    destination (B, 3), has_destination (B,), time_to_onset (B,), cue (B, 4), and the pointer's labels: see
    ``GroundedWindows``). Besides the loss and its terms it reports readable figures (``validation_figures``,
    averaged over the validation windows by the training loop): position errors in cm, the share of
    pointings on the right cell, the onset error in s.
    """

    validation_figures = ("target_cm", "destination_cm", "pointing_hit", "timing_s")

    def __init__(self, config: EgoVideoMiniConfig, loss_weights: dict[str, float] | None = None):
        super().__init__()
        self.text = MiniLMTextEncoder(config.text_model_dir, config.max_text_len)  # frozen, cached per prompt
        self.model = EgoVideoMiniModel(config, self.text.dim)
        self.weights = {**LOSS_WEIGHTS, **(loss_weights or {})}
        unknown = set(self.weights) - set(LOSS_WEIGHTS)
        if unknown:
            raise ValueError(f"loss_weights: unknown terms {sorted(unknown)}; expected {sorted(LOSS_WEIGHTS)}")

    def train(self, mode: bool = True) -> EncoderPretraining:
        super().train(mode)
        self.text.train(False)
        return self

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        m = self.model
        dev = m.video_pos.device
        text_tokens, text_mask = (x.to(dev) for x in self.text.encode(list(batch["task"])))
        video, text, pointing = m.encode(batch["frames"].to(dev), text_tokens, text_mask)
        heads = m.read_heads(pointing)

        # contrastive: windows with the same prompt are positives of each other
        zv, zt = m.embeddings(video, text, text_mask)
        logits = m.logit_scale.clamp(max=4.6052).exp() * zv @ zt.T  # temperature >= 0.01
        prompts = list(batch["task"])
        same = torch.tensor([[a == b for b in prompts] for a in prompts], dtype=torch.float32, device=dev)
        targets = same / same.sum(1, keepdim=True)
        contrastive = 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))

        g = m.cfg.grid
        pointing_ce, hits = [], []
        for p, name in enumerate(POINTERS):
            seen = batch[f"{name}_seen"].to(dev, torch.bool)  # (B, 4)
            if seen.any():
                cell = _cells(batch[f"{name}_uv"].to(dev), g)[seen]
                lg = pointing.logits[:, p][seen]
                pointing_ce.append(F.cross_entropy(lg, cell))
                hits.append((lg.argmax(-1) == cell).float())
        obj_seen = batch["object_seen"].to(dev, torch.bool)  # (B, O)
        obj_cell = _cells(batch["object_uv"].to(dev), g)  # (B, O)
        estimate = pointing.cell_position.gather(1, obj_cell[..., None].expand(-1, -1, 3))  # (B, O, 3)
        cell_err = F.smooth_l1_loss(estimate, batch["object_position"].to(dev, torch.float32), beta=POSITION_BETA,
                                    reduction="none").mean(-1)
        zero = video.new_zeros(())

        target = batch["target"].to(dev, torch.float32)
        dest = batch["destination"].to(dev, torch.float32)
        has = batch["has_destination"].to(dev, torch.bool)
        parts = {
            "contrastive": contrastive,
            "pointing": torch.stack(pointing_ce).mean() if pointing_ce else zero,
            "cell_position": cell_err[obj_seen].mean() if obj_seen.any() else zero,
            "target": F.smooth_l1_loss(heads["target"], target, beta=POSITION_BETA),
            "destination": (F.smooth_l1_loss(heads["destination"], dest, beta=POSITION_BETA, reduction="none")
                            .mean(-1)[has].sum() / has.sum().clamp_min(1)),
            "has_destination": F.binary_cross_entropy_with_logits(heads["has_destination"], has.float()),
            "timing": F.l1_loss(heads["time_to_onset"], batch["time_to_onset"].to(dev, torch.float32)),
            "cue": F.binary_cross_entropy_with_logits(heads["cue"], batch["cue"].to(dev, torch.float32)),
        }
        loss = sum(self.weights[k] * v for k, v in parts.items())
        with torch.no_grad():  # readable figures for the log: errors in centimetres and seconds
            parts["target_cm"] = 100 * (heads["target"] - target).norm(dim=-1).mean()
            d = (heads["destination"] - dest).norm(dim=-1)
            parts["destination_cm"] = 100 * d[has].mean() if has.any() else zero
            parts["pointing_hit"] = torch.cat(hits).mean() if hits else zero
            wait = batch["time_to_onset"].to(dev)
            parts["timing_s"] = (heads["time_to_onset"].clamp(0, MAX_ONSET_S) - wait).abs().mean()
        return {"loss": loss, **parts}

    def save_pretrained(self, folder: str | Path) -> Path:
        return save_egovideo_mini(self.model, folder)


def _cells(uv: torch.Tensor, grid: int) -> torch.Tensor:
    """Image coordinates in [0, 1) (..., 2) -> the index of their cell in a grid x grid frame (row-major)."""
    ij = (uv * grid).long().clamp(0, grid - 1)
    return ij[..., 1] * grid + ij[..., 0]


def pretrain_encoder(config: EncoderPretrainConfig, prep_dir: str | Path, raw_dir: str | Path, out_dir: str | Path,
                     *, val_prep_dir: str | Path | None = None, val_raw_dir: str | Path | None = None,
                     progress: bool = True) -> TrainResult:
    """Pretrain EgoVideo-mini on a prepared EgoSynth folder (``raw_dir``: the EgoSynth folder it was made from).

    The validation windows come from the same folders unless ``val_prep_dir`` / ``val_raw_dir`` name others
    (takes generated apart); they are only measured, never trained on. Writes a training run in ``out_dir``
    (resumable; checkpoints, metrics.csv with the validation figures) whose ``model/`` folder is the EgoVideo-mini
    checkpoint (config.json records the provenance: data digest, seeds, steps).
    """
    enc_cfg = EgoVideoMiniConfig(**config.encoder)
    train_ds = GroundedWindows(prep_dir, config.train_split, raw_dir, stride=config.stride)
    val_ds = (GroundedWindows(val_prep_dir or prep_dir, config.val_split, val_raw_dir or raw_dir,
                              stride=4 * config.stride) if config.val_split else None)
    torch.manual_seed(config.seed)
    model = EncoderPretraining(enc_cfg, config.loss_weights)
    provenance = {"pretraining": asdict(config), "data_manifest_sha256": manifest_digest(prep_dir),
                  "train_windows": len(train_ds)}
    enc_cfg.extra = provenance
    return train(config.train_config(), out_dir, model=model, train_dataset=train_ds, eval_dataset=val_ds,
                 progress=progress)
