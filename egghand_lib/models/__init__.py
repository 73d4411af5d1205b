"""EggHand models: the policy folder (``models.egghand``), the video-text encoders (``models.encoders``)
and the loader of pretrained GR00T-N1.5-3B action-head weights (``models.gr00t_weights``)."""

from egghand_lib.models.egghand import PRESETS, EggHandConfig, EggHandPolicy, build_action_head, build_decoder_on_meta
from egghand_lib.models.gr00t_weights import LoadReport, load_gr00t_action_head

__all__ = [
    "PRESETS", "EggHandConfig", "EggHandPolicy", "LoadReport", "build_action_head", "build_decoder_on_meta",
    "load_gr00t_action_head",
]
