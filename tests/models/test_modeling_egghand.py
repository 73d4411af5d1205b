"""EggHandPolicy behaviour on the tiny preset: shapes, determinism, the rollout vs lerobot's get_action,
gradients and freezing, normalisation, save/load, LoRA, and a short overfit."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from egghand_lib.models import EggHandConfig, EggHandPolicy
from egghand_lib.models.egghand.configuration_egghand import PRESETS
from tests.fixtures.tiny_models import VIDEO_DIM, TinyEncoder, make_batch, make_stats, motion_windows


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """2 shared cores: one intra-op thread is ~10x faster than oversubscribed threads (restored afterwards)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_policy(seed: int = 0, frozen: bool = True, batches: tuple = (), **overrides) -> EggHandPolicy:
    torch.manual_seed(seed)
    batches = batches or (make_batch(4),)
    # The official model (normalised absolute coordinates, no motion MLP) unless a test asks for the options.
    official = dict(anchor="none", state_offsets=False, motion_mlp=0)
    config = EggHandConfig.preset("tiny", **{**official, **overrides})
    return EggHandPolicy(config, make_stats(*batches), encoder=TinyEncoder(frozen=frozen))


@pytest.fixture(scope="module")
def batch() -> dict:
    return make_batch(4)


# ---------------------------------------------------------------------------------------------- config
def test_presets_and_config_validation():
    paper = EggHandConfig.preset("paper")
    assert paper.preset_name == "gr00t-n1.5" and paper.encoder == "egovideo"
    assert (paper.backbone_embedding_dim, paper.hidden_size, paper.input_embedding_dim) == (2048, 1024, 1536)
    assert (paper.num_layers, paper.num_heads, paper.head_dim, paper.vl_self_attention_layers) == (16, 32, 48, 4)
    assert (paper.max_state_dim, paper.action_dim, paper.num_future_tokens, paper.embodiment_id) == (64, 32, 32, 31)
    assert paper.num_inference_steps == 4 and paper.loss_weights == (0.6, 0.2, 0.2)
    assert EggHandConfig.preset("cpu-small").input_embedding_dim == 128
    assert set(PRESETS) == {"gr00t-n1.5", "cpu-small", "tiny"}
    with pytest.raises(ValueError, match="preset"):
        EggHandConfig.preset("huge")
    with pytest.raises(ValueError, match="encoder"):
        EggHandConfig.preset("tiny", encoder="clip")
    with pytest.raises(ValueError, match="gr00t_path"):
        EggHandConfig.preset("tiny", decoder_init="gr00t")
    with pytest.raises(ValueError, match="freeze_decoder"):
        EggHandConfig.preset("tiny", freeze_decoder=("wheels",))
    with pytest.raises(ValueError, match="input_embedding_dim"):
        EggHandConfig.preset("tiny", head_dim=7)
    cfg = EggHandConfig.preset("tiny", loss_weights=(1, 0, 0), freeze_decoder=["model"])
    again = EggHandConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.loss_weights == (1.0, 0.0, 0.0) and again.freeze_decoder == ("model",)
    with pytest.raises(ValueError, match="unknown EggHandConfig fields"):
        EggHandConfig.from_dict({**cfg.to_dict(), "colour": "red"})


# ---------------------------------------------------------------------------------------------- shapes
def test_forward_forecast_sample_shapes(batch):
    model = tiny_policy()
    out = model(batch)
    assert set(out) >= {"loss", "abs", "rel", "pair", "pred"}
    assert out["pred"].shape == (4, 10, 42, 3) and out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    expected = 0.6 * out["abs"] + 0.2 * out["rel"] + 0.2 * out["pair"]
    torch.testing.assert_close(out["loss"], expected)
    assert model.forecast(batch).shape == (4, 10, 42, 3)
    samples = model.sample(batch, 3, seed=5)
    assert samples.shape == (4, 3, 10, 42, 3)
    assert not torch.allclose(samples[:, 0], samples[:, 1])  # different seeds, different hypotheses
    torch.testing.assert_close(samples[:, 1], model.forecast(batch, seed=6))  # hypothesis i uses seed + i
    assert model.forecast(batch, num_steps=1).shape == (4, 10, 42, 3)


