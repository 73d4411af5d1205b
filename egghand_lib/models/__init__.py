"""EggHand models: encoders, adapters and the GR00T flow-matching action decoder."""

from egghand_lib.models.configuration_egghand import PRESETS, EggHandConfig
from egghand_lib.models.gr00t_weights import LoadReport, load_gr00t_action_head
from egghand_lib.models.modeling_egghand import (
    EggHandPolicy,
    build_action_head,
    build_decoder_on_meta,
    load_stats_json,
)

__all__ = [
    "PRESETS", "EggHandConfig", "EggHandPolicy", "LoadReport", "build_action_head", "build_decoder_on_meta",
    "load_gr00t_action_head", "load_stats_json",
]
