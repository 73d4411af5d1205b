"""EgoExo4D reader and validation on hand-made files in the official layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from egghand_lib.data import egoexo4d as ex
from egghand_lib.data.episodes import contiguous_runs, load_egghand_split
from egghand_lib.data.validation import (
    ValidationConfig,
    ValidationError,
    ValidationReport,
    validate_take,
)
from tests.fixtures.egoexo4d_takes import (
    INTRINSICS,
    VIDEO_H,
    VIDEO_W,
    camera_path_file,
    decode_color,
    hand_path,
    make_take,
    write_dataset,
    write_video,
)

UID = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def raw(tmp_path):
    tk = make_take(UID, "train", start=7, n=12, speed=0.05)
    tk.task_prompt = "Stir the noodles."
    other = make_take("99999999-2222-4333-8444-555555555555", "val", start=0, n=5)
    synth = make_take("77777777-2222-4333-8444-555555555555", "test", start=0, n=5)
    synth.extra = {"egosynth": {"prompt": "Pick up the red cup."}}  # where EgoSynth keeps its prompt
    write_dataset(tmp_path, [tk, other, synth])
    return tmp_path, tk


def test_read_takes_splits_and_files(raw):
    root, tk = raw
    takes = ex.read_takes(root)
    info = takes[UID]
    assert info.ego_camera == "aria01" and info.task_name == "Cooking Noodles"
    assert info.prompt == "Stir the noodles."  # task_prompt wins over the task name
    assert takes["99999999-2222-4333-8444-555555555555"].prompt == "Cooking Noodles"  # fallback: task name
    assert takes["77777777-2222-4333-8444-555555555555"].prompt == "Pick up the red cup."
    assert info.video_path(root) == root / "takes" / tk.take_name / "frame_aligned_videos" / "aria01_214-1.mp4"
    assert ex.read_splits(root)[UID] == "train"
    assert ex.annotated_take_uids(root, "train") == [UID]

    ann = ex.read_hand_annotation(hand_path(root, tk))
    assert ann.frame_numbers.tolist() == (7 + 3 * np.arange(12)).tolist()  # need not start at 0
    np.testing.assert_allclose(ann.joints, tk.joints, atol=1e-9)
    assert (ann.num_views == 3).all() and not ann.unknown_joints and not ann.bad_values

    cam = ex.read_camera_pose(camera_path_file(root, tk))
    assert cam.camera == "aria01"
    np.testing.assert_allclose(cam.intrinsics, INTRINSICS)
    found, E = cam.lookup(np.array([7, 8, 10, 40, 100]))
    assert found.tolist() == [True, False, True, True, False]
    np.testing.assert_allclose(E[0], tk.extrinsics[0], atol=1e-12)
    assert np.isnan(E[1]).all()


@pytest.fixture(params=["orjson", "stdlib-json"])
def json_decoder(request, monkeypatch):
    """Run a test with the fast decoder and again with the standard-library fallback."""
    if request.param == "stdlib-json":
        monkeypatch.setattr(ex, "orjson", None)
    else:
        assert ex.orjson is not None, "orjson is in requirements.txt"
    return request.param


def test_absent_joints_stay_missing_and_bad_values_are_listed(tmp_path, json_decoder):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({
        "30": [{"annotation3D": {"right_wrist": {"x": 1, "y": 2, "z": 3, "num_views_for_3d": 2},
                                 "left_index_2": {"x": "NaN", "y": 0, "z": 0},
                                 "right_wirst": {"x": 0, "y": 0, "z": 0},
                                 "left_wrist": {"x": None, "y": 0, "z": 0}}}],
        "3": [{"annotation3D": {}}],
    }))
    ann = ex.read_hand_annotation(path)
    assert ann.frame_numbers.tolist() == [3, 30]
    assert np.isnan(ann.joints[0]).all()
    np.testing.assert_allclose(ann.joints[1, 0], (1, 2, 3))
    assert ann.num_views[1, 0] == 2 and ann.num_views[1, 1] == -1
    assert np.isnan(ann.joints[1, 1:]).all()
    assert ann.unknown_joints == {"right_wirst": 1}
    assert sorted(ann.bad_values) == [(30, "left_index_2", "NaN/inf coordinate"),
                                      (30, "left_wrist", "non-numeric or incomplete x/y/z")]


def test_nan_literals_and_repeated_joints(tmp_path, json_decoder):
    # Python's json.dump writes NaN / Infinity literals, which strict JSON parsers refuse: still read.
    path = tmp_path / "h.json"
    path.write_text(json.dumps({
        "6": {"annotation3D": {"right_wrist": {"x": float("nan"), "y": 0, "z": 0},
                               "left_wrist": {"x": 1.5, "y": float("inf"), "z": 0}}},
        "9": [{"annotation3D": {"right_wrist": {"x": 1, "y": 1, "z": 1}}},
              {"annotation3D": {"right_wrist": {"x": 2, "y": 2, "z": 2, "num_views_for_3d": 4}}}],
        "12": {"annotation3D": {"left_wrist": {"x": "0.5", "y": 0, "z": 0, "num_views_for_3d": None}}},
    }))
    ann = ex.read_hand_annotation(path)
    assert np.isnan(ann.joints[0]).all()
    assert sorted(n for _, n, why in ann.bad_values if "NaN/inf" in why) == ["left_wrist", "right_wrist"]
    # Two entries for one frame giving the same joint: which is right is unknown, the frame is left out and listed.
    assert ann.frame_numbers.tolist() == [6, 12]
    assert ann.bad_frames == [(9, "duplicate_key", "frame 9: joint(s) 'right_wrist' given more than once; "
                                                   "frame dropped")]
    # numbers written as text are read as numbers; a null view count is "not given"
    np.testing.assert_array_equal(ann.joints[1, 21], (0.5, 0, 0))
    assert ann.num_views[1, 21] == -1 and len(ann.bad_values) == 2



def test_out_of_range_numbers_are_bad_values_not_crashes(tmp_path, json_decoder):
    """A 400-digit coordinate (no float holds it) is a listed bad value; an infinite view count is "not given"."""
    path = tmp_path / "h.json"
    path.write_text('{"30": [{"annotation3D": {"right_wrist": {"x": 1' + "0" * 400 + ', "y": 0.1, "z": 0.2}, '
                    '"right_thumb_1": {"x": 0.1, "y": 0.1, "z": 0.2, "num_views_for_3d": Infinity}, '
                    '"left_wrist": {"x": 0.3, "y": 0.1, "z": 0.2, "num_views_for_3d": 3}}}]}')
    ann = ex.read_hand_annotation(path)
    assert ann.bad_values == [(30, "right_wrist", "non-numeric or incomplete x/y/z")]
    assert np.isnan(ann.joints[0, 0]).all()
    np.testing.assert_allclose(ann.joints[0, [1, 21]], [(0.1, 0.1, 0.2), (0.3, 0.1, 0.2)])
    assert ann.num_views[0, [0, 1, 21]].tolist() == [-1, -1, 3]

def test_form_errors_name_the_file(tmp_path, json_decoder):
    trunc = tmp_path / "trunc.json"
    trunc.write_text('{"3": [{"annotation3D": {"right_wrist": {"x": 1')
    with pytest.raises(ValueError, match="trunc.json.*not valid JSON"):
        ex.read_hand_annotation(trunc)
    with pytest.raises(FileNotFoundError, match="nothere.json"):
        ex.read_camera_pose(tmp_path / "nothere.json")
    bad = tmp_path / "cam.json"
    bad.write_text(json.dumps({"aria01": {"camera_intrinsics": np.eye(3).tolist(),
                                          "camera_extrinsics": {"3": np.eye(3).tolist()}}}))
    with pytest.raises(ValueError, match=r"cam.json: aria01/camera_extrinsics/3: expected shape \(3, 4\)"):
        ex.read_camera_pose(bad)
    bad.write_text(json.dumps({"aria01": {"camera_intrinsics": [[1, 2], [3, 4]], "camera_extrinsics": {}}}))
    with pytest.raises(ValueError, match="camera_intrinsics: expected shape"):
        ex.read_camera_pose(bad)
    bad.write_text(json.dumps({"cam01": {}}))
    with pytest.raises(ValueError, match="no ego"):
        ex.read_camera_pose(bad)
    bad.write_text(json.dumps({"x3": []}))
    with pytest.raises(ValueError, match="frame key 'x3'"):
        ex.read_hand_annotation(bad)


def test_video_frames_decoded_at_requested_numbers_only(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, 150)
    want = [149, 3, 0, 77, 77, 120]
    frames = ex.read_video_frames(path, want, size=32)
    assert frames.shape == (6, 32, 32, 3) and frames.dtype == np.uint8
    assert [decode_color(f[16, 16]) for f in frames] == want
    with pytest.raises(ValueError, match="v.mp4: video has no frame 150"):
        ex.read_video_frames(path, [10, 150])
    info = ex.video_info(path)
    assert (info["width"], info["height"], info["frames"]) == (VIDEO_W, VIDEO_H, 150)


def test_resize_intrinsics_follow_the_pixels():
    # 64x48 -> short side 48 -> 224 (scale 14/3), width 298.67 -> 299, crop 37 px on the left.
    K2 = ex.resize_intrinsics(INTRINSICS, (VIDEO_H, VIDEO_W), 224)
    X = np.array([0.1, -0.05, 1.0])
    u, v, _ = INTRINSICS @ X / X[2]
    u2, v2, _ = K2 @ X / X[2]
    new_w = round(VIDEO_W * 224 / VIDEO_H)
    np.testing.assert_allclose((u2, v2), (u * new_w / VIDEO_W - (new_w - 224) // 2, v * 224 / VIDEO_H), atol=1e-9)


# ------------------------------------------------------------------------------------------ validation


def _validate(tk, strict=False, frame_numbers=None, cfg=None, tmp_path=None):
    root = write_dataset(tmp_path, [tk], video=False)
    ann = ex.read_hand_annotation(hand_path(root, tk))
    cam = ex.read_camera_pose(camera_path_file(root, tk))
    rep = ValidationReport(strict)
    return validate_take(tk.take_uid, ann, cam, rep, cfg or ValidationConfig(strict=strict), frame_numbers), rep


def test_clean_take_has_no_findings(tmp_path):
    clean, rep = _validate(make_take(UID, n=10, speed=0.1, turn=0.1), tmp_path=tmp_path)
    assert clean.valid.all() and len(clean.frame_numbers) == 10
    assert not rep.totals()


def test_nan_joints_reported_and_masked(tmp_path):
    tk = make_take(UID, n=10)
    tk.joints[4, 3] = np.nan  # an absent joint: legitimate, not reported
    root = write_dataset(tmp_path, [tk], video=False)
    obj = json.loads(hand_path(root, tk).read_text())
    obj["15"][0]["annotation3D"]["left_pinky_4"]["y"] = float("nan")
    hand_path(root, tk).write_text(json.dumps(obj))
    ann = ex.read_hand_annotation(hand_path(root, tk))
    cam = ex.read_camera_pose(camera_path_file(root, tk))
    rep = ValidationReport()
    clean = validate_take(UID, ann, cam, rep)
    assert rep.totals() == {"nan_joint": 1}
    assert rep.takes[UID].examples["nan_joint"][0]["frame"] == 15
    assert not clean.valid[5, 41] and not clean.valid[4, 3] and clean.valid.sum() == 10 * 42 - 2
    assert (clean.joints[5, 41] == 0).all()
    with pytest.raises(ValidationError, match=rf"{UID}.json: frame 15: nan_joint"):
        validate_take(UID, ann, cam, ValidationReport(strict=True))


def test_missing_camera_frames_and_gaps(tmp_path):
    tk = make_take(UID, n=12)
    tk.camera_frames = np.delete(tk.frames, [3, 4])  # frames 9 and 12 have no pose
    clean, rep = _validate(tk, tmp_path=tmp_path)
    assert rep.totals() == {"missing_camera_pose": 2, "frame_gap": 1}
    assert [e["frame"] for e in rep.takes[UID].examples["missing_camera_pose"]] == [9, 12]
    assert rep.takes[UID].examples["frame_gap"][0]["frame"] == 15
    assert 9 not in clean.frame_numbers and len(clean.frame_numbers) == 10
    assert contiguous_runs(clean.frame_numbers) == [(0, 3), (3, 10)]
    with pytest.raises(ValidationError, match=r"camera_pose.*frame 9: missing_camera_pose"):
        _validate(tk, strict=True, tmp_path=tmp_path / "s")
    # A gap alone is information, never an error (episodes split there), even in strict mode.
    gap = make_take(UID, n=6)
    gap.frames = np.array([0, 3, 6, 15, 18, 21])
    clean, rep = _validate(gap, strict=True, tmp_path=tmp_path / "g")
    assert rep.totals() == {"frame_gap": 1} and contiguous_runs(clean.frame_numbers) == [(0, 3), (3, 6)]


def test_wrong_joint_names(tmp_path):
    tk = make_take(UID, n=4)
    root = write_dataset(tmp_path, [tk], video=False)
    obj = json.loads(hand_path(root, tk).read_text())
    for fr in obj.values():
        fr[0]["annotation3D"]["right_wirst"] = fr[0]["annotation3D"].pop("right_wrist")
    hand_path(root, tk).write_text(json.dumps(obj))
    ann = ex.read_hand_annotation(hand_path(root, tk))
    cam = ex.read_camera_pose(camera_path_file(root, tk))
    rep = ValidationReport()
    clean = validate_take(UID, ann, cam, rep)
    assert rep.totals() == {"unknown_joint_name": 4}
    assert "right_wirst" in rep.takes[UID].examples["unknown_joint_name"][0]["detail"]
    assert not clean.valid[:, 0].any() and clean.valid[:, 1:].all()
    with pytest.raises(ValidationError, match="unknown_joint_name.*right_wirst"):
        validate_take(UID, ann, cam, ValidationReport(strict=True))


def test_far_joints_bone_outliers_and_sparse_hands(tmp_path):
    tk = make_take(UID, n=10)
    tk.joints[2, 25] += (5.0, 0, 0)  # left thumb_4 five metres away: far from the camera
    tk.joints[6, 8] += (0, 0, 0.3)  # right index_4 30 cm off its parent: bone outlier (index_3 -> index_4)
    tk.joints[8, 21:] = np.nan  # left hand: only two joints left in frame 8 (frame 24)
    tk.joints[8, 21] = tk.joints[7, 21]
    tk.joints[8, 22] = tk.joints[7, 22]
    clean, rep = _validate(tk, tmp_path=tmp_path)
    counts = rep.totals()
    assert counts == {"joint_far_from_camera": 1, "bone_length_outlier": 1, "too_few_hand_joints": 1}
    assert not clean.valid[2, 25] and clean.valid[2, 24]
    assert not clean.valid[6, 8] and clean.valid[6, 7]
    assert not clean.valid[8, 21:].any() and clean.valid[8, :21].all()
    ex_ = rep.takes[UID].examples
    assert ex_["bone_length_outlier"][0]["frame"] == 18 and "right_index_3->right_index_4" in ex_[
        "bone_length_outlier"][0]["detail"]
    assert ex_["too_few_hand_joints"][0]["frame"] == 24
    # thresholds are settings
    _, rep2 = _validate(tk, cfg=ValidationConfig(max_camera_distance=10, min_hand_joints=1, max_bone_length=10,
                                                 bone_ratio=1e4), tmp_path=tmp_path / "b")
    assert rep2.totals() == {}


def test_report_json_and_markdown(tmp_path):
    tk = make_take(UID, n=12)
    tk.camera_frames = tk.frames[:-1]
    _, rep = _validate(tk, tmp_path=tmp_path)
    rep.drop_take("other-take", "file_error", tmp_path / "x.json", "x.json: not valid JSON")
    j = json.loads(json.dumps(rep.to_json()))
    assert j["summary"]["takes"] == 2 and j["summary"]["takes_dropped"] == 1
    assert j["takes"][UID]["counts"] == {"missing_camera_pose": 1}
    md = rep.to_markdown()
    assert "| missing_camera_pose | problem | 1 |" in md and "other-take | dropped" in md and "frame 33" in md


def test_paper_episode_lists_are_shipped():
    train, val = load_egghand_split("egghand-train"), load_egghand_split("egghand-val")
    assert (len(train), len(val)) == (555, 109)
    assert sum(len(s.frame_numbers) for s in train) == 41314
    assert sum(len(s.frame_numbers) for s in val) == 8830
    assert len({s.take_uid for s in train}) == 286 and not {s.take_uid for s in train} & {s.take_uid for s in val}
    first = train[0]
    assert (first.take_uid, first.start_frame, first.end_frame) == ("b2a184be-1b3c-4e0e-b297-d2a3a95e3e43", 3929, 4229)
    assert first.task == "Tighten the bolt on the bike axle firmly." and first.scenario == "Install a Wheel"
    with pytest.raises(ValueError, match="unknown egghand split"):
        load_egghand_split("egghand-test")
