"""The toolkit's GR00T N1.5 flow-matching action head on its own (any lerobot): building (quiet, meta device),
layout, the Euler rollout, the flow time, dropout, and the GR00T-N1.5-3B loader on a fake checkpoint folder.
Its numerical equality with lerobot 0.4.4's head is in test_gr00t_action_head_vs_lerobot.py."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from egghand_lib.models import EggHandConfig, build_action_head, load_gr00t_action_head
from egghand_lib.models.gr00t_action_head import Gr00tActionHead, Gr00tActionHeadConfig
from tests.fixtures.tiny_models import small_head_config


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small_config(**overrides) -> Gr00tActionHeadConfig:
    return small_head_config(**overrides)


def head_inputs(c: Gr00tActionHeadConfig, B: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ctx = torch.randn(B, 6, c.backbone_embedding_dim, generator=g)
    state = torch.randn(B, 4, c.max_state_dim, generator=g)
    return ctx, state, torch.tensor([0, 2][:B])


# ---------------------------------------------------------------------------------------------- building
def test_paper_head_builds_quietly_on_the_meta_device(capsys):
    validate = torch.distributions.Distribution._validate_args
    with torch.device("meta"):
        head = Gr00tActionHead(Gr00tActionHeadConfig())
    assert capsys.readouterr().out == ""
    assert torch.distributions.Distribution._validate_args == validate  # nothing global was switched off
    assert all(p.device.type == "meta" for p in head.parameters())
    # GR00T-N1.5-3B's action head: 314 tensors, 1,068,806,144 parameters.
    assert len(head.state_dict()) == 314
    assert sum(p.numel() for p in head.parameters()) == 1_068_806_144


@pytest.mark.parametrize("interleave", [True, False])
def test_dit_blocks_alternate_cross_and_self_attention(interleave):
    c = small_config(num_layers=4, interleave_self_attention=interleave)
    blocks = Gr00tActionHead(c).model.transformer_blocks
    widths = [b.attn1.to_k.in_features for b in blocks]
    context, own = c.backbone_embedding_dim, c.input_embedding_dim
    assert widths == ([context, own, context, own] if interleave else [context] * 4)


def test_config_rejects_inconsistent_widths():
    with pytest.raises(ValueError, match="input_embedding_dim"):
        small_config(input_embedding_dim=30)
    with pytest.raises(ValueError, match="backbone_embedding_dim"):
        small_config(backbone_embedding_dim=41)
    with pytest.raises(ValueError, match="output_dim"):
        small_config(output_dim=25)
    with pytest.raises(ValueError, match="action_horizon"):
        small_config(action_horizon=13)
    small_config(vl_self_attention_layers=0, backbone_embedding_dim=41)  # no VL blocks: any context width


def test_egghand_presets_build_this_head():
    head = build_action_head(EggHandConfig.preset("tiny"))
    c = EggHandConfig.preset("tiny")
    assert isinstance(head, Gr00tActionHead)
    assert head.future_tokens.weight.shape == (c.num_future_tokens, c.input_embedding_dim)
    assert head.config.num_inference_steps == c.num_inference_steps and head.config.dropout == c.dropout


# ---------------------------------------------------------------------------------------------- behaviour
def test_process_backbone_output_leaves_its_input_alone():
    c = small_config()
    head = Gr00tActionHead(c).eval()
    ctx, _, _ = head_inputs(c)
    given = {"backbone_features": ctx, "backbone_attention_mask": torch.ones(2, 6, dtype=torch.bool)}
    out = head.process_backbone_output(given)
    assert given["backbone_features"] is ctx and out is not given
    assert out["backbone_attention_mask"] is given["backbone_attention_mask"]
    assert torch.equal(out["backbone_features"], head.encode_backbone(ctx))
    assert not torch.allclose(out["backbone_features"], ctx)


def test_rollout_is_k_euler_steps_at_the_bucketed_times():
    c = small_config()
    head = Gr00tActionHead(c).eval()
    ctx, state, emb = head_inputs(c)
    noise = torch.randn(2, c.action_horizon, c.action_dim, generator=torch.Generator().manual_seed(1))
    seen = []
    real = head.velocity

    def spy(vl, sf, actions, timesteps, e):
        seen.append(timesteps.tolist())
        return real(vl, sf, actions, timesteps, e)

    head.velocity = spy
    vl, sf = head.encode_backbone(ctx), head.state_encoder(state, emb)
    out = head.rollout(vl, sf, emb, noise, num_steps=4)
    assert seen == [[0, 0], [250, 250], [500, 500], [750, 750]]
    # By hand: a <- a + 1/4 v(a, t_k).
    a = noise
    for k in range(4):
        a = a + 0.25 * real(vl, sf, a, torch.full((2,), 250 * k), emb)
    assert torch.allclose(out, a, atol=1e-6)
    # get_action = the same rollout, without gradients.
    head.velocity = real
    got = head.get_action(ctx, state, emb, noise=noise, num_steps=4)
    assert torch.allclose(got, out, atol=1e-6) and not got.requires_grad
    assert head.get_action(ctx, state, emb).shape == (2, c.action_horizon, c.action_dim)


def test_rollout_is_differentiable_and_embodiments_have_their_own_weights():
    c = small_config()
    head = Gr00tActionHead(c)
    ctx, state, _ = head_inputs(c)
    noise = torch.randn(2, c.action_horizon, c.action_dim)
    vl = head.encode_backbone(ctx)
    a0 = head.rollout(vl, head.state_encoder(state, torch.tensor([0, 0])), torch.tensor([0, 0]), noise)
    a2 = head.rollout(vl, head.state_encoder(state, torch.tensor([2, 2])), torch.tensor([2, 2]), noise)
    assert not torch.allclose(a0, a2)
    a0.square().sum().backward()
    for name in ("model.proj_out_2.weight", "vl_self_attention.transformer_blocks.0.attn1.to_q.weight",
                 "action_encoder.W1.W", "state_encoder.layer1.W", "future_tokens.weight"):
        grad = dict(head.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert head.state_encoder.layer1.W.grad[2].abs().sum() == 0  # embodiment 2 was not used


def test_sample_time_follows_the_beta_schedule():
    head = Gr00tActionHead(small_config())
    torch.manual_seed(0)
    t = head.sample_time(20000, device="cpu", dtype=torch.float64)
    assert t.dtype == torch.float64 and t.shape == (20000,)
    # u in (0, 1): t in (-(1 - s) / s, 1), i.e. never the clean data, at most a hair below pure noise.
    assert t.min() > -0.001 / 0.999 and t.max() < 1.0 and (t < 0).any()
    # u ~ Beta(1.5, 1) has mean 0.6, so t = (0.999 - u) / 0.999 has mean 0.3994.
    assert abs(t.mean().item() - (0.999 - 0.6) / 0.999) < 0.01
    assert (t < 0.5).float().mean() > 0.6  # noisy times are favoured


def test_flow_loss_is_a_masked_velocity_mse():
    c = small_config()
    head = Gr00tActionHead(c).eval()
    ctx, state, emb = head_inputs(c)
    actions = torch.randn(2, c.action_horizon, c.action_dim)
    torch.manual_seed(3)
    loss = head(ctx, state, actions, emb)
    assert loss.ndim == 0 and loss.item() > 0
    mask = torch.zeros_like(actions)
    mask[:, :, 0] = 1.0
    torch.manual_seed(3)
    masked = head(ctx, state, actions, emb, action_mask=mask)
    # By hand: the same noise and time, the error on coordinate 0 only.
    torch.manual_seed(3)
    noise = torch.randn(actions.shape)
    t = head.sample_time(2, device="cpu", dtype=torch.float32)[:, None, None]
    pred = head.velocity(head.encode_backbone(ctx), head.state_encoder(state, emb), (1 - t) * noise + t * actions,
                         (t[:, 0, 0] * 1000).long(), emb)
    err = (pred - (actions - noise)).square()
    assert torch.allclose(loss, err.mean(), atol=1e-6)
    assert torch.allclose(masked, err[:, :, 0].mean(), atol=1e-6)


def test_dropout_only_in_training_mode():
    c = small_config(dropout=0.5)
    head = Gr00tActionHead(c)
    ctx, state, emb = head_inputs(c)
    noise = torch.randn(2, c.action_horizon, c.action_dim)
    head.eval()
    assert torch.equal(head.get_action(ctx, state, emb, noise=noise), head.get_action(ctx, state, emb, noise=noise))
    head.train()
    assert not torch.equal(head.get_action(ctx, state, emb, noise=noise),
                           head.get_action(ctx, state, emb, noise=noise))


# ---------------------------------------------------------------------------------------------- GR00T loader
def write_gr00t_folder(folder, head_state: dict) -> None:
    """GR00T-N1.5-3B's layout: a backbone shard, an action-head shard and the index naming both."""
    folder.mkdir(parents=True)
    backbone = {"backbone.eagle_model.vision_model.embeddings.weight": torch.randn(8, 4)}
    action = {"action_head." + k: v.clone() for k, v in head_state.items()}
    save_file(backbone, str(folder / "model-00001-of-00002.safetensors"))
    save_file(action, str(folder / "model-00002-of-00002.safetensors"))
    weight_map = {**{k: "model-00001-of-00002.safetensors" for k in backbone},
                  **{k: "model-00002-of-00002.safetensors" for k in action}}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


@pytest.mark.parametrize("preset", ["tiny", "cpu-small"])
def test_gr00t_loader_fills_every_tensor_of_this_head(tmp_path, preset):
    config = EggHandConfig.preset(preset)
    torch.manual_seed(1)
    donor = build_action_head(config)
    write_gr00t_folder(tmp_path / "GR00T-N1.5-3B", donor.state_dict())
    torch.manual_seed(2)
    head = build_action_head(config)
    report = load_gr00t_action_head(head, tmp_path / "GR00T-N1.5-3B", strict=True)
    assert report.ok and not (report.mismatched or report.missing or report.unexpected)
    assert sorted(report.loaded) == sorted(donor.state_dict())
    assert report.shards_read == ["model-00002-of-00002.safetensors"]
    for k, v in head.state_dict().items():
        assert torch.equal(v, donor.state_dict()[k]), k
