"""The toolkit's GR00T N1.5 head against lerobot 0.4.4's FlowmatchingActionHead: the same state_dict layout
(keys and shapes), the same initialisation from the same seed, and every output equal to 1e-5 with the same
weights and inputs. Collected where lerobot 0.4.4 is (or must be) installed: see conftest.py here."""

from __future__ import annotations

import contextlib
import io

import pytest
import torch
from torch.distributions import Distribution

from egghand_lib.models import EggHandConfig, build_action_head
from egghand_lib.models.gr00t_action_head import Gr00tActionHead, Gr00tActionHeadConfig
from tests.fixtures.tiny_models import small_head_config

ATOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def lerobot_head():
    """lerobot 0.4.4's head module: (FlowmatchingActionHead, FlowmatchingActionHeadConfig, BatchFeature)."""
    try:
        from lerobot.policies.groot.action_head import flow_matching_action_head as fm
        from transformers.feature_extraction_utils import BatchFeature
    except ImportError as e:
        pytest.fail(
            f"lerobot 0.4.4's FlowmatchingActionHead is needed for this comparison but does not import ({e}); "
            "this environment should have lerobot==0.4.4 (requirements.txt, Python 3.11)",
            pytrace=False,
        )
    return fm.FlowmatchingActionHead, fm.FlowmatchingActionHeadConfig, BatchFeature


def build_lerobot(lerobot_head, c: Gr00tActionHeadConfig):
    """lerobot's head with the sizes of ``c``, built quietly (it prints) and with the Beta distribution's
    argument checks off (they cannot run on the meta device)."""
    head_cls, config_cls, _ = lerobot_head
    dit = dict(num_attention_heads=c.num_heads, attention_head_dim=c.head_dim, output_dim=c.output_dim,
               num_layers=c.num_layers, dropout=c.dropout, final_dropout=True, norm_type="ada_norm",
               interleave_self_attention=c.interleave_self_attention, cross_attention_dim=c.backbone_embedding_dim,
               positional_embeddings=None)
    vl = dict(num_attention_heads=c.vl_num_heads, attention_head_dim=c.vl_head_dim,
              num_layers=c.vl_self_attention_layers, dropout=c.dropout, final_dropout=True, positional_embeddings=None)
    cfg = config_cls(
        action_dim=c.action_dim, action_horizon=c.action_horizon, add_pos_embed=True,
        backbone_embedding_dim=c.backbone_embedding_dim, hidden_size=c.hidden_size,
        input_embedding_dim=c.input_embedding_dim, max_state_dim=c.max_state_dim, max_seq_len=c.max_seq_len,
        num_inference_timesteps=c.num_inference_steps, num_target_vision_tokens=c.num_future_tokens,
        max_num_embodiments=c.max_num_embodiments, num_timestep_buckets=c.num_timestep_buckets, use_vlln=True,
        diffusion_model_cfg=dit, vl_self_attention_cfg=vl, tune_projector=True, tune_diffusion_model=True,
        noise_beta_alpha=c.noise_beta_alpha, noise_beta_beta=c.noise_beta_beta, noise_s=c.noise_s,
    )
    old = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return head_cls(cfg)
    finally:
        Distribution.set_default_validate_args(old)


def odd_config(**overrides) -> Gr00tActionHeadConfig:
    """The small head with an odd number of VL layers and 3 inference steps."""
    return small_head_config(**{"vl_self_attention_layers": 2, "num_inference_steps": 3, **overrides})


def randomized_pair(lerobot_head, c: Gr00tActionHeadConfig, seed: int = 0):
    """(ours, lerobot's) holding the same random weights: every tensor redrawn (no zero bias, no unit norm
    weight), ours copied into lerobot's by name."""
    ours = Gr00tActionHead(c)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in ours.named_parameters():
            offset = 1.0 if "norm" in name and name.endswith("weight") else 0.0  # LayerNorm gains around 1
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + offset)
    theirs = build_lerobot(lerobot_head, c)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    return ours.eval(), theirs.eval()


def inputs(c: Gr00tActionHeadConfig, B: int = 3, S: int = 7, T: int = 4, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "context": torch.randn(B, S, c.backbone_embedding_dim, generator=g),
        "state": torch.randn(B, T, c.max_state_dim, generator=g),
        "actions": torch.randn(B, c.action_horizon, c.action_dim, generator=g),
        "tokens": torch.randn(B, T + c.num_future_tokens + c.action_horizon, c.input_embedding_dim, generator=g),
        "dit_out": torch.randn(B, c.action_horizon, c.hidden_size, generator=g),
        "timesteps": torch.randint(0, c.num_timestep_buckets, (B,), generator=g),
        "embodiment_id": torch.arange(B) % c.max_num_embodiments,
    }


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and (a - b).abs().max().item() <= ATOL


# ---------------------------------------------------------------------------------------------- layout
@pytest.mark.parametrize("preset", ["tiny", "cpu-small", "gr00t-n1.5"])
def test_state_dict_keys_and_shapes_match_lerobot(lerobot_head, preset):
    c = EggHandConfig.preset(preset)
    device = "meta" if preset == "gr00t-n1.5" else "cpu"
    with torch.device(device):
        ours = build_action_head(c)
        theirs = build_lerobot(lerobot_head, ours.config)
    mine = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    ref = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert list(mine) == list(ref)  # same names, same order
    assert mine == ref
    if preset == "gr00t-n1.5":
        assert len(mine) == 314 and sum(p.numel() for p in ours.parameters()) == 1_068_806_144


