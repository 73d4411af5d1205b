"""Hostile raw folders given to `egghand prepare`: identifiers that would become paths out of --raw / --out,
duplicates, extreme numbers, broken files. Each case asserts the exact outcome: the report finding (lenient)
or the one-line error and exit status 2 (strict / fatal), what was still prepared, and that nothing outside
OUT changed."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from egghand_lib.data.prepared import is_prepared, read_manifest, read_stats
from tests.fixtures.hostile import TRAIN_WINDOWS, A, B, C, cli, error_line, finding, report, tree_state


def lenient(sb, capsys, *extra):
    """Run a lenient prepare that must succeed; returns (manifest, report) and checks the outside is untouched."""
    before = tree_state(sb.box, exclude=sb.out)
    code, out, err = cli(capsys, *sb.prepare_argv(*extra))
    assert code == 0, err
    assert tree_state(sb.box, exclude=sb.out) == before
    return read_manifest(sb.out), report(sb.out)


def strict_fails(sb, capsys, *fragments):
    """A strict prepare (into a new folder): one error line naming the fragments, exit 2, no output folder."""
    out = sb.box / "strict_out"
    before = tree_state(sb.box)
    argv = sb.prepare_argv("--strict")
    argv[argv.index("--out") + 1] = str(out)
    code, _, err = cli(capsys, *argv)
    assert code == 2
    line = error_line(err, "prepare", *fragments)
    assert not out.exists() and tree_state(sb.box) == before
    return line


def train_takes(manifest) -> set[str]:
    return {key.rsplit("_", 1)[0] for key in manifest["splits"]["train"]["episodes"]}


# ------------------------------------------------------------------------------------ paths from identifiers


def test_take_uid_climbing_out_of_out_writes_nothing_outside(sb, capsys):
    """The issue's case: uid '../../../outside/pwn' with its files planted where that uid leads inside --raw;
    its episode would be written to BOX/outside. It is dropped before any path is built from it."""
    evil = "../../../outside/pwn"
    shutil.copy(sb.hand_file(A), sb.raw / "annotations" / "ego_pose" / "outside.json")  # keep A's data for later
    (sb.raw / "annotations" / "ego_pose" / "outside").mkdir()
    shutil.copy(sb.hand_file(A), sb.raw / "annotations" / "ego_pose" / "outside" / "pwn.json")
    (sb.raw / "annotations" / "outside").mkdir()
    shutil.copy(sb.camera_file(A), sb.raw / "annotations" / "outside" / "pwn.json")
    sb.rename_take(A, evil)
    m, rep = lenient(sb, capsys)
    ex = finding(rep, evil, "unsafe_path")
    assert "is not a plain name" in ex[0]["detail"] and "contains '/'" in ex[0]["detail"]
    assert rep["takes"][evil]["status"] == "dropped" and train_takes(m) == {B}
    assert sorted(p.name for p in sb.outside.iterdir()) == ["victim.txt"]
    strict_fails(sb, capsys, "unsafe_path", "takes.json", re.escape(repr(evil)))


def test_take_uid_traversal_only_in_splits_json(sb, capsys):
    splits = sb.read_json("annotations/splits.json")
    splits["take_uid_to_split"]["../../../../../../outside/victim"] = "train"
    sb.write_json("annotations/splits.json", splits)
    m, rep = lenient(sb, capsys)
    ex = finding(rep, "../../../../../../outside/victim", "unsafe_path")
    assert "splits.json" in ex[0]["file"] and train_takes(m) == {A, B}


def test_absolute_root_dir_is_refused(sb, capsys):
    sb.edit_takes(A, root_dir=str(sb.outside))
    m, rep = lenient(sb, capsys)
    assert "root_dir" in finding(rep, A, "unsafe_path")[0]["detail"]
    assert "absolute path" in finding(rep, A, "unsafe_path")[0]["detail"] and train_takes(m) == {B}


def test_take_name_with_dotdot_leading_out_of_raw(sb, capsys):
    """No root_dir: the video is looked for under takes/<take_name>; a name climbing out is refused."""
    takes = sb.read_json("takes.json")
    entry = next(t for t in takes if t["take_uid"] == A)
    del entry["root_dir"]
    entry["take_name"] = "../../outside"
    sb.write_json("takes.json", takes)
    m, rep = lenient(sb, capsys)
    assert "climbs out with '..'" in finding(rep, A, "unsafe_path")[0]["detail"] and train_takes(m) == {B}


def test_video_relative_path_climbing_out(sb, capsys):
    sb.edit_takes(A, frame_aligned_videos={"aria01": {"rgb": {"relative_path": "../../../outside/victim.txt"}}})
    m, rep = lenient(sb, capsys)
    assert "video path" in finding(rep, A, "unsafe_path")[0]["detail"] and train_takes(m) == {B}


def test_take_uid_with_newline_and_nul(sb, capsys):
    sb.rename_take(B, "b\nline\x00")
    m, rep = lenient(sb, capsys)
    assert "contains" in finding(rep, "b\nline\x00", "unsafe_path")[0]["detail"] and train_takes(m) == {A}


def test_take_uid_too_long_for_a_file_name(sb, capsys):
    long_uid = "x" * 300
    sb.rename_take(B, long_uid)
    m, rep = lenient(sb, capsys)
    assert "longer than 200 bytes" in finding(rep, long_uid, "unsafe_path")[0]["detail"]


def test_split_name_climbing_out_on_the_command_line(sb, capsys):
    code, _, err = cli(capsys, *sb.prepare_argv("--splits", "../../outside"))
    assert code == 2
    error_line(err, "prepare", r"splits: '\.\./\.\./outside' cannot be a file or folder name", "contains '/'")
    assert not sb.out.exists()


def test_output_folder_holding_the_raw_folder_is_refused(sb, capsys):
    code, _, err = cli(capsys, "prepare", "--raw", str(sb.raw), "--out", str(sb.box), "--no-progress")
    assert code == 2
    error_line(err, "prepare", "holds the raw folder")
    assert (sb.outside / "victim.txt").is_file() and (sb.raw / "takes.json").is_file()


# ----------------------------------------------------------------------------------------------- duplicates


def test_duplicate_take_uid_in_takes_json(sb, capsys):
    takes = sb.read_json("takes.json")
    twin = dict(next(t for t in takes if t["take_uid"] == A), take_name="take_other", root_dir="takes/take_other")
    sb.write_json("takes.json", takes + [twin])
    m, rep = lenient(sb, capsys)
    assert "listed 2 times" in finding(rep, A, "duplicate_take")[0]["detail"] and train_takes(m) == {B}
    strict_fails(sb, capsys, "duplicate_take", "takes.json")


def test_frame_keys_19_and_019_no_longer_crash(sb, capsys):
    obj = json.loads(sb.hand_file(A).read_text())
    obj["0033"] = obj["33"]  # the same frame twice under two spellings
    sb.hand_file(A).write_text(json.dumps(obj))
    m, rep = lenient(sb, capsys)
    ex = finding(rep, A, "duplicate_key")
    assert ex[0]["frame"] == 33 and "'33' and '0033'" in ex[0]["detail"]
    assert rep["takes"][A]["status"] == "ok" and m["splits"]["train"]["num_windows"] == TRAIN_WINDOWS - 1
    strict_fails(sb, capsys, "duplicate_key", f"{A}.json: frame 33")


def test_exact_duplicate_frame_key_in_the_text(sb, capsys):
    text = sb.hand_file(A).read_text()
    entry = json.dumps(json.loads(text)["36"])
    sb.hand_file(A).write_text(text[:-1] + f', "36": {entry}}}')  # "36" given twice
    m, rep = lenient(sb, capsys)
    ex = finding(rep, A, "duplicate_key")
    assert ex[0]["frame"] == 36 and "'36' twice" in ex[0]["detail"]


def test_joint_given_twice_in_one_frame(sb, capsys):
    text = sb.hand_file(A).read_text()
    text = text.replace('"right_wrist": {', '"right_wrist": {"x": 9, "y": 9, "z": 9}, "right_wrist": {', 1)
    sb.hand_file(A).write_text(text)
    m, rep = lenient(sb, capsys)
    ex = finding(rep, A, "duplicate_key")
    assert ex[0]["frame"] == 30 and "'right_wrist' given more than once" in ex[0]["detail"]


def test_camera_frame_given_twice(sb, capsys):
    obj = json.loads(sb.camera_file(A).read_text())
    ext = obj["aria01"]["camera_extrinsics"]
    ext["039"] = ext["39"]
    sb.camera_file(A).write_text(json.dumps(obj))
    m, rep = lenient(sb, capsys)
    ex = finding(rep, A, "duplicate_key")
    assert ex[0]["frame"] == 39 and "camera_pose" in ex[0]["file"]
    assert "missing_camera_pose" not in rep["takes"][A]["counts"]  # reported once, as what it is


# ------------------------------------------------------------------------------------------- extreme numbers


@pytest.mark.parametrize("key", ["1" + "0" * 30, "-3", "9" * 5000])
def test_frame_key_out_of_range_names_the_file(sb, capsys, key):
    obj = json.loads(sb.hand_file(A).read_text())
    obj[key] = obj["33"]
    sb.hand_file(A).write_text(json.dumps(obj))
    m, rep = lenient(sb, capsys)
    ex = finding(rep, A, "frame_number_out_of_range")
    assert ex[0]["file"].endswith(f"{A}.json") and "outside 0..100000000" in ex[0]["detail"]
    assert m["splits"]["train"]["num_windows"] == TRAIN_WINDOWS  # the real frames are all kept
    strict_fails(sb, capsys, "frame_number_out_of_range", f"{A}.json")


def _set_extrinsic(sb, frame: int, fn) -> None:
    obj = json.loads(sb.camera_file(A).read_text())
    E = np.array(obj["aria01"]["camera_extrinsics"][str(frame)], dtype=float)
    obj["aria01"]["camera_extrinsics"][str(frame)] = fn(E).tolist()
    sb.camera_file(A).write_text(json.dumps(obj, allow_nan=True))


def _scaled_translation(factor):
    def fn(E):
        E = E.copy()
        E[:, 3] = E[:, 3] * factor + (0 if factor else 1e308)
        return E
    return fn


@pytest.mark.parametrize("case, fn, why", [
    ("translation x1000", _scaled_translation(1000.0), "translation .* m from the world origin"),
    ("translation 1e308", _scaled_translation(0.0), "translation .* m from the world origin"),
    ("rotation scaled x2", lambda E: np.concatenate([2 * E[:, :3], E[:, 3:]], 1), "not orthonormal"),
    ("NaN entry", lambda E: np.where(np.eye(3, 4, dtype=bool), np.nan, E), "NaN or inf"),
])
def test_bad_extrinsic_is_dropped_and_statistics_stay_sane(sb, capsys, case, fn, why):
    _set_extrinsic(sb, 45, fn)
    m, rep = lenient(sb, capsys)
    ex = finding(rep, A, "bad_extrinsics")
    assert ex[0]["frame"] == 45 and re.search(why, ex[0]["detail"]), ex
    stats = read_stats(sb.out)
    assert float(stats.state_min.abs().max()) < 10 and float(stats.state_max.abs().max()) < 10  # metres, not 1476
    assert m["splits"]["train"]["num_windows"] == TRAIN_WINDOWS - 1


def test_bad_translation_in_strict_mode_names_file_and_frame(sb, capsys):
    _set_extrinsic(sb, 45, _scaled_translation(1000.0))
    strict_fails(sb, capsys, "bad_extrinsics", f"camera_pose/{A}.json: frame 45", "translation")


def test_lone_camera_jump_is_dropped(sb, capsys):
    def jump(E):  # the camera 5 m away for one frame (0.1 s): 50 m/s
        E = E.copy()
        E[:, 3] -= E[:, :3] @ np.array([5.0, 0.0, 0.0])
        return E
    _set_extrinsic(sb, 60, jump)
    m, rep = lenient(sb, capsys)
    ex = finding(rep, A, "bad_extrinsics")
    assert ex[0]["frame"] == 60 and "jumps away from both neighbouring frames" in ex[0]["detail"]
    assert rep["takes"][A]["counts"]["bad_extrinsics"] == 1  # its neighbours are fine


def test_huge_joint_coordinates_do_not_reach_the_statistics(sb, capsys):
    obj = json.loads(sb.hand_file(A).read_text())
    obj["36"][0]["annotation3D"]["right_wrist"].update(x=1e300, y=-1e300)
    sb.hand_file(A).write_text(json.dumps(obj))
    m, rep = lenient(sb, capsys)
    assert finding(rep, A, "joint_far_from_camera")[0]["frame"] == 36
    assert float(read_stats(sb.out).action_max.abs().max()) < 10


# --------------------------------------------------------------------------------------------- broken files


@pytest.mark.parametrize("content, why", [
    ("[1, 2, 3]", "expected an object keyed by frame number"),
    ("[" * 100_000 + "]" * 100_000, "not valid JSON"),  # nesting deeper than any parser's stack
    (b"\xff\xfe\x00garbage", "not valid JSON"),
    ('{"33": [{"annotation3D": {"right_wrist": {"x": 0.1, "y": 0.2, "z":', "not valid JSON"),  # truncated
])
def test_broken_hand_file_drops_its_take(sb, capsys, content, why):
    path = sb.hand_file(A)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    m, rep = lenient(sb, capsys)
    ex = finding(rep, A, "file_error")
    assert why in ex[0]["detail"] and f"{A}.json" in ex[0]["detail"] and train_takes(m) == {B}


@pytest.mark.parametrize("takes_json, why", [
    ('{"takes": 5}', r"takes.json: expected a list of takes, got int"),
    ('[{"take_name": "x"}]', r"takes.json: entry 0 has no 'take_uid'"),
    ('[{"take_uid": "a"', r"takes.json: not valid JSON"),
])
def test_broken_takes_json_is_one_line_exit_2(sb, capsys, takes_json, why):
    (sb.raw / "takes.json").write_text(takes_json)
    code, _, err = cli(capsys, *sb.prepare_argv())
    assert code == 2
    error_line(err, "prepare", why)
    assert not is_prepared(sb.out) and not (sb.out / "manifest.json").exists()


def test_missing_splits_json_names_it(sb, capsys):
    (sb.raw / "annotations" / "splits.json").unlink()
    code, _, err = cli(capsys, *sb.prepare_argv())
    assert code == 2
    error_line(err, "prepare", r"annotations/splits.json: file not found")
    assert not sb.out.exists()


def test_raw_folder_that_does_not_exist(sb, capsys):
    code, _, err = cli(capsys, "prepare", "--raw", str(sb.box / "nope"), "--out", str(sb.out), "--no-progress")
    assert code == 2
    error_line(err, "prepare", r"nope is not a folder")


def test_unknown_split_lists_the_known_ones(sb, capsys):
    code, _, err = cli(capsys, *sb.prepare_argv("--splits", "trian"))
    assert code == 2
    error_line(err, "prepare", r"split: unknown 'trian'", r"\['train', 'val'\]")


def test_take_whose_video_is_a_text_file(sb, capsys):
    video = sb.raw / "takes" / "take_" f"{C}" / "frame_aligned_videos" / "aria01_214-1.mp4"
    video.write_text("not a video")
    m, rep = lenient(sb, capsys)
    ex = finding(rep, C, "missing_video")
    assert "cannot read video" in ex[0]["detail"] and m["splits"]["val"]["num_episodes"] == 0


@pytest.mark.parametrize("form", ["two_splits", "key_twice"])
def test_take_given_two_splits_in_splits_json(sb, capsys, form):
    splits = sb.read_json("annotations/splits.json")
    if form == "two_splits":  # train in one form, val in the other
        splits["split_to_take_uids"]["val"].append(A)
        sb.write_json("annotations/splits.json", splits)
    else:  # the same key twice in take_uid_to_split (with the same value: still not resolved silently)
        text = json.dumps(splits).replace(f'"{A}": "train"', f'"{A}": "train", "{A}": "train"', 1)
        (sb.raw / "annotations" / "splits.json").write_text(text)
    m, rep = lenient(sb, capsys)
    ex = finding(rep, A, "duplicate_take")
    assert ex[0]["file"].endswith("splits.json") and train_takes(m) == {B}
    assert ("['train', 'val']" if form == "two_splits" else "listed twice") in ex[0]["detail"]
