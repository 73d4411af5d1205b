"""Window sources: a prepared folder and its LeRobot export give the same windows, split by split."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from egghand_lib.data.lerobot_dataset import LeRobotWindowDataset
from egghand_lib.data.sources import lerobot_split_root, open_windows
from egghand_lib.data.windows import WindowDataset
from tests.fixtures.egosynth_lerobot import SPLITS, egosynth_both_formats


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    return egosynth_both_formats(tmp_path_factory.mktemp("sources"))


@pytest.mark.parametrize("split", SPLITS)
def test_lerobot_windows_equal_prepared_windows(both, split):
    _, prep, lerobot_dir = both
    ref = open_windows(split, prep_dir=prep)
    got = open_windows(split, lerobot_dir=lerobot_dir)
    assert isinstance(ref, WindowDataset) and isinstance(got, LeRobotWindowDataset)
    assert len(got) == len(ref) > 0
    for i in np.linspace(0, len(ref) - 1, 12).round().astype(int):
        a, b = got[i], ref[i]
        assert set(a) == set(b)
        for key, want in b.items():
            if isinstance(want, str):
                assert a[key] == want, key
            elif want.dtype.is_floating_point:
                torch.testing.assert_close(a[key], want, rtol=0, atol=1e-6, msg=key)
            else:
                assert torch.equal(a[key], want), key  # masks, indices and frames (lossless PNG) bit-exact
    # the training statistics travel with the export
    for name in ("state_min", "state_max", "action_min", "action_max"):
        assert torch.equal(getattr(got.stats, name), getattr(ref.stats, name)), name


def test_one_dataset_folder_serves_its_own_split(both, tmp_path):
    _, _, lerobot_dir = both
    assert lerobot_split_root(lerobot_dir / "val", "val") == lerobot_dir / "val"  # a dataset root itself
    assert lerobot_split_root(lerobot_dir, "val") == lerobot_dir / "val"
    with pytest.raises(FileNotFoundError, match=r"split\(s\) \['val'\], not 'train'"):
        lerobot_split_root(lerobot_dir / "val", "train")
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copytree(lerobot_dir / "test", empty / "other")
    with pytest.raises(FileNotFoundError, match=r"no LeRobot dataset for split 'train'.*\['other'\]"):
        lerobot_split_root(empty, "train")
    with pytest.raises(FileNotFoundError, match="not found"):
        lerobot_split_root(tmp_path / "missing", "train")
    with pytest.raises(ValueError, match="exactly one"):
        open_windows("train")
