"""EggHandPolicy: video-text encoder -> adapters -> GR00T flow-matching action head (docs/conventions.md, "Model").

Data flow for a batch of windows (egghand_lib/batch.py), B = batch, H = 10 target frames:

1. Context (paper Eq. 6-8). The encoder (or the batch's cached ``video_tokens``/``text_tokens``) gives
   video (B, Nv, Dv) and text (B, Nt, Dt) tokens. Each stream gets a linear projection to the decoder's
   backbone width D plus a learned temporal (video) / positional (text) embedding; the context is
   concat(video, text) (B, Nv + Nt, D). GR00T's DiT does not apply a context attention mask, so padded
   tokens are zeroed instead (they still receive attention, but their content does not depend on the
   padding); encoders pad to a fixed length so a forecast never depends on the batch composition.
2. State (Eq. 9). Per observed frame: 126 joint coordinates + 12 camera numbers (the 3x4 canonical ->
   camera matrix), min-max normalised to [-1, 1] with the training statistics (a constant dimension maps
   to 0), invalid joints set to 0 AFTER normalisation, and the 42 validity flags concatenated
   (138 + 42 = 180 numbers; + 126 offsets from the anchor pose with ``config.state_offsets``). A linear
   adapter maps them to GR00T's ``max_state_dim`` (64) and a learned per-frame embedding tells the frames
   apart (the DiT has no positional embedding of its own). The 20 frames become 20 state tokens of the
   head's ``state_encoder``.
3. Decoder: GR00T N1.5's flow-matching action head (egghand_lib/models/gr00t_action_head.py). Training
   back-propagates through its differentiable K-step ``rollout`` (``get_action`` is the same under no_grad):
   encode_backbone (vlln + vl_self_attention); state_encoder; per Euler step action_encoder +
   position_embedding, [state, future_tokens, action] tokens, DiT, action_decoder, last H tokens. The
   flow runs in the head's own 32-d action space (``action_dim``), so pretrained GR00T weights apply
   unchanged; the adapter ``action_out_proj`` (32 -> 126) decodes the integrated actions to normalised
   joint coordinates and ``action_in_proj`` (126 -> 32) encodes ground truth into that space (used by
   the optional flow-matching loss). Integrating in 126-d instead would leave the noise outside the
   32-d span of the velocities in every forecast, which would make ``sample`` meaningless.
   Options of this toolkit (the CPU presets; the paper preset is the official model): ``config.anchor``
   "last" makes the decoded actions offsets from each joint's last observed position (``action_out_proj``
   then starts at zero: the untrained model holds the last pose), and ``config.motion_mlp`` adds an MLP
   from the 20 frames' state numbers and the mean video and text tokens straight to the 10 x 126 actions.
   Trained from scratch on a CPU budget, the head alone learnt to hold the last pose and nothing of the
   motion (offsets uncorrelated with the truth, BENCHMARKS.md); the MLP learns the motion within a few
   hundred steps.
4. Forecast: K-step Euler (default 4) from a fixed noise sample. The noise is drawn from a CPU generator
   seeded with ``config.noise_seed`` with shape (1, H, 32) and shared by every window of the batch, so it
   never depends on the batch size or order. ``sample(batch, n, seed)`` uses seeds seed, seed+1, ...
5. Training: ``forward`` back-propagates ``egghand_lib.losses.forecast_loss`` through the K Euler steps
   of the deterministic forecast (in metres by default, ``config.loss_space``), plus optionally
   ``config.flow_loss_weight`` x GR00T's flow-matching loss in the 32-d action space (velocity MSE at a
   Beta-distributed time, with the target ``action_in_proj(gt)``) + the reconstruction MSE of
   ``action_out_proj(action_in_proj(gt))``, which keeps that encoding from collapsing.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from egghand_lib.batch import NormStats
from egghand_lib.io import atomic_path, atomic_write_json
from egghand_lib.losses import forecast_loss
from egghand_lib.models.egghand.configuration_egghand import EggHandConfig
from egghand_lib.models.encoders import build_encoder
from egghand_lib.models.gr00t_action_head import Gr00tActionHead, Gr00tActionHeadConfig
from egghand_lib.models.gr00t_weights import SHIPPED_GR00T_MINI_HEAD, LoadReport, load_gr00t_action_head
from egghand_lib.normalization import MinMaxNormalizer, stats_to_json

CONFIG_NAME = "config.json"
# The trained cpu-small EggHand shipped inside the package (``egghand pretrain recipe --install`` writes it).
SHIPPED_MINI = Path(__file__).resolve().parents[2] / "resources" / "weights" / "egghand_mini"
SHIPPED_MINI_NAME = "egghand-mini"
# Its twin: the same fine-tune from a random head instead of the pretrained one (Table 5 without training).
SHIPPED_MINI_RANDOM_HEAD = SHIPPED_MINI.with_name("egghand_mini_random_head")
SHIPPED_MINI_RANDOM_HEAD_NAME = "egghand-mini-random-head"
# name -> (folder, what it is, the `egghand pretrain` stage that remakes it)
SHIPPED_MODELS = {
    SHIPPED_MINI_NAME: (SHIPPED_MINI, "EggHand-mini", "recipe"),
    SHIPPED_MINI_RANDOM_HEAD_NAME: (SHIPPED_MINI_RANDOM_HEAD, "EggHand-mini random-head twin", "twin"),
}
SHIPPED_MODEL_NAMES = tuple(SHIPPED_MODELS)
WEIGHTS_NAME = "model.safetensors"
STATS_NAME = "stats.json"
RUN_MODEL_DIR = "model"  # where a training run folder keeps its final model
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2")
REQUIRED_KEYS = ("past_joints", "past_valid", "past_extrinsics")
OFFICIAL_NORMALISED_STATE = 63  # the official pipeline normalises only these leading state numbers


def _masked_token_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of tokens (B, N, D) over mask (B, N) -> (B, D); 0 for a row without tokens."""
    m = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)


