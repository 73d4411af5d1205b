"""The lerobot policy type "egghand": its pre / post processors (lerobot's processor_<type>.py).

lerobot builds them with ``make_egghand_pre_post_processors(config, dataset_stats=...)``. They only shape and
move data: EggHandPolicy builds its canonical windows and normalises inside (with the training statistics of
the export), so the normaliser steps are identity. They are there, with lerobot's step names, so a pipeline
saved with a checkpoint reloads with the overrides lerobot-train passes when fine-tuning (``--policy.path``).
Not to be confused with ``egghand_lib.models.egghand.processor_egghand``: the min-max normaliser of
LeRobot-layout canonical tensors as lerobot steps.
"""

from __future__ import annotations

from typing import Any

from lerobot.processor import (
    AddBatchDimensionProcessorStep,
    DeviceProcessorStep,
    NormalizerProcessorStep,
    PolicyProcessorPipeline,
    RenameObservationsProcessorStep,
    UnnormalizerProcessorStep,
)
from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action
from lerobot.utils.constants import POLICY_POSTPROCESSOR_DEFAULT_NAME, POLICY_PREPROCESSOR_DEFAULT_NAME

from egghand_lib.models.lerobot_policy.configuration_egghand import EggHandLeRobotConfig


def make_egghand_pre_post_processors(config: EggHandLeRobotConfig, dataset_stats: dict | None = None,
                                     ) -> tuple[PolicyProcessorPipeline, PolicyProcessorPipeline]:
    """(pre, post): batch dims and device in; identity normalisation; actions (world joints, metres) to the CPU."""
    features = {**config.input_features, **config.output_features}
    pre = [
        RenameObservationsProcessorStep(rename_map={}),
        AddBatchDimensionProcessorStep(),
        DeviceProcessorStep(device=config.device),
        NormalizerProcessorStep(features=features, norm_map=config.normalization_mapping, stats=dataset_stats,
                                device=config.device),
    ]
    post = [
        UnnormalizerProcessorStep(features=config.output_features, norm_map=config.normalization_mapping,
                                  stats=dataset_stats),
        DeviceProcessorStep(device="cpu"),
    ]
    return (
        PolicyProcessorPipeline[dict[str, Any], dict[str, Any]](steps=pre, name=POLICY_PREPROCESSOR_DEFAULT_NAME),
        PolicyProcessorPipeline(steps=post, name=POLICY_POSTPROCESSOR_DEFAULT_NAME,
                                to_transition=policy_action_to_transition, to_output=transition_to_policy_action),
    )


__all__ = ["make_egghand_pre_post_processors"]