def test_batch_is_not_mutated(batch):
    model = tiny_policy()
    before = {k: (v.clone() if isinstance(v, torch.Tensor) else list(v)) for k, v in batch.items()}
    model(batch)
    model.forecast(batch)
    assert set(batch) == set(before)
    for k, v in before.items():
        assert torch.equal(batch[k], v) if isinstance(v, torch.Tensor) else batch[k] == v


def test_bad_batches_give_clear_errors(batch):
    model = tiny_policy()
    with pytest.raises(ValueError, match="past_extrinsics"):
        model.forecast({k: v for k, v in batch.items() if k != "past_extrinsics"})
    with pytest.raises(ValueError, match="past_joints"):
        model.forecast({**batch, "past_joints": batch["past_joints"][:, :5]})
    with pytest.raises(ValueError, match="future_valid"):
        model({k: v for k, v in batch.items() if k != "future_valid"})
    no_stats = EggHandPolicy(EggHandConfig.preset("tiny"), encoder=TinyEncoder())
    with pytest.raises(ValueError, match="set_norm_stats"):
        no_stats.forecast(batch)


# ---------------------------------------------------------------------------------------------- determinism
def test_same_inputs_same_forecast_independent_of_batch(batch):
    model = tiny_policy(dropout=0.3)  # dropout must not leak into forecasts
    model.train()
    a, b = model.forecast(batch), model.forecast(batch)
    assert torch.equal(a, b)
    assert model.training  # forecast restores the mode
    single = model.forecast({k: v[1:2] for k, v in batch.items()})
    torch.testing.assert_close(single[0], a[1], atol=1e-5, rtol=1e-5)
    reordered = model.forecast({k: (v.flip(0) if isinstance(v, torch.Tensor) else v[::-1]) for k, v in batch.items()})
    torch.testing.assert_close(reordered.flip(0), a, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(model.forecast(batch, seed=1), a)  # the noise seed matters


def test_rollout_composes_the_head_exactly_like_get_action(batch):
    """Our differentiable K-step Euler equals the GR00T head's get_action (same noise)."""
    model = tiny_policy().eval()
    A = model.config.action_dim
    with torch.no_grad():
        ctx, mask = model.encode_context(batch)
        state = model.encode_state(batch)
        cond = model._condition(ctx, mask, state)
        torch.manual_seed(123)
        noise = torch.randn(4, 10, A)
        ours = model._integrate(cond, noise, 4)
        torch.manual_seed(123)  # get_action draws its noise from the global generator, same shape
        emb = torch.full((4,), model.config.embodiment_id, dtype=torch.long)
        ref = model.action_head.get_action(ctx, state, emb)
    assert ref.shape == (4, 10, A)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(ours, noise)
    # The forecast is that rollout from the seeded noise, decoded 32 -> 126 and denormalised.
    with torch.no_grad():
        latent = model._integrate(cond, model._noise(model.config.noise_seed, 4), 4)
        expected = model.unnormalize(model.action_out_proj(latent), "action").reshape(4, 10, 42, 3)
    torch.testing.assert_close(model.forecast(batch), expected)


# ---------------------------------------------------------------------------------------------- normalisation
def test_normalisation_constant_dims_and_invalid_joints(batch):
    model = tiny_policy()
    x = torch.cat([batch["past_joints"].flatten(2), batch["past_extrinsics"].flatten(2)], -1)
    n = model.normalize(x, "state")
    valid = torch.cat([batch["past_valid"].repeat_interleave(3, -1), torch.ones(4, 20, 12, dtype=torch.bool)], -1)
    assert n[valid].abs().max() <= 1 + 1e-5
    torch.testing.assert_close(model.unnormalize(n, "state")[valid], x[valid], atol=1e-5, rtol=1e-5)
    # A constant dimension maps to 0 and back to its value.
    stats = make_stats(batch)
    stats.state_min[5] = stats.state_max[5] = 0.25
    model.set_norm_stats(stats)
    x5 = torch.full((2, 138), 0.25)
    assert model.normalize(x5, "state")[:, 5].abs().max() == 0
    assert torch.allclose(model.unnormalize(torch.zeros(2, 138), "state")[:, 5], torch.tensor(0.25))
    # Coordinates of invalid joints are ignored (they are zeroed after normalisation).
    moved = dict(batch)
    moved["past_joints"] = torch.where(batch["past_valid"][..., None], batch["past_joints"], torch.tensor(7.0))
    assert torch.equal(model.forecast(moved), model.forecast(batch))
    with pytest.raises(ValueError, match="state_min"):
        short = type(stats)(stats.state_min[:10], stats.state_max[:10], stats.action_min, stats.action_max)
        model.set_norm_stats(short)


def test_output_is_denormalised_once(batch):
    """Shifting the action statistics by c shifts the forecast by exactly c metres."""
    model = tiny_policy()
    stats = make_stats(batch)
    before = model.forecast(batch)
    model.set_norm_stats(type(stats)(stats.state_min, stats.state_max, stats.action_min + 1.0, stats.action_max + 1.0))
    torch.testing.assert_close(model.forecast(batch), before + 1.0, atol=1e-5, rtol=1e-5)


def test_anchor_last_is_offsets_from_the_last_valid_observation(batch):
    """anchor="last": zero actions forecast 'hold each joint's last valid observed position'."""
    model = tiny_policy(anchor="last", anchor_scale=0.5)
    past, valid = batch["past_joints"], batch["past_valid"].clone()
    valid[0, -1, 3] = False  # joint 3 of window 0 last seen one frame earlier
    valid[1, :, 7] = False  # joint 7 of window 1 never seen: anchors at the centre of the action stats
    b = {**batch, "past_valid": valid}
    anchor = model.anchor_pose(b)
    assert torch.equal(anchor[0, 3], past[0, -2, 3]) and torch.equal(anchor[2, 5], past[2, -1, 5])
    lo, hi = model.stats.action_min.view(42, 3), model.stats.action_max.view(42, 3)
    torch.testing.assert_close(anchor[1, 7], (lo[7] + hi[7]) / 2)
    zeros = torch.zeros(4, 10, 126)
    assert torch.equal(model._to_metres(zeros, anchor), anchor[:, None].expand(4, 10, 42, 3))
    one = model._to_metres(torch.ones(4, 10, 126), anchor)
    torch.testing.assert_close(one - anchor[:, None], torch.full_like(one, 0.5))
    gt = batch["future_joints"]
    torch.testing.assert_close(model._to_metres(model._to_actions(gt, anchor), anchor), gt, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="anchor"):
        EggHandConfig.preset("tiny", anchor="first")


# ---------------------------------------------------------------------------------------------- gradients
def test_gradients_reach_adapters_and_decoder_not_frozen_encoder(batch):
    model = tiny_policy(frozen=True)
    model.train()
    assert not model.encoder.training  # a frozen encoder stays in eval mode
    model(batch)["loss"].backward()
    assert all(p.grad is None and not p.requires_grad for p in model.encoder.parameters())
    for name in ("video_proj.weight", "text_proj.weight", "video_pos_embed.weight", "text_pos_embed.weight",
                 "state_proj.weight", "state_time_embed.weight", "action_out_proj.weight",
                 "action_head.model.transformer_blocks.0.attn1.to_k.weight",
                 "action_head.model.transformer_blocks.1.ff.net.2.weight",
                 "action_head.state_encoder.layer1.W", "action_head.action_encoder.W2.W",
                 "action_head.action_decoder.layer2.W",
                 "action_head.vl_self_attention.transformer_blocks.0.attn1.to_q.weight",
                 "action_head.future_tokens.weight", "action_head.position_embedding.weight"):
        p = dict(model.named_parameters())[name]
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    counts = model.parameter_counts()
    assert counts["encoder"] == {"trainable": 0, "frozen": sum(p.numel() for p in model.encoder.parameters())}
    assert counts["adapters"]["frozen"] == 0 and counts["decoder"]["frozen"] == 0
    table = model.parameter_summary()
    assert all(part in table for part in ("encoder", "adapters", "decoder"))
    assert f"{counts['encoder']['frozen']:,}" in table


def test_trainable_encoder_receives_gradients(batch):
    model = tiny_policy(frozen=False)
    model(batch)["loss"].backward()
    assert model.encoder.video.weight.grad is not None and model.encoder.video.weight.grad.abs().sum() > 0
    assert model.parameter_counts()["encoder"]["frozen"] == 0


def test_cached_features_skip_the_encoder(batch):
    enc = TinyEncoder()
    out = enc(batch["frames"], batch["task"])
    cached = {**batch, "video_tokens": out.video_tokens, "video_mask": out.video_mask,
              "text_tokens": out.text_tokens, "text_mask": out.text_mask}
    with_enc = tiny_policy()
    torch.manual_seed(0)
    config = with_enc.config.replace(encoder="cached")
    no_enc = EggHandPolicy(config, make_stats(batch))
    assert no_enc.encoder is None
    no_enc.load_state_dict({k: v for k, v in with_enc.state_dict().items() if not k.startswith("encoder.")})
    torch.testing.assert_close(no_enc.forecast(cached), with_enc.forecast(batch))
    # Only the text half cached: the encoder computes the video half.
    text_only = {k: v for k, v in cached.items() if not k.startswith("video_")}
    torch.testing.assert_close(with_enc.forecast(text_only), with_enc.forecast(batch))
    with pytest.raises(ValueError, match="video_tokens"):
        no_enc.forecast(batch)


def test_padded_context_tokens_do_not_matter(batch):
    """Masked (padding) context tokens are zeroed: their feature values never change the forecast."""
    model = tiny_policy()
    enc = model.encoder
    out = enc(batch["frames"], batch["task"])
    cached = {**batch, "video_tokens": out.video_tokens, "video_mask": out.video_mask,
              "text_tokens": out.text_tokens, "text_mask": out.text_mask}
    noisy = dict(cached)
    noisy["text_tokens"] = torch.where(out.text_mask[..., None], out.text_tokens, torch.randn_like(out.text_tokens))
    assert not out.text_mask.all()
    torch.testing.assert_close(model.forecast(noisy), model.forecast(cached))


def test_freeze_decoder_parts_and_lora(tmp_path, batch):
    frozen_dit = tiny_policy(freeze_decoder=("model", "vl_self_attention"), dropout=0.2)
    frozen_dit.train()
    assert not frozen_dit.action_head.model.training and frozen_dit.action_head.state_encoder.training
    frozen_dit(batch)["loss"].backward()
    assert all(not p.requires_grad for p in frozen_dit.action_head.model.parameters())
    assert frozen_dit.action_head.state_encoder.layer1.W.grad is not None
    assert frozen_dit.parameter_counts()["decoder"]["frozen"] == sum(
        p.numel() for m in (frozen_dit.action_head.model, frozen_dit.action_head.vl_self_attention)
        for p in m.parameters())

    plain, lora = tiny_policy(seed=3), tiny_policy(seed=3, lora_rank=2)
    lora_params = {n: p for n, p in lora.named_parameters() if "lora_" in n}
    assert lora_params and all(p.requires_grad for p in lora_params.values())
    assert not lora.action_head.model.transformer_blocks[0].attn1.to_q.base_layer.weight.requires_grad
    # LoRA starts as the identity (B = 0): same forecast as the plain model with the same weights.
    torch.testing.assert_close(lora.forecast(batch), plain.forecast(batch))
    lora(batch)["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in lora_params.values())
    assert lora.parameter_counts()["decoder"]["trainable"] < plain.parameter_counts()["decoder"]["trainable"]
    with torch.no_grad():
        for p in lora_params.values():
            p.add_(0.05)
    lora.save_pretrained(tmp_path / "lora")
    again = EggHandPolicy.from_pretrained(tmp_path / "lora", encoder=TinyEncoder())
    assert again.config.lora_rank == 2 and torch.equal(again.forecast(batch), lora.forecast(batch))
    assert not torch.allclose(lora.forecast(batch), plain.forecast(batch))


# ---------------------------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("frozen", [True, False])
def test_save_load_round_trip(tmp_path, batch, frozen):
    model = tiny_policy(frozen=frozen, loss_weights=(0.5, 0.0, 0.5))
    with torch.no_grad():  # make the saved weights differ from a fresh init
        model.action_out_proj.bias.add_(0.05)
        model.encoder.video.bias.add_(0.1)
    model.save_pretrained(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"config.json", "model.safetensors", "stats.json"}
    saved = load_file(tmp_path / "m" / "model.safetensors")
    assert any(k.startswith("encoder.") for k in saved) == (not frozen)  # frozen encoders are rebuilt, not saved
    # A frozen encoder comes back from its own weights (here: the same seed); a trained one from the file.
    with torch.no_grad():
        enc = TinyEncoder(frozen=frozen, seed=0 if frozen else 9)
        if frozen:
            enc.video.bias.add_(0.1)
    loaded = EggHandPolicy.from_pretrained(tmp_path / "m", encoder=enc)
    assert loaded.config == model.config and loaded.config.loss_weights == (0.5, 0.0, 0.5)
    assert torch.equal(loaded.forecast(batch), model.forecast(batch))
    assert torch.equal(loaded.stats.action_max, model.stats.action_max)
    overridden = EggHandPolicy.from_pretrained(tmp_path / "m", encoder=enc, num_inference_steps=2)
    assert overridden.config.num_inference_steps == 2
    model.save_pretrained(tmp_path / "m")  # overwriting an existing folder works and leaves no temporaries
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"config.json", "model.safetensors", "stats.json"}


def test_tiny_preset_with_the_default_offline_encoder(tmp_path, batch):
    """The preset as the trainer builds it: the offline encoder (trained video CNN + packaged frozen MiniLM)."""
    torch.manual_seed(0)
    model = EggHandPolicy(EggHandConfig.preset("tiny"), make_stats(batch))
    assert model.config.video_dim == 32 and model.config.text_dim == 384 and not model.encoder_frozen
    # The anchored decoder's output adapter starts at zero (forecast = hold the last pose), so the first
    # backward stops there; after one step the gradient reaches the video CNN.
    model(batch)["loss"].backward()
    assert model.action_out_proj.weight.grad.abs().sum() > 0
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    model.zero_grad()
    model(batch)["loss"].backward()
    video = [p for n, p in model.encoder.named_parameters() if n.startswith("video.")]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in video)
    assert all(p.grad is None for n, p in model.encoder.named_parameters() if n.startswith("text."))
    model.save_pretrained(tmp_path / "m")
    saved = load_file(tmp_path / "m" / "model.safetensors")
    assert any(k.startswith("encoder.video.") for k in saved)
    assert not any(k.startswith("encoder.text.") for k in saved)  # MiniLM comes from its package
    again = EggHandPolicy.from_pretrained(tmp_path / "m")
    assert torch.equal(again.forecast(batch), model.forecast(batch))


