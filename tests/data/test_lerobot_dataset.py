"""LeRobot export / read-back of EggHand windows (and the training statistics that travel with them)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from egghand_lib.batch import VIDEO_OFFSETS, collate_windows
from egghand_lib.data import lerobot_dataset as L
from egghand_lib.data.prepared import write_stats
from egghand_lib.data.statistics import compute_stats
from egghand_lib.data.windows import WindowDataset
from tests.fixtures.episodes import make_episode, make_episodes


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    episodes = make_episodes(2, num_frames=30, size=32)
    root = tmp_path_factory.mktemp("lr") / "egosynth"
    ds = L.export_lerobot(episodes, root, repo_id="egghand/test", image_writer_threads=2)  # PNGs in threads
    return episodes, root, ds


def test_export_layout_and_metadata(exported):
    episodes, root, ds = exported
    assert ds.meta.total_episodes == 2
    assert ds.meta.total_frames == sum(len(e) for e in episodes)
    assert ds.meta.features[L.IMAGE]["dtype"] == "image"  # PNG in parquet, no video
    assert not list(root.rglob("*.mp4"))
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"].startswith("v3")
    side = L.read_sidecar(root)
    assert [e["take_uid"] for e in side["episodes"]] == [e.take_uid for e in episodes]
    assert side["episodes"][1]["scenario"] == episodes[1].scenario
    np.testing.assert_allclose(side["episodes"][0]["intrinsics"], episodes[0].intrinsics)
    # raw frames: world state, invalid joints stored as 0, validity and frame numbers
    item = ds[len(episodes[0]) + 3]
    ep = episodes[1]
    np.testing.assert_array_equal(item[L.VALID].numpy(), ep.valid[3])
    np.testing.assert_array_equal(item[L.STATE][:126].numpy(), np.where(ep.valid[3][:, None], ep.joints[3], 0).ravel())
    np.testing.assert_array_equal(item[L.STATE][126:].numpy(), ep.extrinsics[3].ravel())
    assert int(item[L.FRAME_NUMBER]) == ep.frame_numbers[3]
    assert item["task"] == ep.task


@pytest.mark.parametrize("protocol", ["future", "egghand-code"])
def test_round_trip_exact(exported, protocol):
    """Episodes -> WindowDataset windows  ==  Episodes -> LeRobot -> LeRobotWindowDataset windows."""
    episodes, root, _ = exported
    ref = WindowDataset.from_episodes(episodes, protocol=protocol)
    wds = L.LeRobotWindowDataset(root, repo_id="egghand/test", protocol=protocol)
    assert len(wds) == len(ref) == sum(len(e) for e in episodes)
    n_pad = 0
    for i in range(len(ref)):
        got, want = wds[i], ref[i]
        assert set(got) == set(want)
        for key, w in want.items():
            g = got[key]
            if isinstance(w, str):
                assert g == w, key
            elif w.dtype.is_floating_point:
                assert g.dtype == w.dtype and g.shape == w.shape, key
                torch.testing.assert_close(g, w, rtol=0, atol=1e-6, equal_nan=True, msg=key)
            else:
                assert g.dtype == w.dtype, key
                assert torch.equal(g, w), key  # masks, indices and (PNG, lossless) frames bit-exact
        n_pad += int((~want["future_valid"]).all(-1).sum())
    assert n_pad > 0  # windows at the episode end have padded (invalid) targets
    batch = collate_windows([wds[0], wds[40]])
    assert batch["past_joints"].shape == (2, 20, 42, 3) and batch["frames"].shape == (2, 4, 3, 32, 32)


def test_frames_and_offsets_against_episode(exported):
    """Independent of make_windows: the video frames are the episode's frames at t-18, t-12, t-6, t (clamped)."""
    episodes, root, _ = exported
    wds = L.LeRobotWindowDataset(root, repo_id="egghand/test")
    ep = episodes[0]
    for t in (0, 7, 25):
        item = wds[t]
        idx = [min(max(t + k, 0), len(ep) - 1) for k in VIDEO_OFFSETS]
        assert torch.equal(item["frames"], torch.from_numpy(ep.frames[idx]).permute(0, 3, 1, 2))
        assert int(item["frame_index"]) == ep.frame_numbers[t]
        # offsets -19..t-1 before the episode start are padding: joints invalid
        n_before = max(0, 19 - t)
        assert not item["past_valid"][:n_before].any()
        np.testing.assert_array_equal(item["past_valid"][n_before:].numpy(), ep.valid[max(0, t - 19): t + 1])


