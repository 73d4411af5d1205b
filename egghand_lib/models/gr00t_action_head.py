"""The GR00T N1.5 flow-matching action head, owned by this toolkit (plain torch).

Layout and parameter names follow the ``action_head.*`` tensors of GR00T-N1.5-3B, so
``egghand_lib.models.gr00t_weights.load_gr00t_action_head`` copies a pretrained head in by name. Children
(B = batch, S = context tokens, T = state tokens, H = action horizon, E = embodiment):

- ``vlln`` + ``vl_self_attention``: LayerNorm and a stack of self-attention blocks over the context
  tokens (B, S, backbone_embedding_dim).
- ``state_encoder``: per-embodiment 2-layer MLP, state tokens (B, T, max_state_dim) -> (B, T, input_embedding_dim).
- ``action_encoder``: per-embodiment MLP of the noisy actions (B, H, action_dim) and a sinusoidal encoding of
  the flow time, ``position_embedding`` adds a learned row per action position.
- ``future_tokens``: learned tokens between the state and action tokens.
- ``model``: the DiT. Every block is AdaLayerNorm (scale and shift from the time embedding) -> attention ->
  GELU MLP; with ``interleave_self_attention`` the even blocks cross-attend to the context and the odd ones
  attend to the action-side tokens themselves, otherwise all blocks cross-attend. No attention mask: a
  padded context token is attended to like any other (callers zero them).
- ``action_decoder``: per-embodiment 2-layer MLP, DiT output -> velocities (B, ., action_dim).

Flow time t runs from noise (t = 0) to data (t = 1); the networks see it discretised into
``num_timestep_buckets`` buckets. Training draws t from a Beta distribution that favours small t (noisy
inputs); inference integrates K Euler steps from t = 0.

Weights are initialised as GR00T does (PyTorch defaults; N(0, 0.02) for the per-embodiment matrices and the
embedding tables), module by module in GR00T's order, so a head built after ``torch.manual_seed(s)`` is the
head GR00T's code builds after the same seed. Building prints nothing and works on the meta device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


@dataclass
class Gr00tActionHeadConfig:
    """Sizes of the head; the defaults are GR00T-N1.5-3B's (``action_horizon`` 16 as pretrained)."""

    action_dim: int = 32
    action_horizon: int = 16
    max_state_dim: int = 64
    hidden_size: int = 1024  # state encoder / action decoder width and DiT output width
    input_embedding_dim: int = 1536  # token width of the DiT (= num_heads * head_dim)
    backbone_embedding_dim: int = 2048  # context width
    num_layers: int = 16
    num_heads: int = 32
    head_dim: int = 48
    output_dim: int = 1024  # DiT output width (= hidden_size)
    interleave_self_attention: bool = True
    vl_self_attention_layers: int = 4
    vl_num_heads: int = 32
    vl_head_dim: int = 64  # vl_num_heads * vl_head_dim = backbone_embedding_dim
    num_future_tokens: int = 32
    max_num_embodiments: int = 32
    max_seq_len: int = 1024  # rows of the action position embedding
    dropout: float = 0.2
    num_timestep_buckets: int = 1000
    num_inference_steps: int = 4
    noise_beta_alpha: float = 1.5
    noise_beta_beta: float = 1.0
    noise_s: float = 0.999

    def __post_init__(self) -> None:
        def bad(name: str, msg: str) -> ValueError:
            return ValueError(f"Gr00tActionHeadConfig.{name}: {msg}")

        if self.num_heads * self.head_dim != self.input_embedding_dim:
            raise bad("input_embedding_dim", f"must equal num_heads * head_dim = {self.num_heads * self.head_dim}")
        if self.vl_self_attention_layers > 0 and self.vl_num_heads * self.vl_head_dim != self.backbone_embedding_dim:
            raise bad("backbone_embedding_dim", "must equal vl_num_heads * vl_head_dim")
        if self.output_dim != self.hidden_size:
            raise bad("output_dim", "must equal hidden_size (the action decoder reads the DiT output)")
        if not 1 <= self.action_horizon <= self.max_seq_len:
            raise bad("action_horizon", f"must be in [1, max_seq_len={self.max_seq_len}]")
        if self.num_inference_steps < 1:
            raise bad("num_inference_steps", "must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise bad("dropout", "must be in [0, 1)")


# ---------------------------------------------------------------------------------------------- building blocks
class EmbodimentLinear(nn.Module):
    """A linear layer with its own weight ``W`` (E, in, out) and bias ``b`` (E, out) per embodiment."""

    def __init__(self, num_embodiments: int, in_features: int, out_features: int):
        super().__init__()
        self.W = nn.Parameter(torch.empty(num_embodiments, in_features, out_features))
        self.b = nn.Parameter(torch.zeros(num_embodiments, out_features))
        nn.init.normal_(self.W, std=0.02)

    def forward(self, x: torch.Tensor, embodiment_id: torch.Tensor) -> torch.Tensor:
        """x (B, N, in), embodiment_id (B,) long -> (B, N, out)."""
        return torch.bmm(x, self.W[embodiment_id]) + self.b[embodiment_id].unsqueeze(1)


class EmbodimentMLP(nn.Module):
    """layer2(relu(layer1(x))), both per embodiment."""

    def __init__(self, num_embodiments: int, in_features: int, hidden_features: int, out_features: int):
        super().__init__()
        self.layer1 = EmbodimentLinear(num_embodiments, in_features, hidden_features)
        self.layer2 = EmbodimentLinear(num_embodiments, hidden_features, out_features)

    def forward(self, x: torch.Tensor, embodiment_id: torch.Tensor) -> torch.Tensor:
        return self.layer2(F.relu(self.layer1(x, embodiment_id)), embodiment_id)


def action_time_encoding(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal encoding of the flow-time bucket of the action encoder: (B, N) -> (B, N, dim), [sin | cos].

    Frequencies 10000^(-k / (dim/2)), k = 0 .. dim/2 - 1, computed in float32 like the pretrained model.
    """
    half = dim // 2
    step = torch.log(torch.tensor(10000.0, device=timesteps.device)) / half
    freqs = torch.exp(-torch.arange(half, dtype=torch.float32, device=timesteps.device) * step)
    angles = timesteps.float().unsqueeze(-1) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def dit_time_encoding(timesteps: torch.Tensor, dim: int = 256) -> torch.Tensor:
    """Sinusoidal encoding of the flow-time bucket of the DiT: (B,) -> (B, dim), [cos | sin].

    Frequencies 10000^(-k / (dim/2 - 1)), k = 0 .. dim/2 - 1 (the DDPM-style embedding GR00T's DiT uses).
    """
    half = dim // 2
    exponent = -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / (half - 1)
    angles = timesteps[:, None].float() * torch.exp(exponent)[None, :]
    enc = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    return F.pad(enc, (0, 1)) if dim % 2 else enc


class ActionEncoder(nn.Module):
    """Noisy actions (B, H, action_dim) + flow-time bucket (B,) -> action tokens (B, H, width).

    W3(swish(W2([W1(actions) | time encoding]))), all per embodiment.
    """

    def __init__(self, action_dim: int, width: int, num_embodiments: int):
        super().__init__()
        self.width = width
        self.W1 = EmbodimentLinear(num_embodiments, action_dim, width)
        self.W2 = EmbodimentLinear(num_embodiments, 2 * width, width)
        self.W3 = EmbodimentLinear(num_embodiments, width, width)

    def forward(self, actions: torch.Tensor, timesteps: torch.Tensor, embodiment_id: torch.Tensor) -> torch.Tensor:
        B, H, _ = actions.shape
        if timesteps.shape != (B,):
            raise ValueError(f"action_encoder: timesteps must have shape ({B},), got {tuple(timesteps.shape)}")
        a = self.W1(actions, embodiment_id)
        tau = action_time_encoding(timesteps.unsqueeze(1).expand(B, H), self.width).to(a.dtype)
        x = self.W2(torch.cat([a, tau], dim=-1), embodiment_id)
        return self.W3(x * torch.sigmoid(x), embodiment_id)  # swish


class TimestepEmbedder(nn.Module):
    """linear_2(silu(linear_1(x)))."""

    def __init__(self, in_features: int, width: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_features, width)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class TimestepEncoder(nn.Module):
    """Flow-time bucket (B,) -> time embedding (B, width): 256-d sinusoid, then an MLP."""

    def __init__(self, width: int, num_channels: int = 256):
        super().__init__()
        self.num_channels = num_channels
        self.timestep_embedder = TimestepEmbedder(num_channels, width)

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        enc = dit_time_encoding(timesteps, self.num_channels)
        return self.timestep_embedder(enc.to(self.timestep_embedder.linear_1.weight.dtype))


class AdaLayerNorm(nn.Module):
    """LayerNorm without affine weights, then x * (1 + scale) + shift, (scale, shift) = linear(silu(temb))."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.silu = nn.SiLU()
        self.linear = nn.Linear(dim, 2 * dim)
        self.norm = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """x (B, N, dim), temb (B, dim)."""
        scale, shift = self.linear(self.silu(temb)).chunk(2, dim=1)
        return self.norm(x) * (1 + scale[:, None]) + shift[:, None]


class Attention(nn.Module):
    """Multi-head attention of queries (B, N, dim) over keys/values from ``context`` (B, S, context_dim), or
    over the queries themselves. ``to_out`` = [output projection, dropout]."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, context_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        inner = num_heads * head_dim
        self.num_heads = num_heads
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(context_dim or dim, inner)
        self.to_v = nn.Linear(context_dim or dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(dropout)])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        B = x.shape[0]
        q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
        q, k, v = (t.view(B, -1, self.num_heads, t.shape[-1] // self.num_heads).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, head_dim)
        out = out.transpose(1, 2).reshape(B, -1, q.shape[1] * q.shape[-1])
        return self.to_out[1](self.to_out[0](out))


class GeluProjection(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.proj = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    """dim -> 4 dim (tanh-GELU) -> dim, dropout after the activation and after the output projection."""

    def __init__(self, dim: int, dropout: float = 0.0, mult: int = 4):
        super().__init__()
        self.net = nn.ModuleList([
            GeluProjection(dim, mult * dim), nn.Dropout(dropout), nn.Linear(mult * dim, dim), nn.Dropout(dropout),
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class TransformerBlock(nn.Module):
    """Pre-norm block: x + dropout(attn1(norm1(x))), then x + ff(norm3(x)).

    ``adaptive``: norm1 is an AdaLayerNorm on the time embedding and norm3 has no affine weights (DiT blocks);
    otherwise both are plain LayerNorms with weights (VL self-attention blocks). ``context_dim``: attn1
    cross-attends to a context of that width; None = self-attention.
    """

    def __init__(self, dim: int, num_heads: int, head_dim: int, dropout: float = 0.0,
                 context_dim: int | None = None, adaptive: bool = False):
        super().__init__()
        self.adaptive = adaptive
        self.norm1 = AdaLayerNorm(dim) if adaptive else nn.LayerNorm(dim, eps=1e-5)
        self.attn1 = Attention(dim, num_heads, head_dim, context_dim, dropout)
        self.norm3 = nn.LayerNorm(dim, eps=1e-5, elementwise_affine=not adaptive)
        self.ff = FeedForward(dim, dropout)
        self.final_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                temb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm1(x, temb) if self.adaptive else self.norm1(x)
        x = self.final_dropout(self.attn1(h, context)) + x
        return self.ff(self.norm3(x)) + x


class DiT(nn.Module):
    """The diffusion transformer: tokens (B, N, inner) attending to a context (B, S, context_dim), conditioned
    on the flow-time bucket (B,), -> (B, N, output_dim)."""

    def __init__(self, num_heads: int, head_dim: int, output_dim: int, num_layers: int, context_dim: int,
                 dropout: float = 0.0, interleave_self_attention: bool = True):
        super().__init__()
        inner = num_heads * head_dim
        self.interleave_self_attention = interleave_self_attention
        self.timestep_encoder = TimestepEncoder(inner)
        self.transformer_blocks = nn.ModuleList([
            TransformerBlock(inner, num_heads, head_dim, dropout, adaptive=True,
                             context_dim=None if self._self_attends(i) else context_dim)
            for i in range(num_layers)
        ])
        self.norm_out = nn.LayerNorm(inner, eps=1e-6, elementwise_affine=False)
        self.proj_out_1 = nn.Linear(inner, 2 * inner)
        self.proj_out_2 = nn.Linear(inner, output_dim)

    def _self_attends(self, index: int) -> bool:
        return self.interleave_self_attention and index % 2 == 1

    def forward(self, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor,
                timestep: torch.Tensor) -> torch.Tensor:
        temb = self.timestep_encoder(timestep)
        x, context = hidden_states.contiguous(), encoder_hidden_states.contiguous()
        for i, block in enumerate(self.transformer_blocks):
            x = block(x, None if self._self_attends(i) else context, temb)
        shift, scale = self.proj_out_1(F.silu(temb)).chunk(2, dim=1)
        return self.proj_out_2(self.norm_out(x) * (1 + scale[:, None]) + shift[:, None])


class SelfAttentionTransformer(nn.Module):
    """A stack of self-attention blocks with LayerNorms (the VL self-attention over the context)."""

    def __init__(self, num_heads: int, head_dim: int, num_layers: int, dropout: float = 0.0):
        super().__init__()
        dim = num_heads * head_dim
        self.transformer_blocks = nn.ModuleList([
            TransformerBlock(dim, num_heads, head_dim, dropout) for _ in range(num_layers)
        ])

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        x = hidden_states.contiguous()
        for block in self.transformer_blocks:
            x = block(x)
        return x


# ---------------------------------------------------------------------------------------------- the head
class Gr00tActionHead(nn.Module):
    """GR00T N1.5's flow-matching action head. See the module docstring for the children and the flow."""

    def __init__(self, config: Gr00tActionHeadConfig):
        super().__init__()
        c = config
        self.config = c
        # Children in GR00T's construction order (the order the initialisation draws random numbers in).
        self.model = DiT(c.num_heads, c.head_dim, c.output_dim, c.num_layers, c.backbone_embedding_dim,
                         c.dropout, c.interleave_self_attention)
        self.state_encoder = EmbodimentMLP(c.max_num_embodiments, c.max_state_dim, c.hidden_size,
                                           c.input_embedding_dim)
        self.action_encoder = ActionEncoder(c.action_dim, c.input_embedding_dim, c.max_num_embodiments)
        self.action_decoder = EmbodimentMLP(c.max_num_embodiments, c.hidden_size, c.hidden_size, c.action_dim)
        self.future_tokens = nn.Embedding(c.num_future_tokens, c.input_embedding_dim)
        nn.init.normal_(self.future_tokens.weight, mean=0.0, std=0.02)
        self.vlln = nn.LayerNorm(c.backbone_embedding_dim)
        self.vl_self_attention = SelfAttentionTransformer(c.vl_num_heads, c.vl_head_dim, c.vl_self_attention_layers,
                                                          c.dropout)
        self.position_embedding = nn.Embedding(c.max_seq_len, c.input_embedding_dim)
        nn.init.normal_(self.position_embedding.weight, mean=0.0, std=0.02)

    # ------------------------------------------------------------------ conditioning
    def encode_backbone(self, backbone_features: torch.Tensor) -> torch.Tensor:
        """Context tokens (B, S, backbone_embedding_dim) -> vlln + VL self-attention, same shape."""
        return self.vl_self_attention(self.vlln(backbone_features))

    def process_backbone_output(self, backbone_output: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A copy of ``backbone_output`` whose "backbone_features" went through ``encode_backbone``; the input
        mapping is left as it was."""
        out = dict(backbone_output)
        out["backbone_features"] = self.encode_backbone(backbone_output["backbone_features"])
        return out

    # ------------------------------------------------------------------ one velocity evaluation
    def velocity(self, vl_embs: torch.Tensor, state_features: torch.Tensor, actions: torch.Tensor,
                 timesteps: torch.Tensor, embodiment_id: torch.Tensor) -> torch.Tensor:
        """Predicted velocity (B, H, action_dim) of the actions (B, H, action_dim) at flow-time buckets (B,).

        vl_embs (B, S, backbone_embedding_dim) from ``encode_backbone``; state_features (B, T, input_embedding_dim)
        from ``state_encoder``; embodiment_id (B,) long. The DiT reads [state, future tokens, actions].
        """
        H = actions.shape[1]
        action_features = self.action_encoder(actions, timesteps, embodiment_id)
        pos = torch.arange(H, dtype=torch.long, device=actions.device)
        action_features = action_features + self.position_embedding(pos).unsqueeze(0)
        future = self.future_tokens.weight.unsqueeze(0).expand(actions.shape[0], -1, -1)
        tokens = torch.cat((state_features, future, action_features), dim=1)
        out = self.model(hidden_states=tokens, encoder_hidden_states=vl_embs, timestep=timesteps)
        return self.action_decoder(out, embodiment_id)[:, -H:]

    def rollout(self, vl_embs: torch.Tensor, state_features: torch.Tensor, embodiment_id: torch.Tensor,
                noise: torch.Tensor, num_steps: int | None = None) -> torch.Tensor:
        """K-step Euler from ``noise`` (B, H, action_dim) at t = 0 to t = 1 (K = ``num_steps``, default
        config.num_inference_steps); step k evaluates the velocity at bucket int(k / K * buckets). Differentiable."""
        num_steps = num_steps or self.config.num_inference_steps
        actions, dt, B = noise, 1.0 / num_steps, noise.shape[0]
        for k in range(num_steps):
            bucket = int(k / float(num_steps) * self.config.num_timestep_buckets)
            timesteps = torch.full((B,), bucket, dtype=torch.long, device=noise.device)
            actions = actions + dt * self.velocity(vl_embs, state_features, actions, timesteps, embodiment_id)
        return actions

    @torch.no_grad()
    def get_action(self, backbone_features: torch.Tensor, state: torch.Tensor, embodiment_id: torch.Tensor,
                   noise: torch.Tensor | None = None, num_steps: int | None = None) -> torch.Tensor:
        """Inference: actions (B, action_horizon, action_dim) from context tokens (B, S, backbone_embedding_dim)
        and state tokens (B, T, max_state_dim). ``noise`` defaults to a standard normal draw from the global
        generator on the context's device."""
        vl_embs = self.encode_backbone(backbone_features)
        state_features = self.state_encoder(state, embodiment_id)
        if noise is None:
            shape = (vl_embs.shape[0], self.config.action_horizon, self.config.action_dim)
            noise = torch.randn(shape, dtype=vl_embs.dtype, device=vl_embs.device)
        return self.rollout(vl_embs, state_features, embodiment_id, noise, num_steps)

    # ------------------------------------------------------------------ training objective
    def sample_time(self, batch_size: int, device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
        """Flow times (batch_size,) for training: (s - u) / s with u ~ Beta(alpha, beta), s = noise_s, so
        t in (-(1 - s) / s, 1): small t (noisy inputs) favoured, t = 1 (clean data) never drawn.

        The Beta distribution is built here, on the CPU, so building the head never needs it (its argument
        checks cannot run on the meta device) and the draw uses the CPU generator wherever the head lives.
        """
        c = self.config
        beta = torch.distributions.Beta(torch.tensor(c.noise_beta_alpha, device="cpu"),
                                        torch.tensor(c.noise_beta_beta, device="cpu"))
        u = beta.sample((batch_size,)).to(device, dtype=dtype)
        return (c.noise_s - u) / c.noise_s

    def forward(self, backbone_features: torch.Tensor, state: torch.Tensor, actions: torch.Tensor,
                embodiment_id: torch.Tensor, action_mask: torch.Tensor | None = None) -> torch.Tensor:
        """GR00T's flow-matching loss: MSE between the predicted and the true velocity (actions - noise) at
        (1 - t) noise + t actions, t from ``sample_time``, over ``action_mask`` (B, H, action_dim) (default all).
        actions (B, H, action_dim); the noise comes from the global generator."""
        vl_embs = self.encode_backbone(backbone_features)
        state_features = self.state_encoder(state, embodiment_id)
        noise = torch.randn(actions.shape, device=actions.device, dtype=actions.dtype)
        t = self.sample_time(actions.shape[0], device=actions.device, dtype=actions.dtype)[:, None, None]
        noisy = (1 - t) * noise + t * actions
        timesteps = (t[:, 0, 0] * self.config.num_timestep_buckets).long()
        pred = self.velocity(vl_embs, state_features, noisy, timesteps, embodiment_id)
        mask = torch.ones_like(actions) if action_mask is None else action_mask.to(actions.dtype)
        return (F.mse_loss(pred, actions - noise, reduction="none") * mask).sum() / mask.sum()