def test_from_pretrained_errors(tmp_path, batch):
    model = tiny_policy()
    folder = model.save_pretrained(tmp_path / "ok")
    with pytest.raises(FileNotFoundError, match="nothing"):
        EggHandPolicy.from_pretrained(tmp_path / "nothing", encoder=TinyEncoder())
    state = load_file(folder / "model.safetensors")

    def variant(name: str, new_state: dict | None = None, raw: bytes | None = None):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text((folder / "config.json").read_text())
        if raw is not None:
            (d / "model.safetensors").write_bytes(raw)
        elif new_state is not None:
            save_file(new_state, str(d / "model.safetensors"))
        return d

    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        EggHandPolicy.from_pretrained(variant("no_weights"), encoder=TinyEncoder())
    missing = {k: v for k, v in state.items() if k != "action_head.future_tokens.weight"}
    with pytest.raises(ValueError, match="missing action_head.future_tokens.weight"):
        EggHandPolicy.from_pretrained(variant("missing", missing), encoder=TinyEncoder())
    wrong = {**state, "state_proj.weight": torch.zeros(3, 3)}
    with pytest.raises(ValueError, match="wrong shape state_proj.weight"):
        EggHandPolicy.from_pretrained(variant("wrong", wrong), encoder=TinyEncoder())
    extra = {**state, "surprise": torch.zeros(1)}
    with pytest.raises(ValueError, match="unexpected surprise"):
        EggHandPolicy.from_pretrained(variant("extra", extra), encoder=TinyEncoder())
    pickled = tmp_path / "pickled.bin"
    torch.save({"state": state, "obj": {"a": 1}}, pickled)
    with pytest.raises(ValueError, match="not a valid safetensors"):
        EggHandPolicy.from_pretrained(variant("pickled", raw=pickled.read_bytes()), encoder=TinyEncoder())
    bad_cfg = tmp_path / "bad_cfg"
    bad_cfg.mkdir()
    (bad_cfg / "config.json").write_text('{"preset_name": "tiny", "warp_drive": true}')
    with pytest.raises(ValueError, match="warp_drive"):
        EggHandPolicy.from_pretrained(bad_cfg, encoder=TinyEncoder())
    (bad_cfg / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        EggHandPolicy.from_pretrained(bad_cfg, encoder=TinyEncoder())
    with pytest.raises(ValueError, match="video_dim"):  # the config records the encoder widths
        EggHandPolicy.from_pretrained(folder, encoder=CachedWidth(video_dim=VIDEO_DIM + 1))


class CachedWidth(TinyEncoder):
    def __init__(self, video_dim: int):
        super().__init__()
        self.video_dim = video_dim


# ---------------------------------------------------------------------------------------------- training
def test_tiny_model_overfits_two_batches():
    batches = (make_batch(4, seed=0), make_batch(4, seed=1))
    model = tiny_policy(batches=batches)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3, weight_decay=0.0)
    with torch.no_grad():
        first = sum(float(model(b)["loss"]) for b in batches)
    for _ in range(40):
        for b in batches:
            loss = model(b)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        last = sum(float(model(b)["loss"]) for b in batches)
    assert last < 0.85 * first, (first, last)  # typically ~0.75 after 40 passes, for any init seed