def test_episodes_and_arrays_back(exported):
    """Column-wise read-back: the exported Episodes and the vectorised window arrays."""
    episodes, root, _ = exported
    wds = L.LeRobotWindowDataset(root, repo_id="egghand/test", protocol="egghand-code")
    back = wds.to_episodes(frames=True)
    assert len(back) == len(episodes)
    for a, b in zip(back, episodes, strict=True):
        assert (a.take_uid, a.task, a.scenario, a.episode_index) == (b.take_uid, b.task, b.scenario, b.episode_index)
        np.testing.assert_array_equal(a.frame_numbers, b.frame_numbers)
        np.testing.assert_array_equal(a.valid, b.valid)
        np.testing.assert_array_equal(a.joints, b.joints)  # float32 stored exactly; invalid joints are 0 in both
        np.testing.assert_array_equal(a.extrinsics, b.extrinsics)
        np.testing.assert_array_equal(a.frames, b.frames)
    got, want = wds.arrays(), WindowDataset.from_episodes(episodes, protocol="egghand-code").arrays()
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_windows_without_frames(exported):
    _, root, _ = exported
    wds = L.LeRobotWindowDataset(root, repo_id="egghand/test", load_frames=False)
    full = L.LeRobotWindowDataset(root, repo_id="egghand/test")
    a, b = wds[7], full[7]
    assert "frames" not in a
    for k in ("past_joints", "future_valid", "canonical_T"):
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_export_refuses_existing_and_bad_input(tmp_path, exported):
    _, root, _ = exported
    with pytest.raises(FileExistsError, match="already exists"):
        L.export_lerobot(make_episodes(1), root)
    with pytest.raises(ValueError, match="empty"):
        L.export_lerobot([], tmp_path / "a")
    bad = make_episode(1, num_frames=5)
    bad.joints = bad.joints[:, :21]
    with pytest.raises(ValueError, match="joints has shape"):
        L.export_lerobot([bad], tmp_path / "b")
    assert not (tmp_path / "b").exists()  # nothing half-written
    with pytest.raises(FileNotFoundError, match="not an EggHand LeRobot export"):
        L.read_sidecar(tmp_path)


def test_export_from_prepared_matches_window_dataset(tmp_path):
    from tests.fixtures.episodes import write_prepared

    episodes = make_episodes(2, num_frames=12, size=16)
    prep = write_prepared(tmp_path / "prep", episodes)
    write_stats(prep, compute_stats(episodes))
    ref = WindowDataset(prep, "train")
    L.export_lerobot_from_prepared(prep, "train", tmp_path / "lr", repo_id="egghand/prep", progress=False)
    wds = L.LeRobotWindowDataset(tmp_path / "lr", repo_id="egghand/prep")
    assert len(wds) == len(ref) == 12 + 7
    for i in (0, 11, 12, 18):
        got, want = wds[i], ref[i]
        for key in ("frames", "past_valid", "future_valid", "frame_index", "episode_index"):
            assert torch.equal(got[key], want[key]), key
        torch.testing.assert_close(got["future_joints"], want["future_joints"], rtol=0, atol=1e-6)
        assert got["take_uid"] == want["take_uid"]
    for a in ("state_min", "state_max", "action_min", "action_max"):  # the prepared stats travel along
        torch.testing.assert_close(getattr(wds.stats, a), getattr(ref.stats, a), rtol=0, atol=0)
    fp = wds.fingerprint()
    assert fp["num_windows"] == 19
    assert fp == L.LeRobotWindowDataset(tmp_path / "lr", repo_id="egghand/prep", load_frames=False).fingerprint()
    # a re-run with the same prepared data keeps the export; changed data needs overwrite
    stamp = (tmp_path / "lr" / "meta" / "info.json").stat().st_mtime_ns
    L.export_lerobot_from_prepared(prep, "train", tmp_path / "lr", progress=False)
    assert (tmp_path / "lr" / "meta" / "info.json").stat().st_mtime_ns == stamp
    write_prepared(prep, episodes[:1])
    with pytest.raises(FileExistsError, match="already exists"):
        L.export_lerobot_from_prepared(prep, "train", tmp_path / "lr", progress=False)
    L.export_lerobot_from_prepared(prep, "train", tmp_path / "lr", progress=False, overwrite=True)
    assert len(L.LeRobotWindowDataset(tmp_path / "lr", load_frames=False)) == 12
    with pytest.raises(FileNotFoundError, match="no prepared split 'val'"):
        L.export_lerobot_from_prepared(prep, "val", tmp_path / "lr2")


