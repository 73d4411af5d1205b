"""The weights shipped inside the package (the offline foundation stack): what their model cards list, frozen and
deterministic, loaded tensor for tensor the way GR00T's are, and a trained EggHand-mini that beats LastPose."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import egghand_lib.pretraining.recipe as recipe
from egghand_lib.data.prepare import prepare_dataset
from egghand_lib.evaluation import evaluate
from egghand_lib.io import file_sha256
from egghand_lib.models.egghand import EggHandConfig, EggHandPolicy
from egghand_lib.models.encoders import build_encoder
from egghand_lib.models.gr00t_weights import PREFIX, load_gr00t_action_head
from egghand_lib.pretraining.grounding import GroundedWindows
from egghand_lib.pretraining.head import SHARD_NAME


@pytest.fixture(scope="module")
def tiny_at_96(tiny_egosynth, tmp_path_factory):
    """The tiny preset's takes (seed 0: scenes the stack never saw) prepared at the encoder's 96 px."""
    out = tmp_path_factory.mktemp("tiny96") / "prep"
    prepare_dataset(tiny_egosynth.raw, out, splits=("train", "test"), size=96, progress=False)
    return out


SHIPPED = {"encoder": recipe.SHIPPED_ENCODER, "head": recipe.SHIPPED_GR00T_MINI_HEAD,
           "egghand_mini": recipe.SHIPPED_MINI, "egghand_mini_random_head": recipe.SHIPPED_MINI_RANDOM_HEAD}


@pytest.mark.parametrize("key", sorted(SHIPPED))
def test_shipped_files_are_what_the_model_card_lists(key):
    folder = SHIPPED[key]
    listed = recipe.card_files(recipe.CARDS / recipe.CARD_NAMES[key])
    on_disk = sorted(p.name for p in folder.iterdir() if p.is_file())
    assert sorted(listed) == on_disk, f"{folder}: files differ from its card's Files table"
    for name, (size, digest) in listed.items():
        assert (folder / name).stat().st_size == size and file_sha256(folder / name) == digest, name
    assert sum(size for size, _ in listed.values()) <= 20 * 2**20  # at most 20 MB per model


def test_shipped_encoder_is_frozen_and_deterministic():
    enc = build_encoder("egovideo-mini")
    assert enc.frozen and not any(p.requires_grad for p in enc.parameters())
    x = torch.randint(0, 256, (2, 4, 3, 96, 96), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    prompts = ["Pick up the red cup and put it on the blue plate.", "Wipe the green box with the yellow sponge."]
    a, b = enc(x, prompts), enc(x, prompts)
    torch.testing.assert_close(a.video_tokens, b.video_tokens, rtol=0, atol=0)
    assert a.video_tokens.shape == (2, enc.num_video_tokens, enc.video_dim)


def test_shipped_encoder_finds_the_named_object_in_new_scenes(tiny_egosynth, tiny_at_96):
    """Its pointer must place the prompt's target far better than the targets' own spread (a constant's error)."""
    enc = build_encoder("egovideo-mini")
    ds = GroundedWindows(tiny_at_96, "test", tiny_egosynth.raw, stride=2)
    items = [ds[i] for i in range(len(ds))]
    heads = enc.predict(torch.stack([it["frames"] for it in items]), [it["task"] for it in items])
    target = torch.stack([it["target"] for it in items])
    err = (heads["target"] - target).norm(dim=-1).median()
    spread = (target - target.mean(0)).norm(dim=-1).median()
    assert err < 0.6 * spread, f"target error {err:.3f} m vs spread {spread:.3f} m"


def test_shipped_head_loads_every_tensor_into_cpu_small():
    cfg = EggHandConfig.preset("cpu-small", decoder_init="random")
    head = EggHandPolicy(cfg).action_head
    report = load_gr00t_action_head(head, recipe.SHIPPED_GR00T_MINI_HEAD)
    assert report.loaded and not report.missing and not report.mismatched


def test_cpu_small_is_egghand_with_the_shipped_stack():
    model = EggHandPolicy(EggHandConfig.preset("cpu-small"))
    assert model.config.encoder == "egovideo-mini" and model.config.decoder_init == "gr00t-mini"
    assert model.config.motion_mlp == 0 and model.encoder_frozen
    shard = recipe.SHIPPED_GR00T_MINI_HEAD / SHARD_NAME
    head = model.action_head.state_dict()
    for name, tensor in load_file(str(shard)).items():  # the head starts from the shipped weights, all of them
        torch.testing.assert_close(head[name.removeprefix(PREFIX)], tensor, rtol=0, atol=0)


def test_shipped_egghand_mini_beats_last_pose_on_tiny_test_windows(tiny_at_96, tmp_path):
    mini = EggHandPolicy.from_pretrained("egghand-mini")
    assert mini.config.motion_mlp == 0 and mini.encoder_frozen and mini.config.decoder_init == "gr00t-mini"
    res = evaluate(tiny_at_96, "test", mini, tmp_path / "eval", baselines=("LastPose",),
                   conventions=("egghand",), progress=False)
    m = res["metrics"]
    model_name = next(k for k in m if k != "LastPose")
    for k in ("ade", "mpjpe"):
        assert m[model_name]["egghand"]["all"][k] < m["LastPose"]["egghand"]["all"][k], k


def test_shipped_random_head_twin_is_egghand_mini_but_for_the_head_init():
    """Table 5's shipped pair: the same model, data and fine-tune, from a random instead of the pretrained head."""
    mini = EggHandPolicy.from_pretrained("egghand-mini")
    twin = EggHandPolicy.from_pretrained("egghand-mini-random-head")
    a, b = mini.config.to_dict(), twin.config.to_dict()
    assert {k for k in a if a[k] != b[k]} == {"decoder_init"} and b["decoder_init"] == "random"
    assert twin.encoder_frozen and twin.config.motion_mlp == 0
    # Its head is its own (not a copy of EggHand-mini's) and its frozen encoder is the same shipped one
    for name, tensor in twin.action_head.state_dict().items():
        if tensor.dtype.is_floating_point and tensor.numel() > 1000:
            assert not torch.equal(tensor, mini.action_head.state_dict()[name]), name
    for x, y in zip(twin.encoder.state_dict().values(), mini.encoder.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