def build_action_head(config: EggHandConfig) -> Gr00tActionHead:
    """The GR00T N1.5 flow-matching action head with the sizes of ``config`` (GR00T-N1.5-3B layout)."""
    return Gr00tActionHead(Gr00tActionHeadConfig(
        action_dim=config.action_dim, action_horizon=config.action_horizon, max_state_dim=config.max_state_dim,
        hidden_size=config.hidden_size, input_embedding_dim=config.input_embedding_dim,
        backbone_embedding_dim=config.backbone_embedding_dim, num_layers=config.num_layers,
        num_heads=config.num_heads, head_dim=config.head_dim, output_dim=config.dit_output_dim,
        interleave_self_attention=config.interleave_self_attention,
        vl_self_attention_layers=config.vl_self_attention_layers, vl_num_heads=config.vl_num_heads,
        vl_head_dim=config.vl_head_dim, num_future_tokens=config.num_future_tokens,
        max_num_embodiments=config.max_num_embodiments, max_seq_len=config.max_seq_len, dropout=config.dropout,
        num_timestep_buckets=config.num_timestep_buckets, num_inference_steps=config.num_inference_steps,
    ))


class EggHandPolicy(nn.Module):
    """The EggHand forecaster. See the module docstring for the data flow.

    ``encoder``: an already built VideoTextEncoder (otherwise built from ``config.encoder``; none for
    ``"cached"``, whose features must come with the batch).
    """

    def __init__(
        self,
        config: EggHandConfig,
        stats: NormStats | None = None,
        encoder: nn.Module | None = None,
        *,
        load_pretrained_decoder: bool = True,
    ):
        super().__init__()
        if encoder is None and config.encoder != "cached":
            encoder = build_encoder(config.encoder, **config.encoder_kwargs)
        if encoder is not None:
            for name in ("video_dim", "text_dim"):
                want, have = getattr(config, name), int(getattr(encoder, name))
                if want is not None and want != have:
                    raise ValueError(f"config.{name}={want} but the encoder {type(encoder).__name__} gives {have}")
            config = config.replace(video_dim=int(encoder.video_dim), text_dim=int(encoder.text_dim))
        if config.video_dim is None or config.text_dim is None:
            raise ValueError("config.video_dim / config.text_dim must be set when no encoder is built ('cached')")
        self.config = config
        self.encoder = encoder
        self.encoder_frozen = bool(encoder is not None and getattr(encoder, "frozen", True))
        if self.encoder_frozen:
            encoder.requires_grad_(False)
            encoder.eval()

        D = config.backbone_embedding_dim
        # Adapters (paper Eq. 6-7): projections to the backbone width + learned temporal/positional encodings.
        self.video_proj = nn.Linear(config.video_dim, D)
        self.text_proj = nn.Linear(config.text_dim, D)
        self.video_pos_embed = nn.Embedding(config.max_video_tokens, D)
        self.text_pos_embed = nn.Embedding(config.max_text_tokens, D)
        # State adapter (official code: 138 -> 64), here with the 42 validity flags appended (not with the
        # official state input).
        n_joints = config.out_action_dim // 3
        n_flags = n_joints if config.state_input == "toolkit" else 0
        n_offsets = config.out_action_dim if config.state_offsets else 0
        self.state_proj = nn.Linear(config.state_dim + n_flags + n_offsets, config.max_state_dim)
        self.state_time_embed = nn.Embedding(config.num_obs, config.max_state_dim)
        # Action adapters (official code: 126 <-> 32).
        self.action_in_proj = nn.Linear(config.out_action_dim, config.action_dim)
        self.action_out_proj = nn.Linear(config.action_dim, config.out_action_dim)
        if config.anchor != "none":
            # Anchored: the untrained decoder forecasts "hold the last pose" exactly (its actions are 0). Otherwise
            # its output starts as a large constant (the decoded noise), L1's sign gradients say only "remove the
            # constant" for many steps, and a motion MLP beside it learns nothing meanwhile.
            nn.init.zeros_(self.action_out_proj.weight)
            nn.init.zeros_(self.action_out_proj.bias)
        for emb in (self.video_pos_embed, self.text_pos_embed, self.state_time_embed):
            nn.init.normal_(emb.weight, std=0.02)

        # Optional direct path from the observed state and context to the forecast (config.motion_mlp),
        # zero at the start.
        self.motion_mlp = None
        if config.motion_mlp > 0:
            # + the mean projected video token and the mean projected text token (2 x D)
            n_in = config.num_obs * (config.state_dim + n_flags + n_offsets) + 2 * D
            self.motion_mlp = nn.Sequential(
                nn.Linear(n_in, config.motion_mlp), nn.GELU(), nn.Linear(config.motion_mlp, config.motion_mlp),
                nn.GELU(), nn.Linear(config.motion_mlp, config.action_horizon * config.out_action_dim),
            )
            nn.init.zeros_(self.motion_mlp[-1].weight)
            nn.init.zeros_(self.motion_mlp[-1].bias)

        self.action_head = build_action_head(config)
        self.gr00t_report: LoadReport | None = None
        if config.decoder_init != "random" and load_pretrained_decoder:
            path = config.gr00t_path if config.decoder_init == "gr00t" else SHIPPED_GR00T_MINI_HEAD
            if config.decoder_init == "gr00t-mini" and not SHIPPED_GR00T_MINI_HEAD.is_dir():
                raise FileNotFoundError(f"{SHIPPED_GR00T_MINI_HEAD}: the shipped GR00T-mini head is not in this "
                                        "installation; make it with `egghand pretrain recipe --work DIR --install` "
                                        "(data_cards/gr00t_mini_head.md) or use decoder_init='random'")
            self.gr00t_report = load_gr00t_action_head(self.action_head, path, strict=True)
        if config.lora_rank > 0:
            self._add_lora()
        for part in config.freeze_decoder:
            getattr(self.action_head, part).requires_grad_(False)

        # Min-max statistics as buffers so they travel with .to(device) and the weights file; NaN = unset.
        self.normalizer = MinMaxNormalizer(config.state_dim, config.out_action_dim, stats, config.norm_constant,
                                           state_clip=config.state_clip)

    # ------------------------------------------------------------------ setup helpers
    def _add_lora(self) -> None:
        """LoRA (peft) on the linears of the DiT and the VL self-attention; their base weights are frozen."""
        from peft import LoraConfig, inject_adapter_in_model

        cfg = self.config
        for name in ("model", "vl_self_attention"):
            module = getattr(self.action_head, name)
            if not any(isinstance(m, nn.Linear) for m in module.modules()):
                continue
            module.requires_grad_(False)
            lora = LoraConfig(
                r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                target_modules=list(LORA_TARGETS),
            )
            inject_adapter_in_model(lora, module)
            for pname, p in module.named_parameters():
                p.requires_grad_("lora_" in pname)

    def set_norm_stats(self, stats: NormStats) -> None:
        """Install the training-split min-max statistics (138-d state, 126-d action)."""
        self.normalizer.set_stats(stats)

    @property
    def stats(self) -> NormStats | None:
        return self.normalizer.stats

    def train(self, mode: bool = True) -> EggHandPolicy:
        super().train(mode)
        # Frozen modules never run in training mode (dropout, norms), as GR00T's set_frozen_modules_to_eval_mode.
        if self.encoder_frozen:
            self.encoder.eval()
        for part in self.config.freeze_decoder:
            getattr(self.action_head, part).eval()
        return self

    @property
    def device(self) -> torch.device:
        return self.normalizer.state_min.device

    def attach_encoder(self, encoder: nn.Module, name: str | None = None, kwargs: dict | None = None) -> EggHandPolicy:
        """Give a model trained on cached features (no encoder) the frozen encoder that computed them.

        It then forecasts from frames and prompts too, e.g. corrupted ones (modality ablation). Only the
        widths can be checked here: pass the encoder (checkpoint, options) the cache was built with. With
        ``name`` (and ``kwargs``), the registry name and options that build that encoder, the config records it,
        so ``save_pretrained`` / ``from_pretrained`` rebuild the model with it (frozen weights are not saved).
        """
        if self.encoder is not None:
            raise ValueError(f"attach_encoder: the model already has an encoder ({type(self.encoder).__name__})")
        if not getattr(encoder, "frozen", False):
            raise ValueError(f"attach_encoder: {type(encoder).__name__} is trainable; cached features come from a "
                             "frozen encoder")
        for width in ("video_dim", "text_dim"):
            want, have = getattr(self.config, width), int(getattr(encoder, width))
            if want != have:
                raise ValueError(f"attach_encoder: the model was trained on {width}={want} features, "
                                 f"{type(encoder).__name__} gives {have}")
        self.encoder = encoder.to(self.device).requires_grad_(False).eval()
        self.encoder_frozen = True
        if name is not None:
            self.config = self.config.replace(encoder=name, encoder_kwargs=dict(kwargs or {}))
        return self

    # ------------------------------------------------------------------ normalisation (docs/conventions.md)
    def normalize(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """Min-max to [-1, 1] with the training statistics; a constant dimension maps to 0. x (..., dim)."""
        return self.normalizer.normalize(x, name)

    def unnormalize(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return self.normalizer.unnormalize(x, name)

    # ------------------------------------------------------------------ inputs
    def encode_context(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Context tokens (B, Nv + Nt, D) and mask (B, Nv + Nt) bool (padded tokens zeroed)."""
        return self._joined_context(*self._context_streams(batch))

    @staticmethod
    def _joined_context(v, vm, t, tm) -> tuple[torch.Tensor, torch.Tensor]:
        """concat(video, text) tokens with padded ones zeroed, and their mask."""
        ctx, mask = torch.cat([v, t], dim=1), torch.cat([vm, tm], dim=1)
        return ctx * mask.unsqueeze(-1).to(ctx.dtype), mask

    def _context_streams(self, batch: dict) -> tuple[torch.Tensor, ...]:
        """Projected video (B, Nv, D) + mask (B, Nv) and text (B, Nt, D) + mask (B, Nt).

        Features the batch carries (feature cache: video_tokens / text_tokens [+ masks]) are used as they
        are; only the missing half is computed by the encoder (e.g. cached MiniLM text + trained video CNN).
        """
        have_v, have_t = "video_tokens" in batch, "text_tokens" in batch
        enc = self.encoder
        if enc is None and not (have_v and have_t):
            raise ValueError("batch: no 'video_tokens'/'text_tokens' and the model has no encoder (encoder='cached')")
        grad = torch.no_grad() if self.encoder_frozen else contextlib.nullcontext()
        with grad:
            if not have_v and not have_t:
                if "frames" not in batch or "task" not in batch:
                    raise ValueError("batch: the encoder needs 'frames' and 'task'")
                out = enc(batch["frames"].to(self.device), list(batch["task"]))
                vt, vm, tt, tm = out.video_tokens, out.video_mask, out.text_tokens, out.text_mask
            else:
                if have_v:
                    vt = batch["video_tokens"]
                    vm = batch.get("video_mask", torch.ones(vt.shape[:2], dtype=torch.bool))
                elif "frames" not in batch:
                    raise ValueError("batch: neither 'video_tokens' nor 'frames'")
                elif getattr(enc, "video_needs_prompt", False) and "task" not in batch:
                    raise ValueError(f"batch: encoder {enc.name!r} reads the prompt with the frames; no 'task'")
                else:
                    vt, vm = enc.video_for(batch["frames"].to(self.device), list(batch.get("task", [])))
                if have_t:
                    tt = batch["text_tokens"]
                    tm = batch.get("text_mask", torch.ones(tt.shape[:2], dtype=torch.bool))
                elif "task" not in batch:
                    raise ValueError("batch: neither 'text_tokens' nor 'task'")
                else:
                    tt, tm = enc.encode_text(list(batch["task"]))
        dev = self.device
        vt, tt = vt.to(dev, torch.float32), tt.to(dev, torch.float32)
        vm, tm = vm.to(dev, torch.bool), tm.to(dev, torch.bool)
        for name, tok, n_max, dim in (("video", vt, self.config.max_video_tokens, self.config.video_dim),
                                      ("text", tt, self.config.max_text_tokens, self.config.text_dim)):
            if tok.ndim != 3 or tok.shape[-1] != dim:
                raise ValueError(f"{name} tokens: expected (B, N, {dim}), got {tuple(tok.shape)}")
            if tok.shape[1] > n_max:
                raise ValueError(f"{name} tokens: {tok.shape[1]} tokens exceed config.max_{name}_tokens={n_max}")
        v = self.video_proj(vt) + self.video_pos_embed.weight[: vt.shape[1]]
        t = self.text_proj(tt) + self.text_pos_embed.weight[: tt.shape[1]]
        return v, vm, t, tm

    def encode_state(self, batch: dict) -> torch.Tensor:
        """State tokens before the head's state_encoder: (B, 20, max_state_dim)."""
        return self._state_tokens(self.state_inputs(batch))

    def _state_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """state_inputs (B, T, F) -> state tokens (B, T, max_state_dim)."""
        return self.state_proj(x) + self.state_time_embed.weight[: x.shape[1]]

    def state_inputs(self, batch: dict) -> torch.Tensor:
        """Per observed frame: normalised joints + camera (138), validity flags (42) [+ anchored offsets (126)]:
        (B, 20, 180 or 306); with ``state_input="egghand-code"`` the official state (B, 20, 138)."""
        for key in REQUIRED_KEYS:
            if key not in batch:
                raise ValueError(f"batch: missing key {key!r}")
        dev = self.device
        joints = batch["past_joints"].to(dev, torch.float32)
        valid = batch["past_valid"].to(dev, torch.bool)
        ext = batch["past_extrinsics"].to(dev, torch.float32)
        B, T = joints.shape[:2]
        n_joints = self.config.out_action_dim // 3
        if joints.shape[1:] != (self.config.num_obs, n_joints, 3) or valid.shape != (B, T, n_joints) \
                or ext.shape != (B, T, 3, 4):
            raise ValueError(
                f"batch: past_joints/past_valid/past_extrinsics must be (B, {self.config.num_obs}, {n_joints}, 3)/"
                f"(B, T, {n_joints})/(B, T, 3, 4); got {tuple(joints.shape)}/{tuple(valid.shape)}/{tuple(ext.shape)}"
            )
        if self.config.state_input == "egghand-code":
            return self._official_state(batch, joints, valid, ext)
        state = self.normalize(torch.cat([joints.reshape(B, T, -1), ext.reshape(B, T, 12)], dim=-1), "state")
        cam_valid = torch.ones_like(valid[..., :1]).expand(B, T, 12)  # the camera pose is always known
        coord_valid = torch.cat([valid.repeat_interleave(3, dim=-1), cam_valid], dim=-1)
        state = torch.where(coord_valid, state, torch.zeros_like(state))  # after normalisation: 0 = "unknown"
        parts = [state, valid.to(state.dtype)]
        if self.config.state_offsets:
            offsets = (joints - self.anchor_pose(batch)[:, None]) / self.config.anchor_scale  # (B, T, J, 3)
            offsets = torch.where(valid[..., None], offsets, torch.zeros_like(offsets))
            parts.append(offsets.reshape(B, T, -1))
        return torch.cat(parts, dim=-1)

    def _official_state(self, batch: dict, joints: torch.Tensor, valid: torch.Tensor,
                        ext: torch.Tensor) -> torch.Tensor:
        """The official pipeline's state (B, T, 138): canonical joints (0 where missing), then the world ->
        camera 3x4 of each observed frame as given; only the first 63 numbers (the right hand) normalised."""
        if "canonical_T" not in batch:
            raise ValueError("batch: state_input='egghand-code' needs 'canonical_T' (the world -> camera matrix)")
        B, T = joints.shape[:2]
        C = batch["canonical_T"].to(self.device, torch.float32)  # (B, 4, 4) world -> canonical
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], device=self.device).expand(B, T, 1, 4)
        world_to_cam = (torch.cat([ext, bottom], dim=-2) @ C[:, None])[..., :3, :]  # (B, T, 3, 4)
        J = torch.where(valid[..., None], joints, torch.zeros_like(joints)).reshape(B, T, -1)
        x = torch.cat([J, world_to_cam.reshape(B, T, 12)], dim=-1)
        right = slice(0, OFFICIAL_NORMALISED_STATE)
        # As the official code: not clipped (its missing joints are zeros, which may normalise far outside [-1, 1]).
        return torch.cat([self.normalizer.normalize(x[..., right], "state", right, clip=False),
                          x[..., OFFICIAL_NORMALISED_STATE:]], dim=-1)

    def _noise(self, seed: int, batch_size: int) -> torch.Tensor:
        """(B, H, action_dim) standard normal noise from ``seed``, identical for every window of the batch."""
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        z = torch.randn((1, self.config.action_horizon, self.config.action_dim), generator=g)
        return z.to(self.device).expand(batch_size, -1, -1)

    # ------------------------------------------------------------------ the head, composed as get_action
    def _condition(self, ctx: torch.Tensor, ctx_mask: torch.Tensor, state: torch.Tensor) -> dict:
        head = self.action_head
        vl_embs = head.encode_backbone(ctx)  # no context mask in GR00T's head: padded tokens come zeroed
        emb_id = torch.full((ctx.shape[0],), self.config.embodiment_id, dtype=torch.long, device=ctx.device)
        return {"vl_embs": vl_embs, "state_features": head.state_encoder(state, emb_id), "embodiment_id": emb_id}

    def _velocity(self, cond: dict, actions: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """Predicted velocity (B, H, action_dim) of head-space actions (B, H, action_dim) at timesteps (B,)."""
        return self.action_head.velocity(cond["vl_embs"], cond["state_features"], actions, timesteps,
                                         cond["embodiment_id"])

    def _integrate(self, cond: dict, noise: torch.Tensor, num_steps: int) -> torch.Tensor:
        """K-step Euler from ``noise`` (B, H, action_dim) at t=0 to t=1; differentiable. Head-space actions."""
        return self.action_head.rollout(cond["vl_embs"], cond["state_features"], cond["embodiment_id"], noise,
                                        num_steps)

    def anchor_pose(self, batch: dict) -> torch.Tensor | None:
        """(B, 42, 3) metres: each joint's last valid observed position (config.anchor == "last"), else None.

        A joint never observed in the window anchors at the centre of the action statistics.
        """
        if self.config.anchor == "none":
            return None
        joints = batch["past_joints"].to(self.device, torch.float32)  # (B, T, J, 3)
        valid = batch["past_valid"].to(self.device, torch.bool)  # (B, T, J)
        T = joints.shape[1]
        steps = torch.arange(T, device=self.device).view(1, T, 1)
        last = torch.where(valid, steps, torch.full_like(steps, -1)).amax(dim=1)  # (B, J)
        idx = last.clamp_min(0)[:, None, :, None].expand(-1, 1, -1, 3)
        pose = torch.gather(joints, 1, idx)[:, 0]  # (B, J, 3)
        centre = self.normalizer.centre("action").view(1, -1, 3)
        return torch.where((last >= 0)[..., None], pose, centre)

    def _to_metres(self, actions: torch.Tensor, anchor: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder actions (B, H, 126) -> (B, H, 42, 3) metres (see config.anchor)."""
        B, H = actions.shape[:2]
        if anchor is None:
            return self.unnormalize(actions, "action").reshape(B, H, -1, 3)
        return anchor[:, None] + actions.reshape(B, H, -1, 3) * self.config.anchor_scale

    def _to_actions(self, joints: torch.Tensor, anchor: torch.Tensor | None = None) -> torch.Tensor:
        """Inverse of _to_metres: (B, H, 42, 3) metres -> decoder actions (B, H, 126)."""
        B, H = joints.shape[:2]
        if anchor is None:
            return self.normalize(joints.reshape(B, H, -1), "action")
        return ((joints - anchor[:, None]) / self.config.anchor_scale).reshape(B, H, -1)

    def _conditioning(self, batch: dict) -> dict:
        """Everything the rollout needs from a batch: the head's conditioning (+ the motion MLP's output)."""
        v, vm, t, tm = self._context_streams(batch)
        x = self.state_inputs(batch)  # (B, T, F)
        cond = self._condition(*self._joined_context(v, vm, t, tm), self._state_tokens(x))
        if self.motion_mlp is not None:
            B, H = x.shape[0], self.config.action_horizon
            pooled = [_masked_token_mean(v, vm), _masked_token_mean(t, tm)]  # 2 x (B, D)
            motion_in = torch.cat([x.flatten(1), *pooled], dim=-1)
            cond["motion"] = self.motion_mlp(motion_in).view(B, H, self.config.out_action_dim)
        return cond

    def _rollout(self, cond: dict, seed: int, num_steps: int) -> torch.Tensor:
        """The forecast for the noise of ``seed``: decoder actions (B, H, 126) (+ the motion MLP's, if any)."""
        latent = self._integrate(cond, self._noise(seed, cond["vl_embs"].shape[0]), num_steps)
        actions = self.action_out_proj(latent)
        return actions + cond["motion"] if "motion" in cond else actions

    # ------------------------------------------------------------------ public API
    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        """Training step: the deterministic forecast and its losses.

        Returns "loss" (scalar, differentiable), "abs", "rel", "pair" (and "flow" when enabled),
        "pred" (B, 10, 42, 3) metres.
        """
        for key in ("future_joints", "future_valid"):
            if key not in batch:
                raise ValueError(f"batch: missing key {key!r}")
        cond = self._conditioning(batch)
        anchor = self.anchor_pose(batch)
        if self.config.objective == "flow":  # GR00T's pretraining objective: no rollout, one DiT pass
            gt = batch["future_joints"].to(self.device, torch.float32)
            flow = self._flow_loss(cond, gt, batch["future_valid"].to(self.device, torch.bool), anchor)
            return {"loss": flow, "flow": flow}
        actions = self._rollout(cond, self.config.noise_seed, self.config.num_inference_steps)
        pred = self._to_metres(actions, anchor)
        gt = batch["future_joints"].to(self.device, torch.float32)
        valid = batch["future_valid"].to(self.device, torch.bool)
        if self.config.loss_space == "metres":
            losses = forecast_loss(pred, gt, valid, weights=self.config.loss_weights,
                                   variant=self.config.loss_variant)
        else:
            gt_n = self._to_actions(gt, anchor).reshape(gt.shape)
            losses = forecast_loss(actions.reshape(gt.shape), gt_n, valid, weights=self.config.loss_weights,
                                   variant=self.config.loss_variant)
        out = {"loss": losses["total"], "abs": losses["abs"], "rel": losses["rel"], "pair": losses["pair"],
               "pred": pred}
        if self.config.flow_loss_weight > 0:
            out["flow"] = self._flow_loss(cond, gt, valid, anchor)
            out["loss"] = out["loss"] + self.config.flow_loss_weight * out["flow"]
        return out

    def _flow_loss(self, cond: dict, gt: torch.Tensor, valid: torch.Tensor,
                   anchor: torch.Tensor | None = None) -> torch.Tensor:
        """GR00T's flow-matching objective in the head's action space + the in/out adapters' reconstruction.

        Target z = action_in_proj(normalised gt) (B, H, action_dim); velocity MSE of (z - noise) at a time
        drawn as in GR00T's training; reconstruction MSE of action_out_proj(z) vs gt on valid coordinates.
        """
        B, H = gt.shape[:2]
        m = valid.repeat_interleave(3, dim=-1)
        target = self._to_actions(gt, anchor)
        target = torch.where(m, target, torch.zeros_like(target))  # invalid joints: 0 ("unknown"), as the state
        z = self.action_in_proj(target)
        noise = torch.randn_like(z)
        t = self.action_head.sample_time(B, device=z.device, dtype=z.dtype)[:, None, None]
        timesteps = (t[:, 0, 0] * self.config.num_timestep_buckets).long()
        v = self._velocity(cond, (1 - t) * noise + t * z, timesteps)
        velocity = ((v - (z - noise)) ** 2).mean()
        mf = m.to(z.dtype)
        recon = (((self.action_out_proj(z) - target) ** 2) * mf).sum() / mf.sum().clamp_min(1.0)
        return velocity + recon

    @contextlib.contextmanager
    def _inference(self):
        was = self.training
        if was:  # a mode switch walks every submodule (~2 ms for cpu-small, a tenth of a forecast): only when needed
            self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            if was:
                self.train(True)

    def forecast(self, batch: dict, seed: int | None = None, num_steps: int | None = None) -> torch.Tensor:
        """Deterministic forecast (B, 10, 42, 3) metres: K-step Euler from the noise of ``seed``
        (default config.noise_seed), K = ``num_steps`` (default config.num_inference_steps). No grad."""
        with self._inference():
            cond = self._conditioning(batch)
            seed = self.config.noise_seed if seed is None else seed
            steps = num_steps or self.config.num_inference_steps
            return self._to_metres(self._rollout(cond, seed, steps), self.anchor_pose(batch))

    def sample(self, batch: dict, n: int, seed: int = 0, num_steps: int | None = None) -> torch.Tensor:
        """n hypotheses per window (B, n, 10, 42, 3) metres, from the noise seeds seed, seed + 1, ..., seed + n - 1."""
        if n < 1:
            raise ValueError(f"n: must be >= 1, got {n}")
        with self._inference():
            cond = self._conditioning(batch)
            steps = num_steps or self.config.num_inference_steps
            anchor = self.anchor_pose(batch)
            outs = [self._to_metres(self._rollout(cond, seed + i, steps), anchor) for i in range(n)]
        return torch.stack(outs, dim=1)

    # ------------------------------------------------------------------ bookkeeping
    def _part_of(self, name: str) -> str:
        if name.startswith("encoder."):
            return "encoder"
        if name.startswith("action_head."):
            return "decoder"
        return "adapters"

    def parameter_counts(self) -> dict[str, dict[str, int]]:
        """{part: {"trainable": n, "frozen": n}} for parts encoder / adapters / decoder."""
        counts = {p: {"trainable": 0, "frozen": 0} for p in ("encoder", "adapters", "decoder")}
        for name, p in self.named_parameters():
            counts[self._part_of(name)]["trainable" if p.requires_grad else "frozen"] += p.numel()
        return counts

    def parameter_summary(self) -> str:
        """A table of trainable / frozen parameter counts per part."""
        counts = self.parameter_counts()
        rows = [f"{'part':<10}{'trainable':>16}{'frozen':>16}{'total':>16}"]
        tot = {"trainable": 0, "frozen": 0}
        for part, c in counts.items():
            rows.append(f"{part:<10}{c['trainable']:>16,}{c['frozen']:>16,}{c['trainable'] + c['frozen']:>16,}")
            for k in tot:
                tot[k] += c[k]
        rows.append(f"{'total':<10}{tot['trainable']:>16,}{tot['frozen']:>16,}{tot['trainable'] + tot['frozen']:>16,}")
        return "\n".join(rows)

    def _saved_state(self) -> dict[str, torch.Tensor]:
        """The tensors save_pretrained writes: everything but the encoder weights that come from elsewhere."""
        state = self.state_dict()
        if self.encoder is None:
            return state
        # A frozen encoder is rebuilt whole from config.encoder_kwargs; a trained one declares the parts it
        # restores itself (``external_prefixes``, e.g. the packaged MiniLM of the offline encoder).
        skip = ("encoder.",) if self.encoder_frozen else tuple(
            "encoder." + p for p in getattr(self.encoder, "external_prefixes", ()))
        return {k: v for k, v in state.items() if not (skip and k.startswith(skip))}

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write config.json, model.safetensors and stats.json (lerobot layout) into ``directory`` atomically."""
        directory = self.save_weights(directory)
        atomic_write_json(directory / CONFIG_NAME, self.config.to_dict())  # written last: the folder is complete
        return directory

    def save_weights(self, directory: str | Path) -> Path:
        """model.safetensors and stats.json of ``save_pretrained`` without config.json (the lerobot policy plugin
        writes its own config.json beside them), each atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu").contiguous().clone() for k, v in self._saved_state().items()}
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt", "egghand": "EggHandPolicy"})
        stats = self.stats
        if stats is not None:
            atomic_write_json(directory / STATS_NAME, stats_to_json(stats))
        return directory

    def load_weights(self, weights: str | Path) -> EggHandPolicy:
        """Load a ``save_weights`` / ``save_pretrained`` model.safetensors into this model, after checking that
        its tensors are exactly the ones this model saves (names and shapes)."""
        weights = Path(weights)
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: weights file not found")
        expected = self._saved_state()
        try:
            with safe_open(str(weights), framework="pt", device="cpu") as f:
                keys = set(f.keys())
                missing = sorted(set(expected) - keys)
                unexpected = sorted(keys - set(expected))
                shapes = {k: tuple(f.get_slice(k).get_shape()) for k in sorted(keys & set(expected))}
                wrong = [(k, s, tuple(expected[k].shape)) for k, s in shapes.items() if s != tuple(expected[k].shape)]
                if missing or unexpected or wrong:
                    msg = [f"{weights}: does not match the model built from its config:"]
                    msg += [f"  missing {k}" for k in missing[:20]]
                    msg += [f"  unexpected {k}" for k in unexpected[:20]]
                    msg += [f"  wrong shape {k}: file {list(a)} vs model {list(b)}" for k, a, b in wrong[:20]]
                    raise ValueError("\n".join(msg))
                state = {k: f.get_tensor(k) for k in keys}
        except (SafetensorError, OSError) as e:
            raise ValueError(f"{weights}: not a valid safetensors file ({e})") from None
        # NaN / inf weights would surface much later as a NaN forecast; the normaliser's statistics must be set.
        nonfinite = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if nonfinite:
            stats_only = all(k.startswith("normalizer.") for k in nonfinite)
            raise ValueError(f"{weights}: " + ("holds no valid normalisation statistics (NaN or inf in "
                                               f"{', '.join(nonfinite)})" if stats_only else
                                               f"NaN or inf in {len(nonfinite)} weight tensor(s), e.g. "
                                               f"{', '.join(nonfinite[:3])}"))
        self.load_state_dict(state, strict=False)  # the key set was checked above
        return self

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, encoder: nn.Module | None = None, **overrides: Any
    ) -> EggHandPolicy:
        """Rebuild a saved policy: the one model loader of the toolkit.

        ``directory``: a ``save_pretrained`` folder (config.json, model.safetensors, stats.json), a finished
        training run folder (its ``model/`` sub-folder) or a checkpoint of ``lerobot-train --policy.type=egghand``
        (its ``pretrained_model/`` folder: lerobot's config.json holds the EggHandConfig), or the name
        ``"egghand-mini"``: the trained cpu-small model shipped inside the package (data_cards/egghand_mini.md),
        or ``"egghand-mini-random-head"``: its twin fine-tuned from a random head
        (data_cards/egghand_mini_random_head.md).
        ``overrides`` replace config fields (e.g. encoder_kwargs with local paths); the GR00T checkpoint is not
        read again (the decoder weights come from model.safetensors)."""
        if str(directory) in SHIPPED_MODELS:
            shipped, label, stage = SHIPPED_MODELS[str(directory)]
            if not (shipped / CONFIG_NAME).is_file():
                raise FileNotFoundError(f"{shipped}: the shipped {label} is not in this installation; remake it "
                                        f"with `egghand pretrain {stage} --work DIR --install`")
            directory = shipped
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: not a directory")
        if not (directory / CONFIG_NAME).is_file() and (directory / RUN_MODEL_DIR / CONFIG_NAME).is_file():
            directory = directory / RUN_MODEL_DIR  # a training run folder
        if not (directory / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"{directory}: no {CONFIG_NAME}; expected a saved model folder or a finished "
                                    f"training run (with {RUN_MODEL_DIR}/{CONFIG_NAME})")
        config = EggHandConfig.from_json(directory / CONFIG_NAME)
        if overrides:
            config = EggHandConfig.from_dict({**config.to_dict(), **overrides}, source="overrides")
        weights = directory / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: weights file not found")
        return cls(config, encoder=encoder, load_pretrained_decoder=False).load_weights(weights)


def build_decoder_on_meta(preset: str | EggHandConfig = "gr00t-n1.5", **overrides: Any) -> EggHandPolicy:
    """The policy without an encoder (adapters + action head) on the meta device: parameter counting without memory.

    ``preset`` is a preset name or a config; its video_dim / text_dim must be known (given in the paper preset).
    """
    config = preset if isinstance(preset, EggHandConfig) else EggHandConfig.preset(preset)
    config = config.replace(encoder="cached", decoder_init="random", **overrides)
    with torch.device("meta"):
        return EggHandPolicy(config)