def test_resumable_export_in_parts(tmp_path, monkeypatch):
    """A long export is written in parts; a re-run after a failure redoes only the missing parts."""
    import copy

    episodes = make_episodes(3, num_frames=12, size=8)  # 12, 7 and 2 frames
    broken = copy.copy(episodes[2])
    broken.frames = None  # fails in the last part, after two parts are on disk
    root, work = tmp_path / "lr", tmp_path / ".lr.export"
    with pytest.raises(ValueError, match="frames were not decoded"):
        L.export_lerobot(episodes[:2] + [broken], root, source={"prep": "x"}, part_size=1)
    assert not root.exists()
    assert (work / "part_00001" / "meta" / "egghand.json").is_file()
    assert not (work / "part_00002").exists()
    written = []
    real = L._add_episode
    monkeypatch.setattr(L, "_add_episode", lambda ds, ep: (written.append(ep.take_uid), real(ds, ep)))
    L.export_lerobot(episodes, root, source={"prep": "x"}, part_size=1, stats=compute_stats(episodes))
    assert written == [episodes[2].take_uid]  # parts 0 and 1 were reused
    assert not work.exists()
    ref = WindowDataset.from_episodes(episodes)
    wds = L.LeRobotWindowDataset(root)
    assert len(wds) == len(ref) == 21 and wds.stats is not None
    for i in range(len(ref)):
        got, want = wds[i], ref[i]
        for key, w in want.items():
            if isinstance(w, str):
                assert got[key] == w, key
            else:
                torch.testing.assert_close(got[key], w, rtol=0, atol=1e-6, equal_nan=True, msg=key)


def test_up_axis_recorded_and_protocol_checked(tmp_path):
    episodes = make_episodes(1, num_frames=6, size=8)
    L.export_lerobot(episodes, tmp_path / "lr", up=(0.0, 1.0, 0.0))
    wds = L.LeRobotWindowDataset(tmp_path / "lr", load_frames=False)
    assert wds.up == (0.0, 1.0, 0.0)
    ref = WindowDataset.from_episodes(episodes, up=(0.0, 1.0, 0.0))
    torch.testing.assert_close(wds[3]["canonical_T"], ref[3]["canonical_T"], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="protocol"):
        L.LeRobotWindowDataset(tmp_path / "lr", protocol="past")


def test_never_reaches_the_hub(tmp_path, monkeypatch):
    """Export and read-back work from the local folder alone: every hub entry point of lerobot fails here."""
    import lerobot.datasets.lerobot_dataset as lds

    def no_hub(*args, **kwargs):
        raise AssertionError("lerobot tried to reach the Hugging Face hub")

    for name in ("snapshot_download", "get_safe_version", "HfApi"):
        monkeypatch.setattr(lds, name, no_hub)
    L.export_lerobot(make_episodes(1, num_frames=5, size=8), tmp_path / "lr")
    assert L.LeRobotWindowDataset(tmp_path / "lr")[4]["frames"].shape == (4, 3, 8, 8)