@pytest.mark.parametrize("preset", ["tiny", "cpu-small"])
def test_same_seed_same_initial_weights(lerobot_head, preset):
    c = EggHandConfig.preset(preset)
    torch.manual_seed(3)
    ours = build_action_head(c)
    torch.manual_seed(3)
    theirs = build_lerobot(lerobot_head, ours.config)
    ref = theirs.state_dict()
    for k, v in ours.state_dict().items():
        assert torch.equal(v, ref[k]), k


# ---------------------------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("interleave", [True, False])
def test_every_output_matches_lerobot(lerobot_head, interleave):
    c = odd_config(interleave_self_attention=interleave)
    ours, theirs = randomized_pair(lerobot_head, c)
    _, _, BatchFeature = lerobot_head
    x = inputs(c)
    emb, ts = x["embodiment_id"], x["timesteps"]
    with torch.no_grad():
        # Conditioning: vlln, VL self-attention, process_backbone_output (ours leaves its input alone).
        assert close(ours.vlln(x["context"]), theirs.vlln(x["context"]))
        assert close(ours.vl_self_attention(x["context"]), theirs.vl_self_attention(x["context"]))
        given = {"backbone_features": x["context"], "backbone_attention_mask": torch.ones(3, 7, dtype=torch.bool)}
        mine = ours.process_backbone_output(given)
        ref = theirs.process_backbone_output(BatchFeature(data=dict(given)))
        assert given["backbone_features"] is x["context"]
        assert close(mine["backbone_features"], ref["backbone_features"])
        assert torch.equal(mine["backbone_attention_mask"], ref["backbone_attention_mask"])
        assert close(ours.encode_backbone(x["context"]), ref["backbone_features"])
        vl = ref["backbone_features"]
        # Encoders, embeddings, DiT, decoder.
        assert close(ours.state_encoder(x["state"], emb), theirs.state_encoder(x["state"], emb))
        assert close(ours.action_encoder(x["actions"], ts, emb), theirs.action_encoder(x["actions"], ts, emb))
        pos = torch.arange(c.action_horizon)
        assert close(ours.position_embedding(pos), theirs.position_embedding(pos))
        assert torch.equal(ours.future_tokens.weight, theirs.future_tokens.weight)
        assert close(ours.model(hidden_states=x["tokens"], encoder_hidden_states=vl, timestep=ts),
                     theirs.model(hidden_states=x["tokens"], encoder_hidden_states=vl, timestep=ts))
        assert close(ours.action_decoder(x["dit_out"], emb), theirs.action_decoder(x["dit_out"], emb))

    # The full K-step rollout (lerobot's get_action draws its noise from the global generator, as ours).
    backbone = BatchFeature(data={"backbone_features": x["context"]})
    action_input = BatchFeature(data={"state": x["state"], "embodiment_id": emb})
    torch.manual_seed(7)
    ref = theirs.get_action(backbone, action_input)["action_pred"]
    torch.manual_seed(7)
    mine = ours.get_action(x["context"], x["state"], emb)
    assert close(mine, ref) and not torch.allclose(mine, torch.zeros_like(mine))
    torch.manual_seed(7)
    noise = torch.randn(3, c.action_horizon, c.action_dim)
    with torch.no_grad():
        assert close(ours.rollout(ours.encode_backbone(x["context"]), ours.state_encoder(x["state"], emb), emb,
                                  noise), ref)


def test_training_loss_and_time_sampling_match_lerobot(lerobot_head):
    c = odd_config()
    ours, theirs = randomized_pair(lerobot_head, c)
    _, _, BatchFeature = lerobot_head
    x = inputs(c)
    torch.manual_seed(4)
    t_ref = theirs.sample_time(1000, device="cpu", dtype=torch.float32)
    torch.manual_seed(4)
    assert torch.equal(ours.sample_time(1000, device="cpu", dtype=torch.float32), t_ref)

    mask = (torch.rand(3, c.action_horizon, c.action_dim, generator=torch.Generator().manual_seed(2)) > 0.3).float()
    backbone = BatchFeature(data={"backbone_features": x["context"], "backbone_attention_mask": torch.ones(3, 7)})
    action_input = BatchFeature(data={"state": x["state"], "embodiment_id": x["embodiment_id"],
                                      "action": x["actions"], "action_mask": mask})
    torch.manual_seed(5)
    ref = theirs(backbone, action_input)["loss"]
    torch.manual_seed(5)
    mine = ours(x["context"], x["state"], x["actions"], x["embodiment_id"], action_mask=mask)
    assert close(mine, ref) and mine.item() > 0


def test_dropout_sits_where_lerobot_puts_it(lerobot_head):
    """In training mode with dropout, the same seed drops the same units: same outputs, same order of draws."""
    c = odd_config(dropout=0.3)
    ours, theirs = randomized_pair(lerobot_head, c)
    ours.train()
    theirs.train()
    x = inputs(c)
    with torch.no_grad():
        torch.manual_seed(9)
        ref = theirs.model(hidden_states=x["tokens"], encoder_hidden_states=theirs.vl_self_attention(x["context"]),
                           timestep=x["timesteps"])
        torch.manual_seed(9)
        mine = ours.model(hidden_states=x["tokens"], encoder_hidden_states=ours.vl_self_attention(x["context"]),
                          timestep=x["timesteps"])
        torch.manual_seed(10)
        other = ours.model(hidden_states=x["tokens"], encoder_hidden_states=ours.vl_self_attention(x["context"]),
                           timestep=x["timesteps"])
    assert close(mine, ref)
    assert not torch.allclose(mine, other)  # dropout is active, so the equality above is not trivial
