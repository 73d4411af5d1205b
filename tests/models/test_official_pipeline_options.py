"""The options that reproduce the official EggHand code (docs/conventions.md, "Differences"): its state input,
its constant-dimension normalisation, and the whole "egghand-code" pipeline on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egghand_lib.batch import OBS_OFFSETS, collate_windows
from egghand_lib.data.statistics import compute_stats
from egghand_lib.data.windows import WindowDataset
from egghand_lib.models.egghand import EggHandConfig, EggHandPolicy
from egghand_lib.normalization import MinMaxNormalizer, minmax_normalize, minmax_unnormalize
from egghand_lib.training import TRAIN_CONFIGS, TrainConfig, train
from tests.fixtures.episodes import make_episodes
from tests.fixtures.tiny_models import TinyEncoder

OFFICIAL = {"loss_variant": "egghand-code", "loss_space": "normalised", "state_input": "egghand-code",
            "norm_constant": "minus-one", "anchor": "none", "state_offsets": False, "motion_mlp": 0}


@pytest.fixture(scope="module")
def data():
    episodes = make_episodes(2, num_frames=30, size=8)
    return episodes, WindowDataset.from_episodes(episodes, stats=compute_stats(episodes))


def test_official_state_is_canonical_joints_then_raw_world_camera_with_only_the_right_hand_normalised(data):
    episodes, ds = data
    model = EggHandPolicy(EggHandConfig.preset("tiny", **OFFICIAL), ds.stats, encoder=TinyEncoder())
    assert model.state_proj.in_features == 138  # no validity flags: the official 138 -> 64 adapter
    idx = [3, 25, 40]
    batch = collate_windows([ds[i] for i in idx])
    x = model.state_inputs(batch)
    assert x.shape == (3, 20, 138)
    joints = torch.where(batch["past_valid"][..., None], batch["past_joints"], torch.zeros(()))
    flat = joints.reshape(3, 20, 126)
    lo, hi = ds.stats.state_min, ds.stats.state_max
    torch.testing.assert_close(x[..., :63], minmax_normalize(flat[..., :63], lo[:63], hi[:63], "minus-one"))
    torch.testing.assert_close(x[..., 63:126], flat[..., 63:])  # the left hand stays in metres
    # the camera numbers are the episode's own world -> camera matrices of the observed frames
    for b, i in enumerate(idx):
        ep = ds.episode_of(i)
        t = int(np.nonzero(ep.frame_numbers == int(ds[i]["frame_index"]))[0][0])
        frames = np.clip(t + np.asarray(OBS_OFFSETS), 0, len(ep) - 1)
        expect = torch.as_tensor(ep.extrinsics[frames].reshape(20, 12))
        torch.testing.assert_close(x[b, :, 126:], expect, atol=1e-5, rtol=1e-5)
    # the toolkit's default state is unchanged: normalised joints + canonical camera + 42 flags
    default = EggHandPolicy(EggHandConfig.preset("tiny", anchor="none", state_offsets=False, motion_mlp=0),
                            ds.stats, encoder=TinyEncoder())
    y = default.state_inputs(batch)
    assert y.shape == (3, 20, 180)
    torch.testing.assert_close(y[..., 138:], batch["past_valid"].float())


def test_constant_dimension_conventions():
    lo, hi = torch.tensor([0.0, 2.0]), torch.tensor([4.0, 2.0])  # the second dimension is constant
    x = torch.tensor([[1.0, 2.0], [3.0, 2.5]])
    zero, minus = minmax_normalize(x, lo, hi), minmax_normalize(x, lo, hi, "minus-one")
    torch.testing.assert_close(zero[:, 0], minus[:, 0])  # identical wherever the range is not 0
    torch.testing.assert_close(zero[:, 1], torch.tensor([0.0, 0.0]))  # toolkit: a constant maps to 0
    torch.testing.assert_close(minus[:, 1], torch.tensor([-1.0, 0.0]))  # official: 2 (x - min) / 1 - 1
    torch.testing.assert_close(minmax_unnormalize(minus, lo, hi, "minus-one"), x)
    with pytest.raises(ValueError, match="constant"):
        MinMaxNormalizer(constant="one")


def test_the_official_options_train_a_tiny_model(tmp_path, data):
    episodes, _ = data
    ds = WindowDataset.from_episodes(episodes, protocol="egghand-code", edges="pad", stats=compute_stats(
        episodes, protocol="egghand-code", edges="pad"))
    cfg = TrainConfig.named("tiny", protocol="egghand-code", edges="pad", max_steps=2, eval_split=None,
                            model_overrides={**TRAIN_CONFIGS["tiny"].model_overrides, **OFFICIAL})
    result = train(cfg, tmp_path / "run", train_dataset=ds, progress=False)
    assert result.finished and np.isfinite(result.history[-1]["loss"])
    assert result.model.config.state_input == "egghand-code" and result.model.normalizer.constant == "minus-one"
    # the named config that reproduces the official pipeline carries the same options
    code = TrainConfig.named("egghand-code")
    assert (code.protocol, code.edges, code.warmup_ratio) == ("egghand-code", "pad", 0.01)
    assert {k: code.model_overrides[k] for k in ("loss_variant", "loss_space", "state_input", "norm_constant")} == {
        k: OFFICIAL[k] for k in ("loss_variant", "loss_space", "state_input", "norm_constant")}
    with pytest.raises(ValueError, match="state_offsets"):
        EggHandConfig.preset("tiny", state_input="egghand-code", state_offsets=True)