def test_motion_mlp_and_state_offsets(batch):
    plain = tiny_policy()
    model = tiny_policy(anchor="last", state_offsets=True, motion_mlp=16)
    assert plain.motion_mlp is None
    x = model.state_inputs(batch)
    assert x.shape == (4, 20, 138 + 42 + 126)
    # offsets: (joint - its last valid position) / anchor_scale, 0 where the joint is missing
    anchor = model.anchor_pose(batch)
    expected = (batch["past_joints"] - anchor[:, None]) / model.config.anchor_scale
    expected = torch.where(batch["past_valid"][..., None], expected, torch.zeros(()))
    torch.testing.assert_close(x[..., 180:], expected.flatten(2))
    # The MLP's last layer starts at zero: the forecast is the flow's alone, then the MLP learns.
    with torch.no_grad():
        cond = model._conditioning(batch)
        flow_only = model.action_out_proj(model._integrate(cond, model._noise(0, 4), 4))
    torch.testing.assert_close(cond["motion"], torch.zeros(4, 10, 126))
    torch.testing.assert_close(model.forecast(batch), model._to_metres(flow_only, anchor))
    model(batch)["loss"].backward()
    assert model.motion_mlp[-1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="state_offsets"):
        EggHandConfig.preset("tiny", anchor="none", state_offsets=True)
    with pytest.raises(ValueError, match="motion_mlp"):
        EggHandConfig.preset("tiny", motion_mlp=-1)


