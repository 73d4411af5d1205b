"""EggHandConfig: one plain dataclass for the encoder, the adapters and the GR00T action decoder.

Presets (``EggHandConfig.preset(name)``):
- ``"gr00t-n1.5"`` (alias ``"paper"``): the GR00T-N1.5-3B action head (docs/conventions.md, "Model"; ~1.07 B parameters)
  with the EgoVideo encoder (1408-d CLS token, 512-d text tokens).
- ``"cpu-small"``: the same architecture at width 128 with 4 DiT layers and the offline encoder.
- ``"tiny"``: width 32, 2 layers, for tests (trains in seconds).

Horizon: GR00T-N1.5 was pretrained with ``action_horizon`` 16, but no weight shape depends on the horizon
(the action position embedding has ``max_seq_len`` rows), so the head runs directly with the EggHand horizon
of 10 target frames (``action_horizon = 10`` in every preset).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egghand_lib.batch import ACTION_DIM, NUM_OBS, NUM_TARGET, STATE_DIM, TARGET_OFFSETS
from egghand_lib.io import read_json

ENCODERS = ("offline", "egovideo", "egovideo-mini", "internvl", "cached")
DECODER_INITS = ("random", "gr00t", "gr00t-mini")
# Children of the GR00T action head (models/gr00t_action_head.py) that `freeze_decoder` may name.
DECODER_PARTS = (
    "model", "vl_self_attention", "vlln", "state_encoder", "action_encoder", "action_decoder",
    "future_tokens", "position_embedding",
)
LOSS_SPACES = ("metres", "normalised")
LOSS_VARIANTS = ("paper", "egghand-code")
OBJECTIVES = ("forecast", "flow")
STATE_INPUTS = ("toolkit", "egghand-code")
NORM_CONSTANTS = ("zero", "minus-one")
LEROBOT_TYPE = "egghand"  # the lerobot policy type (egghand_lib.models.lerobot_policy), whose config.json embeds ours
ANCHORS = ("none", "last")


@dataclass
class EggHandConfig:
    preset_name: str = "custom"

    # --- encoder (egghand_lib.models.encoders.build_encoder(encoder, **encoder_kwargs)) ---
    encoder: str = "offline"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {"checkpoint": ".../ckpt_4frames.pth"}
    video_dim: int | None = None  # feature widths; None = taken from the encoder when it is built
    text_dim: int | None = None

    # --- adapters / fusion (paper Eq. 6-9) ---
    max_video_tokens: int = 1024  # rows of the learned temporal/positional embedding of visual tokens
    max_text_tokens: int = 128  # rows of the learned positional embedding of text tokens
    state_dim: int = STATE_DIM  # 126 joint coordinates + 12 camera numbers per observed frame
    # Normalised states are clipped to [-state_clip, state_clip] (None: not clipped). The training states lie in
    # [-1, 1]; a take outside the training range (e.g. a camera pitch the training split never had, on a
    # dimension that spanned micrometres there) would otherwise reach the model as 10^4 (normalization.py).
    # Not applied with state_input="egghand-code": that state is exactly the official code's.
    state_clip: float | None = 1.5
    num_obs: int = NUM_OBS
    out_action_dim: int = ACTION_DIM  # 126 = 42 joints x 3

    # --- GR00T N1.5 flow-matching action head (models/gr00t_action_head.py) ---
    backbone_embedding_dim: int = 2048  # context width (= DiT cross-attention dim)
    hidden_size: int = 1024
    input_embedding_dim: int = 1536  # = num_heads * head_dim
    num_layers: int = 16
    num_heads: int = 32
    head_dim: int = 48
    interleave_self_attention: bool = True
    vl_self_attention_layers: int = 4
    vl_num_heads: int = 32
    vl_head_dim: int = 64  # vl_num_heads * vl_head_dim must equal backbone_embedding_dim
    dit_output_dim: int = 1024  # DiT output width (= hidden_size in GR00T)
    max_state_dim: int = 64
    action_dim: int = 32
    action_horizon: int = NUM_TARGET
    num_future_tokens: int = 32  # GR00T num_target_vision_tokens
    max_num_embodiments: int = 32
    embodiment_id: int = 31  # GR00T's "new embodiment"
    max_seq_len: int = 1024
    dropout: float = 0.2
    num_timestep_buckets: int = 1000

    # --- initialisation / freezing ---
    # "random"; "gr00t": the action_head.* tensors of the GR00T-N1.5-3B folder at gr00t_path; "gr00t-mini": the
    # cpu-small GR00T-architecture head this toolkit pretrained and ships (same loader, same report).
    decoder_init: str = "random"
    gr00t_path: str | None = None  # directory with model.safetensors.index.json + shards
    freeze_decoder: tuple[str, ...] = ()  # names from DECODER_PARTS
    lora_rank: int = 0  # > 0: LoRA (peft) on the DiT and VL self-attention linears, their base weights frozen
    lora_alpha: int = 16
    lora_dropout: float = 0.0

    # --- forecasting / training ---
    num_inference_steps: int = 4
    noise_seed: int = 0
    loss_weights: tuple[float, float, float] = (0.6, 0.2, 0.2)  # abs, rel, pair
    loss_space: str = "metres"  # forecast_loss on metres (default) or on min-max normalised coordinates
    # "paper" (the paper text) or "egghand-code" (the official loss: wrists absolute in L_rel's pool, L_pair
    # over all same-hand pairs with i = j, a sample without valid joints trains on its markers); the official
    # code computes it on normalised coordinates (loss_space="normalised").
    loss_variant: str = "paper"
    # What the state tokens are made of (docs/conventions.md, "State"). "toolkit": per observed frame the 126
    # canonical joint numbers + the 12 numbers of the canonical -> camera matrix, all min-max normalised,
    # invalid joints 0 after normalisation, + 42 validity flags. "egghand-code": exactly what the official
    # pipeline feeds its head: the 126 canonical joint numbers (0 where missing) + the 3x4 world -> camera
    # matrix as given, of which only the first 63 numbers (the right hand) are normalised (a side effect of
    # its in-place normalisation of a 64-column view); no validity flags.
    state_input: str = "toolkit"
    # How a constant dimension (max == min of the training statistics) normalises: "zero" (this toolkit) or
    # "minus-one" (the official code divides by a range of 1, so its minimum maps to -1).
    norm_constant: str = "zero"
    flow_loss_weight: float = 0.0  # optional auxiliary flow-matching velocity loss (0 disables)
    # "forecast": train on the geometric losses of the K-step forecast (EggHand fine-tuning); "flow": GR00T's own
    # flow-matching objective alone, one DiT pass per step (pretraining an action head, pretraining.head).
    objective: str = "forecast"
    protocol: str = "future"
    # What the decoder's actions mean. "none" (the official code): min-max normalised absolute canonical
    # coordinates. "last": offsets from each joint's last valid observed position, in units of
    # `anchor_scale` metres; a decoder trained from scratch then starts at "hold the last pose" instead of
    # having to learn to copy the state first (an option of this toolkit, used by the CPU presets).
    anchor: str = "none"
    anchor_scale: float = 0.25
    # With an anchor, also give the decoder the observed joints as offsets from that anchor pose (in units of
    # `anchor_scale`, invalid joints 0): min-max normalised absolute coordinates squeeze a centimetre of motion
    # into ~0.01, so velocities are hard to read from them; offsets make the recent motion large and explicit.
    state_offsets: bool = False
    # Width of an MLP from the whole observed state (20 frames of state_inputs, flattened) and the mean
    # projected video and text tokens straight to the decoder's 10 x 126 actions, added to the flow's
    # output; 0 = none (the official model). The GR00T head reads the past only through attention over 20
    # similar state tokens, and trained from scratch on a CPU budget it learnt to hold the last pose and
    # nothing of the motion (its offsets were uncorrelated with the truth); this path learns the motion
    # quickly. Its last layer starts at zero.
    motion_mlp: int = 0

    def __post_init__(self) -> None:
        self.loss_weights = tuple(float(w) for w in self.loss_weights)
        self.freeze_decoder = tuple(self.freeze_decoder)
        self.validate()

    def validate(self) -> None:
        def bad(name: str, msg: str) -> ValueError:
            return ValueError(f"EggHandConfig.{name}: {msg} (got {getattr(self, name)!r})")

        if self.encoder not in ENCODERS:
            raise bad("encoder", f"expected one of {ENCODERS}")
        if self.decoder_init not in DECODER_INITS:
            raise bad("decoder_init", f"expected one of {DECODER_INITS}")
        if self.decoder_init == "gr00t" and not self.gr00t_path:
            raise bad("gr00t_path", "decoder_init='gr00t' needs the GR00T-N1.5-3B directory")
        if self.protocol not in TARGET_OFFSETS:
            raise bad("protocol", f"expected one of {sorted(TARGET_OFFSETS)}")
        if self.anchor not in ANCHORS:
            raise bad("anchor", f"expected one of {ANCHORS}")
        if not self.anchor_scale > 0:
            raise bad("anchor_scale", "must be > 0")
        if self.state_offsets and self.anchor == "none":
            raise bad("state_offsets", "needs an anchor (anchor='last')")
        if self.loss_space not in LOSS_SPACES:
            raise bad("loss_space", f"expected one of {LOSS_SPACES}")
        if self.objective not in OBJECTIVES:
            raise bad("objective", f"expected one of {OBJECTIVES}")
        if self.loss_variant not in LOSS_VARIANTS:
            raise bad("loss_variant", f"expected one of {LOSS_VARIANTS}")
        if self.state_input not in STATE_INPUTS:
            raise bad("state_input", f"expected one of {STATE_INPUTS}")
        if self.state_input == "egghand-code" and self.state_offsets:
            raise bad("state_offsets", "the official state input (state_input='egghand-code') has no offsets")
        if self.norm_constant not in NORM_CONSTANTS:
            raise bad("norm_constant", f"expected one of {NORM_CONSTANTS}")
        if len(self.loss_weights) != 3 or any(w < 0 for w in self.loss_weights):
            raise bad("loss_weights", "expected three non-negative weights (abs, rel, pair)")
        if unknown := set(self.freeze_decoder) - set(DECODER_PARTS):
            raise bad("freeze_decoder", f"unknown parts {sorted(unknown)}; expected names from {DECODER_PARTS}")
        if self.num_heads * self.head_dim != self.input_embedding_dim:
            raise bad("input_embedding_dim", "must equal num_heads * head_dim")
        if self.vl_self_attention_layers > 0 and self.vl_num_heads * self.vl_head_dim != self.backbone_embedding_dim:
            raise bad("backbone_embedding_dim", "must equal vl_num_heads * vl_head_dim")
        if self.dit_output_dim != self.hidden_size:
            raise bad("dit_output_dim", "must equal hidden_size (the action decoder reads the DiT output)")
        if self.action_horizon != NUM_TARGET:
            raise bad("action_horizon", f"EggHand forecasts {NUM_TARGET} frames")
        if not 0 <= self.embodiment_id < self.max_num_embodiments:
            raise bad("embodiment_id", f"must be in [0, max_num_embodiments={self.max_num_embodiments})")
        if self.num_inference_steps < 1:
            raise bad("num_inference_steps", "must be >= 1")
        if self.motion_mlp < 0:
            raise bad("motion_mlp", "must be >= 0 (0 = no motion MLP)")
        if self.lora_rank < 0:
            raise bad("lora_rank", "must be >= 0")
        if self.max_seq_len < self.action_horizon:
            raise bad("max_seq_len", "must be >= action_horizon")
        if self.state_clip is not None and not self.state_clip >= 1.0:
            raise bad("state_clip", "must be >= 1 (the training states span [-1, 1]) or None")

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> EggHandConfig:
        """A named preset ("gr00t-n1.5" / "paper", "cpu-small", "tiny") with optional field overrides."""
        key = {"paper": "gr00t-n1.5"}.get(name, name)
        if key not in PRESETS:
            raise ValueError(f"preset: unknown {name!r}; expected one of {sorted(PRESETS) + ['paper']}")
        values = {**copy.deepcopy(PRESETS[key]), "preset_name": key, **overrides}
        return cls(**values)

    def replace(self, **changes: Any) -> EggHandConfig:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["loss_weights"] = list(self.loss_weights)
        d["freeze_decoder"] = list(self.freeze_decoder)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> EggHandConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(d) - known):
            raise ValueError(f"{source}: unknown EggHandConfig fields {unknown}")
        for f in dataclasses.fields(cls):  # plain number / text / flag fields: the type first, naming the field
            allowed = _SCALAR_TYPES.get(str(f.type).replace(" | None", ""))
            value = d.get(f.name)
            if f.name in d and allowed and not (value is None and "None" in str(f.type)) and (
                    not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)):
                raise ValueError(f"{source}: EggHandConfig.{f.name}: expected {str(f.type)}, got {value!r}")
        try:
            return cls(**d)
        except (TypeError, ValueError) as e:  # a field of the wrong type or value
            raise ValueError(f"{source}: {e}") from None

    @classmethod
    def from_json(cls, path: str | Path) -> EggHandConfig:
        path = Path(path)
        d = read_json(path, "config file not found")
        if not isinstance(d, dict):
            raise ValueError(f"{path}: expected a JSON object")
        if d.get("type") == LEROBOT_TYPE:  # lerobot's config.json of the "egghand" policy type: the model is inside
            if not isinstance(d.get("egghand"), dict):
                raise ValueError(f"{path}: a lerobot {LEROBOT_TYPE!r} policy config without its 'egghand' object")
            d = d["egghand"]
        return cls.from_dict(d, source=str(path))


_SCALAR_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}

PRESETS: dict[str, dict[str, Any]] = {
    # GR00T-N1.5-3B action head values (its config.json action_head_cfg) + EgoVideo features.
    "gr00t-n1.5": dict(
        encoder="egovideo", video_dim=1408, text_dim=512,
        backbone_embedding_dim=2048, hidden_size=1024, input_embedding_dim=1536, num_layers=16, num_heads=32,
        head_dim=48, vl_self_attention_layers=4, vl_num_heads=32, vl_head_dim=64, dit_output_dim=1024,
        max_state_dim=64, action_dim=32, num_future_tokens=32, max_num_embodiments=32, embodiment_id=31,
        max_seq_len=1024, dropout=0.2,
    ),
    # EggHand at laptop size: the frozen EgoVideo-mini encoder (in EgoVideo's role) and a width-128 4-layer GR00T
    # head that starts from the GR00T-mini pretrained weights (in GR00T-N1.5-3B's role), both shipped in the
    # package; the head does the forecasting (no motion MLP). ~0.2 s per training step at batch 64 on 2 cores
    # with the encoder's features cached. No dropout (dropout masks cost ~15% of a CPU training step).
    "cpu-small": dict(
        encoder="egovideo-mini", decoder_init="gr00t-mini",
        backbone_embedding_dim=128, hidden_size=128, input_embedding_dim=128, num_layers=4, num_heads=4,
        head_dim=32, vl_self_attention_layers=1, vl_num_heads=4, vl_head_dim=32, dit_output_dim=128,
        max_state_dim=64, action_dim=32, num_future_tokens=8, max_num_embodiments=32, embodiment_id=31,
        max_seq_len=32, dropout=0.0, max_video_tokens=256, max_text_tokens=64, anchor="last",
        state_offsets=True, motion_mlp=0,
    ),
    # For tests and smoke runs: ~0.1 M decoder parameters and a narrow offline video CNN.
    "tiny": dict(
        encoder="offline", encoder_kwargs={"video_width": 32, "stem_channels": 8, "mid_channels": 16},
        backbone_embedding_dim=32, hidden_size=32, input_embedding_dim=32, num_layers=2, num_heads=2,
        head_dim=16, vl_self_attention_layers=1, vl_num_heads=2, vl_head_dim=16, dit_output_dim=32,
        max_state_dim=16, action_dim=8, num_future_tokens=4, max_num_embodiments=2, embodiment_id=1,
        max_seq_len=16, dropout=0.0, max_video_tokens=64, max_text_tokens=64, anchor="last",
        state_offsets=True, motion_mlp=64,
    ),
}
