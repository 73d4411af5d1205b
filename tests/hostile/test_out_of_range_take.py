"""The issue's normalisation case: camera-pose dimensions spanning micrometres in the training split (level
cameras) make a pitched test take normalise to ~10^5, and the model forecast metres off. Normalised states are
clipped (EggHandConfig.state_clip), evaluation says how far out of range the split is, and the forecast is
sane again."""

from __future__ import annotations

import numpy as np
import pytest

from egghand_lib.data.prepare import prepare_dataset
from egghand_lib.data.prepared import read_stats
from egghand_lib.evaluation import evaluate
from egghand_lib.models.egghand import EggHandPolicy
from egghand_lib.training import TrainConfig, train
from tests.fixtures.egoexo4d_takes import write_dataset
from tests.fixtures.hostile import level_or_pitched_take


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("out_of_range")
    takes = [level_or_pitched_take("A", "train", jitter=1e-6, seed=1),
             level_or_pitched_take("B", "train", yaw0=1.0, turn=-0.02, jitter=1e-6, seed=2),
             level_or_pitched_take("C", "train", yaw0=2.0, speed=0.03, jitter=1e-6, seed=3),
             level_or_pitched_take("T", "test", yaw0=0.5, pitch=-0.2)]  # looks 11 degrees down
    raw = write_dataset(root / "raw", takes)
    prep = root / "prep"
    prepare_dataset(raw, prep, splits=("train", "test"), size=32, progress=False)
    train(TrainConfig.named("tiny", max_steps=30, eval_split=None), root / "run", prep_dir=prep, progress=False)
    return prep, root / "run"


def test_near_constant_dimension_no_longer_sends_the_forecast_metres_off(trained, capsys):
    prep, run = trained
    stats = read_stats(prep)
    half = ((stats.state_max - stats.state_min) / 2).numpy()
    cam = half[126:]
    assert ((cam > 0) & (cam < 1e-5)).sum() >= 2  # the precondition: camera dimensions spanning micrometres

    unclipped = evaluate(prep, "test", EggHandPolicy.from_pretrained(run, state_clip=None), progress=False)
    capsys.readouterr()
    res = evaluate(prep, "test", run, progress=False)
    warning = capsys.readouterr().out
    ade = {m: res["metrics"][m]["egghand"]["all"]["ade"] for m in res["methods"]}
    ade_unclipped = unclipped["metrics"]["EggHand"]["egghand"]["all"]["ade"]
    assert ade_unclipped > 1.0  # what the issue saw (6.1 m there): metres off
    assert ade["EggHand"] < 0.1 and ade["EggHand"] < ade_unclipped / 100 and ade["EggHand"] < ade["Static"]
    # ... and the evaluation says so.
    outside = res["state_outside_training_range"]
    assert outside["clip"] == 1.5 and outside["worst_value"] > 1e3 and 0 < outside["fraction_beyond"] < 1
    assert "[evaluate] warning:" in warning and "beyond the training range" in warning
    assert 126 <= outside["worst_dim"] < 138  # a camera-pose number
    assert np.isfinite(ade["EggHand"])


def test_in_range_states_are_unchanged_by_the_clip(trained):
    """The training split's own states lie in [-1, 1]: clipping them changes nothing."""
    prep, run = trained
    clipped = evaluate(prep, "train", run, progress=False)["metrics"]["EggHand"]["egghand"]["all"]
    plain = evaluate(prep, "train", EggHandPolicy.from_pretrained(run, state_clip=None),
                     progress=False)["metrics"]["EggHand"]["egghand"]["all"]
    assert clipped == pytest.approx(plain, rel=1e-6)