def test_tiny_preset_learns_motion_from_the_observed_joints():
    """Regression test for a decoder that only learns to hold the last pose.

    The future here is a function of the observed joints alone (each hand keeps its velocity). With the
    tiny preset's defaults (anchored offsets as state, motion MLP) the forecast follows the motion; the
    same model without the motion MLP learnt, in the same 200 steps, offsets uncorrelated with the truth
    (correlation 0.00 vs 0.99 when this test was written).
    """
    train, test = motion_windows(512, seed=0), motion_windows(128, seed=1)
    torch.manual_seed(0)
    model = EggHandPolicy(EggHandConfig.preset("tiny"), make_stats(train), encoder=TinyEncoder())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        i = torch.randint(0, 512, (32,), generator=g)
        loss = model({k: v[i] if torch.is_tensor(v) else [v[j] for j in i] for k, v in train.items()})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    pred, last = model.forecast(test), test["past_joints"][:, -1:]
    moved, predicted = (test["future_joints"] - last).flatten(), (pred - last).flatten()
    assert torch.corrcoef(torch.stack([predicted, moved]))[0, 1] > 0.9
    err = (pred - test["future_joints"]).norm(dim=-1).mean()
    hold = (last - test["future_joints"]).norm(dim=-1).mean()
    assert err < 0.3 * hold, (float(err), float(hold))


def test_flow_loss_option(batch):
    model = tiny_policy(flow_loss_weight=0.5)
    torch.manual_seed(0)
    out = model(batch)
    assert "flow" in out and out["flow"] > 0
    torch.testing.assert_close(out["loss"], 0.6 * out["abs"] + 0.2 * out["rel"] + 0.2 * out["pair"] + 0.5 * out["flow"])
    out["loss"].backward()
    assert model.action_out_proj.weight.grad.abs().sum() > 0
    assert model.action_in_proj.weight.grad.abs().sum() > 0  # encodes the flow target (126 -> 32)
    normalised = tiny_policy(loss_space="normalised")(batch)
    assert torch.isfinite(normalised["loss"]) and normalised["pred"].shape == (4, 10, 42, 3)
