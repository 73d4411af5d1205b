"""EggHand's processors in lerobot's sense: the toolkit's min-max normaliser as lerobot pipeline steps.

``EggHandPolicy`` normalises inside the model (it takes metres and returns metres), with the same
``egghand_lib.normalization.MinMaxNormalizer``. A lerobot pipeline that feeds LeRobot-layout tensors
(``observation.state`` (..., 138): 126 joint coordinates then the 3x4 camera matrix; ``action`` (..., 126))
uses the steps below, so every path maps the same numbers to the same [-1, 1] values:

    pre, post = make_egghand_pre_post_processors(stats)
    transition = pre(create_transition(observation={"observation.state": state}, action=action))

Importing this module imports ``lerobot.processor`` (several seconds); ``egghand_lib.models.egghand``
does not import it, so the model stays quick to load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from lerobot.processor import PolicyProcessorPipeline, ProcessorStep, ProcessorStepRegistry, TransitionKey
from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action

from egghand_lib.batch import ACTION_DIM, STATE_DIM, NormStats
from egghand_lib.normalization import MinMaxNormalizer, stats_from_json, stats_to_json
from egghand_lib.skeleton import NUM_JOINTS

STATE_KEY = "observation.state"
ACTION_KEY = "action"
PREPROCESSOR_NAME = "egghand_preprocessor"
POSTPROCESSOR_NAME = "egghand_postprocessor"


def window_state(past_joints: torch.Tensor, past_extrinsics: torch.Tensor) -> torch.Tensor:
    """The 138-number state of each observed frame: (..., T, 42, 3) + (..., T, 3, 4) -> (..., T, 138)."""
    lead = past_joints.shape[:-2]
    return torch.cat([past_joints.reshape(*lead, 3 * NUM_JOINTS), past_extrinsics.reshape(*lead, 12)], dim=-1)


@ProcessorStepRegistry.register("egghand_minmax")
@dataclass
class EggHandMinMaxStep(ProcessorStep):
    """Min-max (un)normalisation of ``observation.state`` and ``action`` with the training statistics.

    ``inverse=False`` maps metres / camera numbers to [-1, 1]; ``inverse=True`` maps back. ``stats`` is the
    lerobot-layout statistics object (``stats.json``); the step's state dict carries the same bounds, so a
    saved pipeline reloads without it.
    """

    stats: dict | None = None
    inverse: bool = False
    keys: tuple[str, ...] = (STATE_KEY, ACTION_KEY)
    _normalizer: MinMaxNormalizer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.keys = tuple(self.keys)
        unknown = set(self.keys) - {STATE_KEY, ACTION_KEY}
        if unknown:
            raise ValueError(f"keys: expected {STATE_KEY!r} and/or {ACTION_KEY!r}, got {sorted(unknown)}")
        stats = stats_from_json(self.stats) if isinstance(self.stats, dict) else self.stats
        self._normalizer = MinMaxNormalizer(STATE_DIM, ACTION_DIM, stats)

    def _apply(self, x: torch.Tensor, key: str) -> torch.Tensor:
        name = "state" if key == STATE_KEY else "action"
        x = torch.as_tensor(x, dtype=torch.float32)
        norm = self._normalizer.to(x.device)
        return norm.unnormalize(x, name) if self.inverse else norm.normalize(x, name)

    def __call__(self, transition: dict) -> dict:
        out = dict(transition)
        obs = out.get(TransitionKey.OBSERVATION)
        if STATE_KEY in self.keys and isinstance(obs, dict) and obs.get(STATE_KEY) is not None:
            out[TransitionKey.OBSERVATION] = {**obs, STATE_KEY: self._apply(obs[STATE_KEY], STATE_KEY)}
        action = out.get(TransitionKey.ACTION)
        if ACTION_KEY in self.keys and action is not None:
            out[TransitionKey.ACTION] = self._apply(action, ACTION_KEY)
        return out

    def transform_features(self, features: dict) -> dict:
        return features  # shapes and types are unchanged

    def get_config(self) -> dict[str, Any]:
        return {"inverse": self.inverse, "keys": list(self.keys)}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self._normalizer.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._normalizer.load_state_dict(state)


def make_egghand_pre_post_processors(stats: NormStats | dict | None) -> tuple[PolicyProcessorPipeline,
                                                                              PolicyProcessorPipeline]:
    """(pre, post) lerobot pipelines with ``stats`` (NormStats or the lerobot-layout object of a stats.json).

    ``pre`` takes a lerobot batch dict and normalises its ``observation.state`` and ``action``; ``post``
    takes the policy's normalised action tensor and returns it in metres.
    """
    obj = stats_to_json(stats) if isinstance(stats, NormStats) else stats
    pre = PolicyProcessorPipeline(steps=[EggHandMinMaxStep(stats=obj)], name=PREPROCESSOR_NAME)
    post = PolicyProcessorPipeline(steps=[EggHandMinMaxStep(stats=obj, inverse=True, keys=(ACTION_KEY,))],
                                   name=POSTPROCESSOR_NAME, to_transition=policy_action_to_transition,
                                   to_output=transition_to_policy_action)
    return pre, post
