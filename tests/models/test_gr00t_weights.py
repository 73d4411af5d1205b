"""The GR00T side of the model: paper-size parameter counts on the meta device, GR00T key names, and the
loader of `action_head.*` tensors from a GR00T-N1.5-3B style sharded checkpoint (with its error cases)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from egghand_lib.models import (
    EggHandConfig,
    EggHandPolicy,
    build_decoder_on_meta,
    gr00t_weights,
    load_gr00t_action_head,
)
from tests.fixtures.tiny_models import TinyEncoder, make_batch, make_stats


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------------------------------------- counts
def expected_head_params(c: EggHandConfig) -> dict[str, int]:
    """Parameter count of each child of the GR00T action head, derived by hand from its layers:
    Linear(i, o) = i*o + o; a CategorySpecificLinear holds one Linear per embodiment; DiT blocks are
    AdaLayerNorm (Linear D -> 2D) + attention (q/k/v/out with biases; k/v read the 2048-d context in
    cross-attention blocks, the even ones when interleaved) + GELU MLP (D -> 4D -> D); norms without affine
    weights, except in the VL self-attention blocks (LayerNorm with weight and bias)."""
    lin = lambda i, o: i * o + o
    per_emb = lambda i, o: c.max_num_embodiments * lin(i, o)
    D, C, H = c.input_embedding_dim, c.backbone_embedding_dim, c.hidden_size
    ff = lambda w: lin(w, 4 * w) + lin(4 * w, w)
    self_attn = 4 * lin(D, D)
    cross_attn = 2 * lin(D, D) + 2 * lin(C, D)
    blocks = sum(
        lin(D, 2 * D) + ff(D) + (self_attn if (i % 2 == 1 and c.interleave_self_attention) else cross_attn)
        for i in range(c.num_layers)
    )
    dit = lin(256, D) + lin(D, D) + blocks + lin(D, 2 * D) + lin(D, c.dit_output_dim)
    W = c.vl_num_heads * c.vl_head_dim
    vl = c.vl_self_attention_layers * (2 * W + 4 * lin(W, W) + 2 * W + ff(W))
    return {
        "model": dit,
        "state_encoder": per_emb(c.max_state_dim, H) + per_emb(H, D),
        "action_encoder": per_emb(c.action_dim, D) + per_emb(2 * D, D) + per_emb(D, D),
        "action_decoder": per_emb(H, H) + per_emb(H, c.action_dim),
        "future_tokens": c.num_future_tokens * D,
        "vlln": 2 * C,
        "vl_self_attention": vl,
        "position_embedding": c.max_seq_len * D,
    }


def expected_adapter_params(c: EggHandConfig) -> int:
    lin = lambda i, o: i * o + o
    C = c.backbone_embedding_dim
    per_frame = 138 + 42 + (126 if c.state_offsets else 0)  # state, validity flags [, anchored offsets]
    motion = 0
    if c.motion_mlp:  # 20 frames flattened + mean video and text tokens -> width -> width -> 10 x 126
        motion = lin(20 * per_frame + 2 * C, c.motion_mlp) + lin(c.motion_mlp, c.motion_mlp) + lin(c.motion_mlp, 1260)
    return (lin(c.video_dim, C) + lin(c.text_dim, C) + c.max_video_tokens * C + c.max_text_tokens * C
            + lin(per_frame, c.max_state_dim) + 20 * c.max_state_dim + lin(126, c.action_dim) + lin(c.action_dim, 126)
            + motion)


def test_paper_size_model_on_meta_device():
    model = build_decoder_on_meta("paper")
    c = model.config
    assert all(p.device.type == "meta" for p in model.parameters())
    head = {name: sum(p.numel() for p in child.parameters()) for name, child in model.action_head.named_children()}
    assert head == expected_head_params(c)
    # The GR00T-N1.5-3B action head: 1,068,806,144 parameters ("about 1.07 B", docs/conventions.md).
    assert sum(head.values()) == 1_068_806_144
    counts = model.parameter_counts()
    assert counts["decoder"]["trainable"] == 1_068_806_144
    assert counts["adapters"]["trainable"] == expected_adapter_params(c)
    # Adapters for EgoVideo features (1408-d CLS, 512-d text) add ~6.3 M, mostly the two projections to 2048 and
    # the 1024-row video position table (sized for InternVL's 1024 image tokens): total 1.075 B.
    total = counts["decoder"]["trainable"] + counts["adapters"]["trainable"]
    assert 1.07e9 < total < 1.08e9 and counts["encoder"] == {"trainable": 0, "frozen": 0}


def test_paper_size_gr00t_key_names_and_shapes():
    shapes = {k: tuple(v.shape) for k, v in build_decoder_on_meta("gr00t-n1.5").state_dict().items()}
    head = {k[len("action_head."):]: s for k, s in shapes.items() if k.startswith("action_head.")}
    assert len(head) == 314
    expected = {
        "model.timestep_encoder.timestep_embedder.linear_1.weight": (1536, 256),
        "model.transformer_blocks.0.norm1.linear.weight": (3072, 1536),
        "model.transformer_blocks.0.attn1.to_k.weight": (1536, 2048),  # cross-attention to the 2048-d context
        "model.transformer_blocks.1.attn1.to_k.weight": (1536, 1536),  # self-attention (interleaved)
        "model.transformer_blocks.15.ff.net.0.proj.weight": (6144, 1536),
        "model.proj_out_2.weight": (1024, 1536),
        "state_encoder.layer1.W": (32, 64, 1024),
        "state_encoder.layer2.W": (32, 1024, 1536),
        "action_encoder.W1.W": (32, 32, 1536),
        "action_encoder.W2.W": (32, 3072, 1536),
        "action_decoder.layer2.W": (32, 1024, 32),
        "action_decoder.layer2.b": (32, 32),
        "future_tokens.weight": (32, 1536),
        "vlln.weight": (2048,),
        "vl_self_attention.transformer_blocks.3.attn1.to_q.weight": (2048, 2048),
        "position_embedding.weight": (1024, 1536),
    }
    for name, shape in expected.items():
        assert head[name] == shape, name
    assert "model.transformer_blocks.16.norm1.linear.weight" not in head
    assert shapes["state_proj.weight"] == (64, 180) and shapes["action_in_proj.weight"] == (32, 126)
    assert shapes["action_out_proj.weight"] == (126, 32) and shapes["video_proj.weight"] == (2048, 1408)
    assert shapes["text_proj.weight"] == (2048, 512)


@pytest.mark.parametrize("preset", ["cpu-small", "tiny"])
def test_small_presets_follow_the_same_formula(preset):
    model = build_decoder_on_meta(preset, video_dim=16, text_dim=384)
    head = {name: sum(p.numel() for p in child.parameters()) for name, child in model.action_head.named_children()}
    assert head == expected_head_params(model.config)
    assert model.parameter_counts()["adapters"]["trainable"] == expected_adapter_params(model.config)
    with pytest.raises(ValueError, match="video_dim"):
        build_decoder_on_meta(preset)  # the offline encoder's widths are only known once it is built


# ---------------------------------------------------------------------------------------------- checkpoints
def write_fake_gr00t(folder, head_state: dict, drop=(), reshape=None, extra=None, bf16=()):
    """A GR00T-N1.5-3B style checkpoint: shard 1 holds backbone tensors only, shard 2 the action head."""
    folder.mkdir(parents=True, exist_ok=True)
    backbone = {"backbone.eagle_model.vision_model.embeddings.weight": torch.randn(8, 4),
                "backbone.eagle_model.language_model.lm_head.weight": torch.randn(6, 4)}
    action = {}
    for k, v in head_state.items():
        if k in drop:
            continue
        v = v.clone()
        if reshape and k in reshape:
            v = torch.randn(reshape[k])
        action["action_head." + k] = v.to(torch.bfloat16) if k in bf16 else v
    action.update({"action_head." + k: v for k, v in (extra or {}).items()})
    save_file(backbone, str(folder / "model-00001-of-00002.safetensors"))
    save_file(action, str(folder / "model-00002-of-00002.safetensors"))
    weight_map = {k: "model-00001-of-00002.safetensors" for k in backbone}
    weight_map.update({k: "model-00002-of-00002.safetensors" for k in action})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 0},
                                                                     "weight_map": weight_map}))
    return folder


@pytest.fixture
def source_head_state() -> dict:
    torch.manual_seed(11)
    donor = EggHandPolicy(EggHandConfig.preset("tiny"), encoder=TinyEncoder())
    return {k: v.clone() for k, v in donor.action_head.state_dict().items()}


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """Names of the files the loader opens with safe_open."""
    names: list[str] = []
    real = gr00t_weights.safe_open

    def spy(path, *args, **kwargs):
        names.append(str(path).rsplit("/", 1)[-1])
        return real(path, *args, **kwargs)

    monkeypatch.setattr(gr00t_weights, "safe_open", spy)
    return names


def test_fake_gr00t_checkpoint_loads_into_the_policy(tmp_path, source_head_state, opened):
    ckpt = write_fake_gr00t(tmp_path / "GR00T-N1.5-3B", source_head_state, bf16=("future_tokens.weight",))
    batch = make_batch(2)
    torch.manual_seed(0)
    config = EggHandConfig.preset("tiny", decoder_init="gr00t", gr00t_path=str(ckpt))
    model = EggHandPolicy(config, make_stats(batch), encoder=TinyEncoder())
    assert opened == ["model-00002-of-00002.safetensors"]  # the backbone shard is never read
    report = model.gr00t_report
    assert report.ok and not report.mismatched and not report.missing and not report.unexpected
    assert sorted(report.loaded) == sorted(source_head_state)
    for k, v in model.action_head.state_dict().items():
        want = source_head_state[k].to(torch.bfloat16).float() if k == "future_tokens.weight" else source_head_state[k]
        assert torch.equal(v, want), k
    assert model.forecast(batch).shape == (2, 10, 42, 3)
    # A saved policy does not need the GR00T folder any more.
    model.save_pretrained(tmp_path / "saved")
    for f in ckpt.iterdir():
        f.unlink()
    again = EggHandPolicy.from_pretrained(tmp_path / "saved", encoder=TinyEncoder())
    assert torch.equal(again.forecast(batch), model.forecast(batch))


def test_shape_mismatch_missing_and_unexpected_are_reported(tmp_path, source_head_state):
    ckpt = write_fake_gr00t(
        tmp_path / "g", source_head_state, drop=("action_decoder.layer2.b",),
        reshape={"future_tokens.weight": (5, 32)}, extra={"flare_head.weight": torch.zeros(2)},
    )
    torch.manual_seed(0)
    model = EggHandPolicy(EggHandConfig.preset("tiny"), encoder=TinyEncoder())
    before = model.action_head.future_tokens.weight.detach().clone()
    report = load_gr00t_action_head(model.action_head, ckpt)
    assert report.mismatched == [("future_tokens.weight", (5, 32), (4, 32))]
    assert report.missing == ["action_decoder.layer2.b"]
    assert report.unexpected == ["flare_head.weight"]
    assert len(report.loaded) == len(source_head_state) - 2 and not report.ok
    assert torch.equal(model.action_head.future_tokens.weight, before)  # left untouched
    assert torch.equal(model.action_head.state_encoder.layer1.W, source_head_state["state_encoder.layer1.W"])
    assert "future_tokens.weight" in report.summary() and "[5, 32]" in report.summary()
    with pytest.raises(ValueError, match="future_tokens.weight"):
        load_gr00t_action_head(model.action_head, ckpt, strict=True)
    with pytest.raises(ValueError, match="missing action_decoder.layer2.b"):
        EggHandPolicy(EggHandConfig.preset("tiny", decoder_init="gr00t", gr00t_path=str(ckpt)), encoder=TinyEncoder())


def test_malformed_gr00t_checkpoints(tmp_path, source_head_state):
    head = EggHandPolicy(EggHandConfig.preset("tiny"), encoder=TinyEncoder()).action_head
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_gr00t_action_head(head, tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="index"):
        load_gr00t_action_head(head, tmp_path / "empty")

    missing_shard = write_fake_gr00t(tmp_path / "missing_shard", source_head_state)
    (missing_shard / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model-00002-of-00002.safetensors"):
        load_gr00t_action_head(head, missing_shard)

    pickled = write_fake_gr00t(tmp_path / "pickled", source_head_state)
    torch.save({"action_head." + k: v for k, v in source_head_state.items()},
               pickled / "model-00002-of-00002.safetensors")
    with pytest.raises(ValueError, match="not a valid safetensors"):
        load_gr00t_action_head(head, pickled)

    lying = write_fake_gr00t(tmp_path / "lying", source_head_state)
    index = json.loads((lying / "model.safetensors.index.json").read_text())
    index["weight_map"]["action_head.ghost.weight"] = "model-00002-of-00002.safetensors"
    (lying / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="action_head.ghost.weight"):
        load_gr00t_action_head(head, lying)

    (tmp_path / "bad_index").mkdir()
    (tmp_path / "bad_index" / "model.safetensors.index.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="weight_map"):
        load_gr00t_action_head(head, tmp_path / "bad_index")

    no_head = write_fake_gr00t(tmp_path / "no_head", {})
    with pytest.raises(ValueError, match="no 'action_head"):
        load_gr00t_action_head(head, no_head)
