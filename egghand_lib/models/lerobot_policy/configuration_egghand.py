"""The lerobot policy type "egghand": its ``PreTrainedConfig`` (lerobot's configuration_<type>.py).

Registered with lerobot on import, so ``lerobot-train --policy.type=egghand`` finds it once this module is
imported: by lerobot itself through the ``lerobot_policy_egghand`` plugin distribution (plugins/ in the
repository), or with ``--policy.discover_packages_path=egghand_lib.models.lerobot_policy``. lerobot derives the
rest from this module's name: the policy class ``EggHandLeRobotPolicy`` in ``modeling_egghand`` and
``make_egghand_pre_post_processors`` in ``processor_egghand`` beside it.

The model is the toolkit's ``EggHandConfig``: ``preset`` plus ``model_overrides`` (any EggHandConfig fields;
on the command line a JSON object, ``--policy.model_overrides='{"motion_mlp": 0}'``), resolved once into
``egghand`` and saved with the checkpoint, so ``EggHandPolicy.from_pretrained`` rebuilds it from lerobot's
config.json. Windows come from the dataset through the delta indices below (observed -1.9..0 s, targets per
``protocol``); the model normalises inside with the dataset's exported training statistics, so lerobot's
normaliser steps stay identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.types import FeatureType, NormalizationMode
from lerobot.optim.optimizers import AdamWConfig
from lerobot.optim.schedulers import CosineDecayWithWarmupSchedulerConfig

from egghand_lib.batch import ACTION_DIM, NUM_OBS, STATE_DIM, target_offsets
from egghand_lib.data.lerobot_dataset import ACTION, IMAGE, STATE, VALID, window_offsets
from egghand_lib.models.egghand.configuration_egghand import LEROBOT_TYPE, EggHandConfig
from egghand_lib.skeleton import NUM_JOINTS


@PreTrainedConfig.register_subclass(LEROBOT_TYPE)
@dataclass
class EggHandLeRobotConfig(PreTrainedConfig):
    """lerobot's view of an EggHand model. ``egghand`` (resolved from ``preset`` + ``model_overrides`` when
    absent) is the model; ``up``: the world's up axis of the data (read from the dataset's meta/egghand.json
    when None)."""

    preset: str = "cpu-small"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    protocol: str = "future"
    egghand: dict[str, Any] | None = None
    up: list[float] | None = None

    n_obs_steps: int = NUM_OBS
    push_to_hub: bool = False  # lerobot's default (True) would need a hub repo_id
    normalization_mapping: dict[str, NormalizationMode] = field(default_factory=lambda: {
        "VISUAL": NormalizationMode.IDENTITY, "STATE": NormalizationMode.IDENTITY,
        "ACTION": NormalizationMode.IDENTITY,
    })

    # Optimiser and schedule: AdamW + cosine decay after a linear warm-up (the toolkit's cpu-small training).
    optimizer_lr: float = 1e-3
    optimizer_betas: tuple[float, float] = (0.9, 0.999)
    optimizer_eps: float = 1e-8
    optimizer_weight_decay: float = 1e-4
    optimizer_grad_clip_norm: float = 1.0
    scheduler_warmup_steps: int = 30
    scheduler_decay_steps: int = 600
    scheduler_decay_lr: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        target_offsets(self.protocol)  # validates the name
        self.egghand = self.egghand_config().to_dict()

    def egghand_config(self) -> EggHandConfig:
        """The model's EggHandConfig: ``egghand`` (a saved one) or ``preset``, with ``model_overrides`` on top."""
        over = {**self.model_overrides, "protocol": self.protocol}
        if self.egghand is not None:
            return EggHandConfig.from_dict({**self.egghand, **over}, source="policy.egghand")
        return EggHandConfig.preset(self.preset, **over)

    @property
    def observation_delta_indices(self) -> list[int]:
        return window_offsets(self.protocol)  # state, validity and images at observed + target offsets

    @property
    def action_delta_indices(self) -> list[int]:
        return list(target_offsets(self.protocol))

    @property
    def reward_delta_indices(self) -> None:
        return None

    def get_optimizer_preset(self) -> AdamWConfig:
        return AdamWConfig(lr=self.optimizer_lr, betas=self.optimizer_betas, eps=self.optimizer_eps,
                           weight_decay=self.optimizer_weight_decay, grad_clip_norm=self.optimizer_grad_clip_norm)

    def get_scheduler_preset(self) -> CosineDecayWithWarmupSchedulerConfig:
        return CosineDecayWithWarmupSchedulerConfig(
            peak_lr=self.optimizer_lr, decay_lr=self.scheduler_decay_lr,
            num_warmup_steps=self.scheduler_warmup_steps, num_decay_steps=self.scheduler_decay_steps,
        )

    def validate_features(self) -> None:
        """The dataset must have the features an EggHand export writes (``egghand prepare --lerobot``)."""
        want = {STATE: (FeatureType.STATE, (STATE_DIM,)), VALID: (FeatureType.STATE, (NUM_JOINTS,)),
                IMAGE: (FeatureType.VISUAL, None)}
        for key, (kind, shape) in want.items():
            ft = (self.input_features or {}).get(key)
            if ft is None or ft.type is not kind or (shape is not None and tuple(ft.shape) != shape):
                got = "missing" if ft is None else f"{ft.type.value} {tuple(ft.shape)}"
                raise ValueError(f"policy egghand: input feature {key!r} must be {kind.value} "
                                 f"{shape or '(3, H, W)'}, got {got} (use a dataset of `egghand prepare --lerobot`)")
        ft = (self.output_features or {}).get(ACTION)
        if ft is None or tuple(ft.shape) != (ACTION_DIM,):
            got = "missing" if ft is None else tuple(ft.shape)
            raise ValueError(f"policy egghand: output feature {ACTION!r} must have shape ({ACTION_DIM},), got {got}")


__all__ = ["EggHandLeRobotConfig"]
