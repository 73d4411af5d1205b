"""EggHand as the lerobot policy type "egghand": lerobot-train trains it, its checkpoint loads into EggHandPolicy,
and the policy sees the very windows of the toolkit's datasets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from lerobot.datasets.factory import resolve_delta_timestamps
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.policies.factory import make_policy, make_pre_post_processors

from egghand_lib.batch import collate_windows
from egghand_lib.data.lerobot_dataset import IMAGE, STATE, VALID, window_offsets
from egghand_lib.data.sources import open_windows
from egghand_lib.geometry import invert_rigid, transform_points
from egghand_lib.models.egghand import EggHandPolicy
from egghand_lib.models.lerobot_policy import EggHandLeRobotConfig, EggHandLeRobotPolicy
from egghand_lib.training import TINY_ENCODER
from tests.fixtures.egosynth_lerobot import egosynth_both_formats
from tests.fixtures.learnable_episodes import input_dependent, single_thread

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "plugins" / "lerobot_policy_egghand"
TINY = {"preset": "tiny", "model_overrides": {"encoder_kwargs": TINY_ENCODER}}


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    return egosynth_both_formats(tmp_path_factory.mktemp("lerobot-policy"))


@pytest.fixture(scope="module")
def setup(both):
    """The policy made by lerobot's own factories from the training export, a batch of its windows and the
    prepared windows they must equal."""
    _, prep, lerobot_dir = both
    root = lerobot_dir / "train"
    cfg = EggHandLeRobotConfig(device="cpu", **TINY)
    meta = LeRobotDataset("local/egosynth", root=root).meta
    torch.manual_seed(0)
    policy = make_policy(cfg, ds_meta=meta)
    assert isinstance(policy, EggHandLeRobotPolicy)
    input_dependent(policy.model)
    pre, post = make_pre_post_processors(cfg, dataset_stats=meta.stats)
    ds = LeRobotDataset("local/egosynth", root=root, delta_timestamps=resolve_delta_timestamps(cfg, meta))
    idx = [0, 7, 19, 33, 50, len(ds) - 1]
    batch = pre(torch.utils.data.default_collate([ds[i] for i in idx]))
    ref = open_windows("train", prep_dir=prep)
    return policy, pre, post, ds, idx, batch, ref


def test_policy_builds_the_prepared_windows(setup):
    policy, _, _, _, idx, batch, ref = setup
    want = collate_windows([ref[i] for i in idx])
    got = policy.windows(batch)
    for key in ("past_joints", "past_valid", "past_extrinsics", "future_joints", "future_valid", "canonical_T"):
        if got[key].dtype == torch.bool:
            assert torch.equal(got[key], want[key]), key
        else:
            torch.testing.assert_close(got[key], want[key], rtol=0, atol=1e-6, msg=key)
    assert torch.equal(got["frames"], want["frames"]) and got["task"] == want["task"]
    # the statistics are the export's (meta/egghand_stats.json), those of the prepared folder
    assert torch.equal(policy.model.normalizer.state_min, ref.stats.state_min)


def test_forward_and_forecasts_in_world_coordinates(setup):
    policy, _, post, _, idx, batch, ref = setup
    loss, parts = policy.forward(batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and set(parts) >= {"abs", "rel", "pair"}
    loss.backward()
    assert policy.model.motion_mlp[-1].weight.grad.abs().sum() > 0
    windows = collate_windows([ref[i] for i in idx])
    canonical = policy.model.forecast(windows)
    world = transform_points(invert_rigid(windows["canonical_T"])[:, None], canonical)
    chunk = post(policy.predict_action_chunk(batch))
    assert chunk.shape == (len(idx), 10, 126) and chunk.device.type == "cpu"
    torch.testing.assert_close(chunk.view(len(idx), 10, 42, 3), world, rtol=0, atol=1e-5)
    torch.testing.assert_close(policy.select_action(batch), chunk[:, 0], rtol=0, atol=0)


def test_select_action_on_single_frames_streams_the_same_forecasts(setup):
    """Frames one at a time (as from a live camera): the policy keeps the history and forecasts what it
    forecasts from the dataset's windows, the padded first windows of an episode included."""
    policy, pre, _, ds, _, _, _ = setup
    now = window_offsets("future").index(0)  # offset 0 of the window: the frame itself
    policy.reset()
    with single_thread():
        for t in range(25):  # the first episode's first 25 frames
            item = ds[t]
            assert int(item["episode_index"]) == 0
            frame = {STATE: item[STATE][now], VALID: item[VALID][now], IMAGE: item[IMAGE][now], "task": item["task"]}
            action = policy.select_action(pre(frame))
            want = policy.predict_action_chunk(pre(torch.utils.data.default_collate([item])))[:, 0]
            torch.testing.assert_close(action, want, rtol=0, atol=2e-5, msg=f"frame {t}")
    policy.reset()
    assert not policy._streams


def test_lerobot_train_runs_3_steps_and_the_checkpoint_loads_into_egghandpolicy(both, tmp_path):
    """The real command, as installed: the plugin distribution found by lerobot's plugin discovery."""
    _, _, lerobot_dir = both
    site = tmp_path / "site"
    src = tmp_path / "plugin-src"
    shutil.copytree(PLUGIN, src)  # pip builds in the source folder: keep the repository clean
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "--target", str(site), str(src)], check=True, capture_output=True, text=True, timeout=300)
    assert (site / "lerobot_policy_egghand-0.1.0.dist-info").is_dir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    out = tmp_path / "run"
    cmd = [str(Path(sys.executable).parent / "lerobot-train"), "--policy.type=egghand", "--policy.preset=tiny",
           f"--policy.model_overrides={json.dumps({'encoder_kwargs': TINY_ENCODER})}", "--policy.device=cpu",
           "--dataset.repo_id=local/egosynth", f"--dataset.root={lerobot_dir / 'train'}", f"--output_dir={out}",
           "--steps=3", "--batch_size=4", "--save_freq=3", "--log_freq=1", "--num_workers=0", "--wandb.enable=false"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "step:3 " in proc.stdout + proc.stderr
    ckpt = out / "checkpoints" / "000003" / "pretrained_model"
    assert json.loads((ckpt / "config.json").read_text())["type"] == "egghand"
    model = EggHandPolicy.from_pretrained(ckpt)
    assert model.config.preset_name == "tiny" and model.config.encoder_kwargs == TINY_ENCODER
    assert model.stats is not None and torch.isfinite(model.normalizer.state_min).all()
    again = EggHandLeRobotPolicy.from_pretrained(ckpt)  # and lerobot's own loader
    a, b = model.state_dict(), again.model.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    # trained: the output layers left their zero initialisation
    assert model.motion_mlp[-1].weight.abs().sum() > 0
    window = collate_windows([open_windows("train", lerobot_dir=lerobot_dir)[30]])
    assert np.isfinite(model.forecast(window).numpy()).all()
