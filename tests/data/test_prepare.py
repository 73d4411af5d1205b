"""`egghand prepare` end to end on hand-made raw folders: outputs, malformed inputs, resume, paper splits."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from egghand_lib.cli import main as cli_main
from egghand_lib.data import prepare as prep_mod
from egghand_lib.data.episodes import load_egghand_split, read_episodes
from egghand_lib.data.prepare import prepare_dataset
from egghand_lib.data.prepared import load_split_episodes, read_manifest
from egghand_lib.data.validation import ValidationError
from egghand_lib.data.windows import WindowDataset
from egghand_lib.normalization import load_stats
from tests.fixtures.egoexo4d_takes import camera_path_file, decode_color, hand_path, make_take, write_dataset

A = "aaaaaaaa-0000-4000-8000-000000000001"
B = "aaaaaaaa-0000-4000-8000-000000000002"
C = "aaaaaaaa-0000-4000-8000-000000000003"
SIZE = 32  # small frames keep the tests fast; the default (224) is exercised once below


def takes():
    return [make_take(A, "train", start=30, n=26, speed=0.05, turn=0.02),
            make_take(B, "train", start=1, n=22, yaw0=1.0),
            make_take(C, "val", start=6, n=21)]


def stored_frame_ids(ep):
    return [decode_color(f[f.shape[0] // 2, f.shape[1] // 2]) for f in ep.frames]


def test_prepare_writes_episodes_stats_report_manifest(tmp_path):
    raw = write_dataset(tmp_path / "raw", takes())
    out = tmp_path / "prep"
    m = prepare_dataset(raw, out, progress=False)  # default size 224
    assert m["splits"]["train"]["num_episodes"] == 2 and m["splits"]["train"]["num_windows"] == 48
    assert m["splits"]["val"]["num_windows"] == 21 and m["last_run"]["written"] == 3
    for name in ("manifest.json", "stats.json", "report.json", "report.md", "settings.json"):
        assert (out / name).is_file()
    assert sorted(p.name for p in (out / "episodes" / "train").iterdir()) == [
        f"{A}_0000030.safetensors", f"{B}_0000001.safetensors"]
    eps = load_split_episodes(out, "train")
    ep = next(e for e in eps if e.take_uid == A)
    assert ep.frames.shape == (26, 224, 224, 3) and ep.frames.dtype == np.uint8
    assert isinstance(ep.frames, np.memmap)
    assert stored_frame_ids(ep) == ep.frame_numbers.tolist()  # the right video frames were decoded
    assert ep.frame_numbers.tolist() == list(range(30, 30 + 3 * 26, 3)) and ep.valid.all()
    assert ep.task == "Cooking Noodles" and ep.split == "train"
    np.testing.assert_allclose(ep.intrinsics[:2, :2], np.diag([40 * 299 / 64, 40 * 224 / 48]), rtol=1e-6)
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["takes_ok"] == 3 and report["summary"]["counts"] == {}
    # stats.json: training split only, loads as NormStats
    stats = load_stats(out / "stats.json")
    ds = WindowDataset(out, "train")
    arr = ds.arrays()
    np.testing.assert_allclose(stats.action_min[:3], arr["future_joints"][arr["future_valid"][..., 0]][:, 0].min(0),
                               atol=1e-6)
    assert ds.stats is not None and len(ds) == 48
    item = ds[30]
    assert item["frames"].shape == (4, 3, 224, 224)
    # pickling (DataLoader workers) sends file paths, not the memory-mapped frames
    blob = pickle.dumps(ds)
    assert len(blob) < 2_000_000 < 48 * 224 * 224 * 3
    ds2 = pickle.loads(blob)
    assert torch.equal(ds2[30]["frames"], item["frames"]) and torch.equal(ds2[30]["past_joints"], item["past_joints"])
    assert ds.episode_of(30).take_uid == item["take_uid"]
    # the in-memory path (no prepared folder) gives the same episodes
    mem = read_episodes(raw, "val")
    disk = load_split_episodes(out, "val")
    assert [e.key for e in mem] == [e.key for e in disk]
    np.testing.assert_array_equal(mem[0].frames, disk[0].frames)
    np.testing.assert_array_equal(mem[0].extrinsics, disk[0].extrinsics)


@pytest.mark.parametrize("variant", ["truncated_json", "wrong_shape", "not_in_takes_json", "missing_video",
                                     "short_video", "nan_joint", "missing_camera_frames"])
def test_malformed_inputs_lenient_report_and_strict_error(tmp_path, variant):
    tks = takes()
    bad = tks[0]
    unlisted = ()
    if variant == "not_in_takes_json":
        unlisted = (A,)
    if variant == "missing_camera_frames":
        bad.camera_frames = np.delete(bad.frames, [5])
    if variant == "short_video":  # the video ends one frame before the last annotated one
        bad.video_frames = int(bad.frames.max())
    raw = write_dataset(tmp_path / "raw", tks, unlisted=unlisted)
    if variant == "truncated_json":
        text = hand_path(raw, bad).read_text()
        hand_path(raw, bad).write_text(text[: len(text) // 2])
    elif variant == "wrong_shape":
        obj = json.loads(camera_path_file(raw, bad).read_text())
        obj["aria01"]["camera_extrinsics"]["33"] = [[1, 0, 0], [0, 1, 0]]
        camera_path_file(raw, bad).write_text(json.dumps(obj))
    elif variant == "missing_video":
        (raw / "takes" / bad.take_name / "frame_aligned_videos" / "aria01_214-1.mp4").unlink()
    elif variant == "nan_joint":
        obj = json.loads(hand_path(raw, bad).read_text())
        obj["36"][0]["annotation3D"]["right_wrist"]["x"] = float("nan")
        hand_path(raw, bad).write_text(json.dumps(obj))
    expect = {  # kind, file named, frame named, take dropped?
        "truncated_json": ("file_error", f"{A}.json", None, True),
        "wrong_shape": ("file_error", f"{A}.json", None, True),
        "not_in_takes_json": ("take_not_in_takes_json", "takes.json", None, True),
        "missing_video": ("missing_video", "aria01_214-1.mp4", None, True),
        "short_video": ("missing_video", "aria01_214-1.mp4", None, True),  # found at planning, before any output
        "nan_joint": ("nan_joint", f"{A}.json", 36, False),
        "missing_camera_frames": ("missing_camera_pose", f"camera_pose/{A}.json", 45, False),
    }[variant]
    kind, file, frame, dropped = expect

    # strict: the documented error, naming file (and frame), and no output at all
    out_s = tmp_path / "strict"
    with pytest.raises(ValidationError) as err:
        prepare_dataset(raw, out_s, strict=True, size=SIZE, progress=False)
    assert kind in str(err.value) and file in str(err.value)
    if frame is not None:
        assert f"frame {frame}" in str(err.value)
    assert not out_s.exists()

    # lenient: the report entry, the bad data dropped, everything else prepared
    out = tmp_path / "lenient"
    m = prepare_dataset(raw, out, size=SIZE, progress=False)
    rep = json.loads((out / "report.json").read_text())
    take_rep = rep["takes"][A]
    assert take_rep["counts"].get(kind) == 1
    assert file in json.dumps(take_rep["examples"][kind])
    assert (take_rep["status"] == "dropped") == dropped
    train_takes = {e.take_uid for e in load_split_episodes(out, "train")}
    assert (A not in train_takes) == dropped and B in train_takes
    assert m["splits"]["val"]["num_windows"] == 21
    if variant == "missing_camera_frames":  # frame 45 dropped: the take splits into two episodes
        assert m["splits"]["train"]["num_episodes"] == 3 and m["splits"]["train"]["num_windows"] == 22 + 25
    assert kind in (out / "report.md").read_text()
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("*.partial"))


def test_interrupted_prepare_resumes(tmp_path, monkeypatch):
    raw = write_dataset(tmp_path / "raw", takes())
    out = tmp_path / "prep"
    real = prep_mod.load_episode_frames
    calls = []

    def flaky(ep, size):
        calls.append(ep.key)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while decoding the second episode
        return real(ep, size)

    monkeypatch.setattr(prep_mod, "load_episode_frames", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(raw, out, size=SIZE, progress=False)
    assert not (out / "manifest.json").exists()  # not complete, not announced as such
    assert len(list((out / "episodes").rglob("*.safetensors"))) == 1
    with pytest.raises(FileNotFoundError, match="manifest"):
        WindowDataset(out, "train")
    monkeypatch.setattr(prep_mod, "load_episode_frames", real)
    m = prepare_dataset(raw, out, size=SIZE, progress=False)
    assert m["last_run"] == {"written": 2, "skipped": 1, "removed_stale": 0}
    before = (out / "manifest.json").read_bytes()
    m2 = prepare_dataset(raw, out, size=SIZE, progress=False)  # complete: nothing to do
    assert m2["last_run"] == {"written": 0, "skipped": 3, "removed_stale": 0}
    assert (out / "manifest.json").read_bytes() == before  # deterministic: feature caches stay valid
    # only one split again: the other stays listed, statistics stay
    m_val = prepare_dataset(raw, out, splits=["val"], size=SIZE, progress=False)
    assert set(m_val["splits"]) == {"train", "val"} and m_val["last_run"]["skipped"] == 1
    assert (out / "manifest.json").read_bytes() == before and (out / "stats.json").is_file()
    fresh = tmp_path / "fresh"
    prepare_dataset(raw, fresh, size=SIZE, progress=False)
    for split in ("train", "val"):
        for a, b in zip(load_split_episodes(out, split), load_split_episodes(fresh, split), strict=True):
            assert a.key == b.key
            np.testing.assert_array_equal(a.frames, b.frames)
            np.testing.assert_array_equal(a.joints, b.joints)
    assert json.loads((out / "stats.json").read_text()) == json.loads((fresh / "stats.json").read_text())
    # the raw annotations of one take change: only its episode is rewritten, with the new values
    obj = json.loads(hand_path(raw, takes()[1]).read_text())
    obj["4"][0]["annotation3D"]["right_wrist"]["z"] += 0.01
    hand_path(raw, takes()[1]).write_text(json.dumps(obj))
    m4 = prepare_dataset(raw, out, size=SIZE, progress=False)
    assert m4["last_run"] == {"written": 1, "skipped": 2, "removed_stale": 0}
    epB = next(e for e in load_split_episodes(out, "train") if e.take_uid == B)
    np.testing.assert_allclose(epB.joints[1, 0, 2], obj["4"][0]["annotation3D"]["right_wrist"]["z"], atol=1e-6)
    # other settings in the same folder: refused unless overwrite
    with pytest.raises(ValueError, match="other settings"):
        prepare_dataset(raw, out, size=SIZE + 8, progress=False)
    m3 = prepare_dataset(raw, out, size=SIZE + 8, overwrite=True, progress=False)
    assert m3["last_run"]["written"] == 3 and load_split_episodes(out, "val")[0].frames.shape[1] == SIZE + 8


def test_egghand_split_selects_listed_episodes_and_prompts(tmp_path):
    specs = {s.episode_index: s for s in load_egghand_split("egghand-train")}
    vspecs = {s.episode_index: s for s in load_egghand_split("egghand-val")}
    # Real listed takes with short synthetic content; annotations extend beyond the listed ranges.
    t1 = make_take(specs[261].take_uid, "train", start=0, n=41, speed=0.02)  # listed 0..90 (31 frames)
    t2a = make_take(specs[201].take_uid, "train", start=20, n=35, turn=0.05)  # listed 20..110 (31)
    t2b = make_take(specs[202].take_uid, "train", start=138, n=30)  # listed 138..207 (24)
    t2 = t2a
    t2.frames = np.concatenate([t2a.frames, t2b.frames])
    t2.extrinsics = np.concatenate([t2a.extrinsics, t2b.extrinsics])
    t2.joints = np.concatenate([t2a.joints, t2b.joints])
    t3 = make_take(specs[291].take_uid, "train", start=35, n=64)  # listed 35..224 (64), frame 101 loses its pose
    t3.camera_frames = t3.frames[t3.frames != 101]
    v1 = make_take(vspecs[52].take_uid, "val", start=70, n=80)  # listed 76..289 (72)
    extra = make_take("bbbbbbbb-0000-4000-8000-000000000009", "train", start=0, n=30)  # not listed
    raw = write_dataset(tmp_path / "raw", [t1, t2, t3, v1, extra])
    out = tmp_path / "prep"
    m = prepare_dataset(raw, out, splits=["egghand-train", "egghand-val"], size=SIZE, progress=False)

    train = load_split_episodes(out, "egghand-train")
    got = sorted((e.episode_index, int(e.frame_numbers[0]), int(e.frame_numbers[-1]), len(e)) for e in train)
    assert got == [(201, 20, 110, 31), (202, 138, 207, 24), (261, 0, 90, 31), (291, 35, 98, 22), (291, 104, 224, 41)]
    for e in train:
        assert e.task == specs[e.episode_index].task and e.scenario == specs[e.episode_index].scenario
        assert stored_frame_ids(e) == e.frame_numbers.tolist()
    assert "bbbbbbbb-0000-4000-8000-000000000009" not in {e.take_uid for e in train}
    val = load_split_episodes(out, "egghand-val")
    assert [(e.episode_index, len(e), e.task) for e in val] == [(52, 72, vspecs[52].task)]
    assert m["splits"]["egghand-train"]["num_windows"] == 31 + 24 + 31 + 22 + 41
    assert json.loads((out / "stats.json").read_text())["info"]["split"] == "egghand-train"
    rep = json.loads((out / "report.json").read_text())
    assert rep["takes"][specs[291].take_uid]["counts"] == {"missing_camera_pose": 1, "episode_incomplete": 1,
                                                            "frame_gap": 1}
    # every other listed take is absent from this fixture, and the report says so
    assert rep["summary"]["takes_dropped"] == (286 - 3) + (65 - 1)
    # windows of a listed episode: one per frame
    ds = WindowDataset(out, "egghand-train", protocol="egghand-code")
    assert len(ds) == m["splits"]["egghand-train"]["num_windows"]
    # strict mode refuses an incomplete copy of the paper's data
    with pytest.raises(ValidationError):
        prepare_dataset(raw, tmp_path / "strict", splits=["egghand-val"], strict=True, size=SIZE, progress=False)


def test_cli_prepare(tmp_path, capsys):
    raw = write_dataset(tmp_path / "raw", takes()[1:])
    out = tmp_path / "prep"
    code = cli_main(["prepare", "--raw", str(raw), "--out", str(out), "--size", str(SIZE), "--no-progress",
                     "--splits", "train", "val"])
    assert code == 0
    assert "train: 1 episodes, 22 windows" in capsys.readouterr().out
    assert read_manifest(out)["splits"]["val"]["num_episodes"] == 1
    with pytest.raises(ValueError, match="protocol: unknown 'past'"):
        WindowDataset(out, "val", protocol="past")
    with pytest.raises(ValueError, match="'test' was not prepared"):
        WindowDataset(out, "test")
    with pytest.raises(ValueError, match="split: unknown 'tset'"):
        prepare_dataset(raw, tmp_path / "o3", splits=["tset"], progress=False)
    assert not (tmp_path / "o3").exists()
    capsys.readouterr()
    assert cli_main(["prepare", "--raw", str(tmp_path), "--out", str(tmp_path / "o2"), "--no-progress"]) == 2
    assert capsys.readouterr().err == f"egghand prepare: error: {tmp_path / 'takes.json'}: file not found\n"


def test_unannotated_takes_and_automatic_fallback_are_reported_not_errors(tmp_path):
    tks = takes()
    raw = write_dataset(tmp_path / "raw", tks)
    hand_path(raw, tks[0]).unlink()  # take A: no hand annotation at all
    auto = raw / "annotations" / "ego_pose" / "train" / "hand" / "automatic" / f"{B}.json"
    auto.parent.mkdir(parents=True)
    hand_path(raw, tks[1]).rename(auto)  # take B: automatic annotations only
    m = prepare_dataset(raw, tmp_path / "prep", strict=True, size=SIZE, progress=False)  # info only: no error
    assert [e.take_uid for e in load_split_episodes(tmp_path / "prep", "train")] == [B]
    rep = json.loads((tmp_path / "prep" / "report.json").read_text())
    assert rep["takes"]["(split train)"]["counts"] == {"not_annotated": 1}
    assert rep["takes"]["(split train)"]["examples"]["not_annotated"][0]["detail"] == A
    assert rep["takes"][B]["counts"] == {"fallback_automatic": 1} and rep["summary"]["takes"] == 2
    assert m["splits"]["train"]["num_windows"] == 22
    # automatic only: the manual-only take C is then not annotated
    m2 = prepare_dataset(raw, tmp_path / "auto", annotation="automatic", size=SIZE, progress=False)
    assert m2["splits"]["train"]["num_windows"] == 22 and m2["splits"]["val"]["num_episodes"] == 0
