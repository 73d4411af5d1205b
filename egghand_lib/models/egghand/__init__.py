"""The EggHand policy, shaped like a lerobot policy folder.

- ``configuration_egghand``: ``EggHandConfig`` and its presets;
- ``modeling_egghand``: ``EggHandPolicy`` (encoder -> adapters -> GR00T flow-matching head), with
  ``save_pretrained`` / ``from_pretrained``;
- ``processor_egghand``: the min-max normaliser as lerobot pipeline steps (imported on demand: it loads
  ``lerobot.processor``).
"""

from egghand_lib.models.egghand.configuration_egghand import PRESETS, EggHandConfig
from egghand_lib.models.egghand.modeling_egghand import EggHandPolicy, build_action_head, build_decoder_on_meta

__all__ = ["PRESETS", "EggHandConfig", "EggHandPolicy", "build_action_head", "build_decoder_on_meta"]
