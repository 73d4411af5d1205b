"""EgoSynth 2: layout, determinism, labels consistent with the camera and the pixels, look-alikes, the cue lamp,
visible targets, the probes' inputs, refusal of version-1 data, atomic output."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from egghand_lib import skeleton
from egghand_lib.cli import main as cli_main
from egghand_lib.data import egosynth as S
from egghand_lib.data.egosynth import writer

SMALL = dict(num_takes={"train": 1, "val": 0, "test": 0}, duration_sec=(3.2, 3.2), image_size=64)
BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return S.generate_egosynth(tmp_path_factory.mktemp("egosynth") / "tiny", preset="tiny", seed=0, progress=False)


@pytest.fixture(scope="module")
def prepared(tiny, tmp_path_factory) -> Path:
    from egghand_lib.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("egosynth_prep") / "prep"
    prepare_dataset(tiny, out, splits=("train", "val", "test"), size=64, progress=False)
    return out


def _takes(root: Path) -> list[dict]:
    return json.loads((root / "takes.json").read_text())


def _split_of(root: Path) -> dict[str, str]:
    return json.loads((root / "annotations" / "splits.json").read_text())["take_uid_to_split"]


def _hand(root: Path, split: str, uid: str) -> dict:
    return json.loads((root / "annotations/ego_pose" / split / "hand/annotation" / f"{uid}.json").read_text())


def _cam(root: Path, split: str, uid: str) -> dict:
    return json.loads((root / "annotations/ego_pose" / split / "camera_pose" / f"{uid}.json").read_text())


def _video(root: Path, take: dict) -> Path:
    return root / take["root_dir"] / S.VIDEO_RELPATH


def _joints_from_json(ann: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """frame numbers (F,), joints (F, 42, 3) NaN where absent, valid (F, 42)."""
    fns = sorted(int(k) for k in ann)
    J = np.full((len(fns), 42, 3), np.nan)
    for i, fn in enumerate(fns):
        for name, p in ann[str(fn)][0]["annotation3D"].items():
            J[i, skeleton.joint_index(name)] = (p["x"], p["y"], p["z"])
    return np.array(fns), J, ~np.isnan(J[..., 0])


def _project(K: np.ndarray, E: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K (3, 3), E (F, 3, 4), X (F, P, 3) world -> u, v, z (F, P)."""
    Xc = np.einsum("fij,fkj->fki", E[:, :, :3].astype(np.float64), X) + E[:, None, :, 3]
    return K[0, 0] * Xc[..., 0] / Xc[..., 2] + K[0, 2], K[1, 1] * Xc[..., 1] / Xc[..., 2] + K[1, 2], Xc[..., 2]


def _is_shade_of(pixels: np.ndarray, base, tol: float = 28.0) -> np.ndarray:
    """(N, 3) uint8 pixels that look like ``base`` ((3,) or (N, 3) RGB in [0, 1]) under a shading factor in [0.3, 1]."""
    p = pixels.astype(np.float32)
    b = np.broadcast_to(np.asarray(base, np.float32) * 255, p.shape)
    s = np.clip((p * b).sum(-1) / (b * b).sum(-1), 0.3, 1.0)
    return ((p - s[:, None] * b) ** 2).sum(-1) < tol * tol


def test_layout_follows_egoexo4d(tiny):
    manifest = json.loads((tiny / "manifest.json").read_text())
    assert manifest["preset"] == "tiny" and manifest["seed"] == 0 and manifest["version"] == S.GENERATOR_VERSION
    assert manifest["generator"] == S.GENERATOR_NAME
    takes = _takes(tiny)
    assert len(takes) == 4 and manifest["num_takes"] == 4
    splits = _split_of(tiny)
    assert sorted(splits.values()) == ["test", "train", "train", "val"]
    s2t = json.loads((tiny / "annotations/splits.json").read_text())["split_to_take_uids"]
    assert {u for us in s2t.values() for u in us} == set(splits)
    size = S.PRESETS["tiny"]["image_size"]
    families = set()
    for t in takes:
        for key in ("take_uid", "take_name", "parent_task_name", "task_name", "root_dir", "frame_aligned_videos",
                    "duration_sec", "best_exo"):
            assert key in t, key
        assert t["root_dir"] == f"takes/{t['take_name']}"
        rel = t["frame_aligned_videos"][S.EGO_CAMERA]["rgb"]["relative_path"]
        assert _video(tiny, t).is_file() and rel == "frame_aligned_videos/aria01_214-1.mp4"
        families.add(t["egosynth"]["task_family"])
        split = splits[t["take_uid"]]
        ann, cam = _hand(tiny, split, t["take_uid"]), _cam(tiny, split, t["take_uid"])
        fns = sorted(int(k) for k in ann)
        assert fns[0] > 0 and np.all(np.diff(fns) == 3)  # 30 fps numbers, every 3rd, not starting at 0
        for k in (str(fns[0]), str(fns[-1])):
            (entry,) = ann[k]
            assert set(entry) == {"annotation3D", "annotation2D"}
            assert set(entry["annotation3D"]) <= set(skeleton.JOINT_NAMES)
            assert set(entry["annotation2D"][S.EGO_CAMERA]) == set(entry["annotation3D"])
            for p in entry["annotation3D"].values():
                assert set(p) == {"x", "y", "z", "num_views_for_3d"} and isinstance(p["num_views_for_3d"], int)
        K = np.array(cam[S.EGO_CAMERA]["camera_intrinsics"])
        assert K.shape == (3, 3) and K[2, 2] == 1 and K[0, 2] == size / 2
        ext = cam[S.EGO_CAMERA]["camera_extrinsics"]
        assert sorted(int(k) for k in ext) == fns
        E = np.array(ext[str(fns[0])])
        np.testing.assert_allclose(E[:, :3] @ E[:, :3].T, np.eye(3), atol=1e-5)  # a rotation
        frames = S.read_video_frames(_video(tiny, t), [0, fns[-1]])
        assert frames.shape == (2, size, size, 3)
        assert fns[-1] < round(t["duration_sec"] * 30)
    assert len(families) == 4  # tiny covers four different task families
    # Prompts also in the EggHand code-data episode format, one episode per take here.
    ep = json.loads((tiny / "annotations/egghand_episodes/train.json").read_text())
    assert len(ep["episodes"]) == 2
    e = ep["episodes"][0]
    assert e["length"] == (e["end_frame"] - e["start_frame"]) // 3 + 1
    assert ep["tasks"][e["task_index"]]["task"] == next(t["task_name"] for t in takes if t["take_uid"] == e["take_uid"])


def test_reader_reads_it_back(tiny):
    from egghand_lib.data.egoexo4d import read_takes
    from egghand_lib.data.episodes import read_episodes

    takes = {t["take_uid"]: t for t in _takes(tiny)}
    assert {u: i.prompt for u, i in read_takes(tiny).items()} == {u: t["egosynth"]["prompt"] for u, t in takes.items()}
    episodes = read_episodes(tiny, "train")
    assert len(episodes) == 2
    for ep in episodes:
        t = takes[ep.take_uid]
        assert ep.task == t["egosynth"]["prompt"] and ep.scenario == t["task_name"]
        gt = S.load_ground_truth(tiny, ep.take_uid)
        sel = np.searchsorted(gt["frame_numbers"], ep.frame_numbers)
        np.testing.assert_array_equal(gt["frame_numbers"][sel], ep.frame_numbers)
        np.testing.assert_allclose(ep.extrinsics, gt["extrinsics"][sel], atol=1e-5)
        # The reader may drop joints it judges bad, but never adds any.
        assert not (ep.valid & ~gt["valid"][sel]).any()
        assert ep.valid.sum() > 0.8 * gt["valid"][sel].sum()
        np.testing.assert_allclose(ep.joints[ep.valid], gt["labelled_joints"][sel][ep.valid], atol=2e-6)
        # The labels scatter around the true joints by the label noise (a few millimetres at most).
        err = np.linalg.norm(gt["labelled_joints"] - gt["joints"], axis=-1)
        assert 0.001 < float(err.mean()) < 0.004 and float(err.max()) < 0.012
        size = S.PRESETS["tiny"]["image_size"]
        direct = S.read_video_frames(_video(tiny, t), ep.frame_numbers[:3])
        from egghand_lib.data.egoexo4d import read_video_frames

        np.testing.assert_array_equal(read_video_frames(_video(tiny, t), ep.frame_numbers[:3], size=size), direct)


def test_deterministic_from_seed(tmp_path):
    a = S.generate_egosynth(tmp_path / "a", preset="tiny", seed=5, progress=False, **SMALL)
    b = S.generate_egosynth(tmp_path / "b", preset="tiny", seed=5, progress=False, **SMALL)
    c = S.generate_egosynth(tmp_path / "c", preset="tiny", seed=6, progress=False, **SMALL)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix in (".json", ".mp4"):
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    (ta,), (tb,), (tc,) = _takes(a), _takes(b), _takes(c)
    ga, gb = S.load_ground_truth(a, ta["take_uid"]), S.load_ground_truth(b, tb["take_uid"])
    assert set(ga) == set(gb) and all(np.array_equal(ga[k], gb[k]) for k in ga)
    assert ta["take_uid"] != tc["take_uid"]
    ja = _joints_from_json(_hand(a, "train", ta["take_uid"]))[1]
    jc = _joints_from_json(_hand(c, "train", tc["take_uid"]))[1]
    n = min(len(ja), len(jc))
    assert not np.allclose(np.nan_to_num(ja[:n]), np.nan_to_num(jc[:n]))


def test_validity_matches_what_the_camera_sees(tiny):
    splits = _split_of(tiny)
    n_valid = n_hidden = 0
    for t in _takes(tiny):
        uid, split = t["take_uid"], splits[t["take_uid"]]
        ann, cam = _hand(tiny, split, uid), _cam(tiny, split, uid)[S.EGO_CAMERA]
        fns, J, valid = _joints_from_json(ann)
        K = np.array(cam["camera_intrinsics"])
        size = 2 * K[0, 2]
        E = np.stack([np.array(cam["camera_extrinsics"][str(f)]) for f in fns])
        u, v, z = _project(K, E, np.nan_to_num(J))
        gt = S.load_ground_truth(tiny, uid)
        # Every annotated joint is (truly) in front of the camera and inside the image ...
        ut, vt, zt = _project(K, E, gt["joints"])
        assert (zt[valid] > 0).all()
        assert ((ut[valid] >= 0) & (ut[valid] < size) & (vt[valid] >= 0) & (vt[valid] < size)).all()
        # ... its 2D annotation is its projection ...
        for i in (0, len(fns) // 2):
            for name, p in ann[str(fns[i])][0]["annotation2D"][S.EGO_CAMERA].items():
                j = skeleton.joint_index(name)
                assert abs(p["x"] - u[i, j]) < 1e-3 and abs(p["y"] - v[i, j]) < 1e-3
        # ... and, from the ground truth, every joint out of view or behind the camera is absent.
        np.testing.assert_array_equal(gt["frame_numbers"], fns)
        np.testing.assert_array_equal(gt["valid"], valid)
        gu, gv, gz = _project(K, gt["extrinsics"], gt["joints"])
        outside = (gz <= 0) | (gu < 0) | (gu >= size) | (gv < 0) | (gv >= size)
        assert not (valid & outside).any()
        np.testing.assert_array_equal(gt["in_view"], ~outside)
        n_valid += valid.sum()
        n_hidden += (~valid).sum()
    assert n_valid > 0.5 * (n_valid + n_hidden)  # mostly annotated, but with missing joints
    assert n_hidden > 0


def test_bone_lengths_constant_per_take(tiny):
    splits = _split_of(tiny)
    bones = np.array(skeleton.BONES)
    for t in _takes(tiny):
        _, J, valid = _joints_from_json(_hand(tiny, splits[t["take_uid"]], t["take_uid"]))
        true = S.load_ground_truth(tiny, t["take_uid"])["joints"]
        both = valid[:, bones[:, 0]] & valid[:, bones[:, 1]]
        assert both.sum(0).min() >= 1
        for joints, tolerance, shortest in ((true, 2e-5, 0.015), (J, 0.02, 0.008)):  # the labels carry label noise
            L = np.linalg.norm(joints[:, bones[:, 0]] - joints[:, bones[:, 1]], axis=-1)  # (F, 40), NaN if absent
            spread = np.nanmax(np.where(both, L, np.nan), 0) - np.nanmin(np.where(both, L, np.nan), 0)
            assert np.nanmax(spread) < tolerance
            assert shortest < np.nanmin(np.where(both, L, np.nan)) and np.nanmax(L) < 0.12  # anatomical range
    # The subject's bones differ between takes (per-subject scale).
    lengths = [np.linalg.norm(g["joints"][0, 5] - g["joints"][0, 6])
               for g in (S.load_ground_truth(tiny, t["take_uid"]) for t in _takes(tiny))]
    assert np.ptp(lengths) > 1e-3


def test_projected_joints_land_on_hand_pixels(tiny):
    hits = misses = control_hits = 0
    for t in _takes(tiny):
        gt = S.load_ground_truth(tiny, t["take_uid"])
        K = gt["intrinsics"].astype(np.float64)
        size = int(2 * K[0, 2])
        frames = S.read_video_frames(_video(tiny, t), gt["frame_numbers"])
        u, v, _ = _project(K, gt["extrinsics"], gt["joints"])
        u, v = u.astype(int), v.astype(int)
        sel = gt["valid"] & gt["visible"]  # annotated joints whose own hand is the nearest surface
        f, j = np.nonzero(sel)
        colour = gt["hand_rgb"][(j >= 21).astype(int)]
        ok = _is_shade_of(frames[f, v[f, j], u[f, j]], colour)
        hits += ok.sum()
        misses += (~ok).sum()
        # Control: the same test a fifth of the image to the side mostly fails (it can fail).
        u2 = np.clip(u + size // 5, 0, size - 1)
        control_hits += _is_shade_of(frames[f, v[f, j], u2[f, j]], colour).sum()
    assert hits + misses > 200
    assert hits / (hits + misses) > 0.85
    assert control_hits / (hits + misses) < 0.5


def test_lookalikes_in_every_take_and_the_prompt_names_the_objects(tiny):
    for t in _takes(tiny):
        syn = t["egosynth"]
        gt = S.load_ground_truth(tiny, t["take_uid"])
        names = [str(n) for n in gt["object_names"]]
        assert names == syn["objects"] and len(set(names)) == len(names) >= 4
        kinds, colours = list(gt["object_kinds"]), list(gt["object_colours"])
        k = int(gt["target_index"])
        assert names[k] == syn["target_object"] == f"{colours[k]} {kinds[k]}"
        others = [i for i in range(len(names)) if i != k]
        assert any(kinds[i] == kinds[k] and colours[i] != colours[k] for i in others), names  # same kind
        assert any(colours[i] == colours[k] and kinds[i] != kinds[k] for i in others), names  # same colour
        assert set(syn["lookalikes"]) <= set(names) and syn["target_object"] not in syn["lookalikes"]
        # The prompt names the target by colour and kind, and the destination where the task has one.
        assert syn["target_object"] in syn["prompt"]
        d = int(gt["destination_index"])
        assert (d >= 0) == (syn["destination_object"] is not None)
        if d >= 0:
            assert names[d] == syn["destination_object"] and syn["destination_object"] in syn["prompt"]
            np.testing.assert_allclose(gt["destination_centers"], gt["object_centers"][:, d])
        np.testing.assert_allclose(gt["target_centers"], gt["object_centers"][:, k])


def test_target_in_view_in_most_observed_windows(tiny):
    """In most windows at least two of the four frames a model sees (offsets -18, -12, -6, 0) show the target."""
    shown = []
    for t in _takes(tiny):
        gt = S.load_ground_truth(tiny, t["take_uid"])
        seen = gt["target_pixels"] >= 15  # of 128 x 128
        idx = np.arange(len(seen))[:, None] + np.array([-18, -12, -6, 0])[None]
        shown.append(seen[np.clip(idx, 0, len(seen) - 1)].sum(1) >= 2)
        # The pixel counts are real: the target's colour shows in the frames where it is counted as seen.
        frames = S.read_video_frames(_video(tiny, t), gt["frame_numbers"][seen][:10])
        colour = S.COLOURS[t["egosynth"]["target_object"].split()[0]]
        px = _is_shade_of(frames.reshape(-1, 3), colour, tol=24).reshape(len(frames), -1).sum(1)
        assert (px >= 10).all(), px
    assert np.concatenate(shown).mean() > 0.8


def test_onset_cue_visible_in_the_frames(tiny):
    """The lamp is green (in the decoded video) at the first onset of every round and red just after a round."""
    checked = 0
    for t in _takes(tiny):
        gt = S.load_ground_truth(tiny, t["take_uid"])
        K = gt["intrinsics"].astype(np.float64)
        size = int(2 * K[0, 2])
        u, v, z = _project(K, gt["extrinsics"], np.broadcast_to(gt["lamp_center"], (len(gt["frame_numbers"]), 1, 3)))
        inside = (z[:, 0] > 0) & (u[:, 0] >= 2) & (u[:, 0] < size - 2) & (v[:, 0] >= 2) & (v[:, 0] < size - 2)
        fn = gt["frame_numbers"]
        starts = np.searchsorted(fn, np.ceil(gt["round_times"][:, 0] * S.FPS - 1e-6))  # first frame at/after an onset
        ends = np.searchsorted(fn, np.floor(gt["round_times"][:, 1] * S.FPS + 1e-6) + 1)  # first frame after a round
        for rows, want, other in ((starts, 1, 0), (ends, 0, 1)):  # channel 1 green, 0 red
            rows = rows[(rows < len(fn))]
            rows = rows[inside[rows] & (gt["lamp_pixels"][rows] >= 40)]
            if not len(rows):
                continue
            frames = S.read_video_frames(_video(tiny, t), fn[rows]).astype(int)
            ui, vi = u[rows, 0].astype(int), v[rows, 0].astype(int)
            patch = np.stack([frames[n, vi[n] - 1:vi[n] + 2, ui[n] - 1:ui[n] + 2].reshape(-1, 3).mean(0)
                              for n in range(len(rows))])
            assert (patch[:, want] > patch[:, other] + 60).all(), (want, patch)
            phase = gt["cue_phase"][rows]
            assert (phase >= 0.9).all() if want == 1 else (phase <= 0.3).all(), phase
            checked += len(rows)
        # Between rounds the phase rises from 0 to 1 over the rest; it is 1 during a round.
        assert np.all((gt["cue_phase"] >= 0) & (gt["cue_phase"] <= 1)) and np.all(gt["cue_phase"][gt["cue_go"]] == 1)
    assert checked >= 4


def test_rounds_follow_fixed_phases_and_reach_the_named_objects(tiny):
    """Hands rest before every round (still for ``rest_sec``), and every move towards a named object gets there."""
    for t in _takes(tiny):
        gt = S.load_ground_truth(tiny, t["take_uid"])
        fn, J = gt["frame_numbers"], gt["joints"].astype(np.float64)
        times = fn / S.FPS
        tips = J[:, list(skeleton.FINGERTIP_INDICES)]
        for t_on, goal, pos in zip(gt["onset_times"], gt["onset_goals"], gt["onset_goal_positions"], strict=True):
            if goal < 0 or not times[0] <= t_on <= times[-1] - 1.5:
                continue
            near = (times >= t_on) & (times <= t_on + 1.5)
            assert np.linalg.norm(tips[near] - pos, axis=-1).min() < 0.09, (t["egosynth"]["task_family"], t_on)
        rest = t["egosynth"]["rest_sec"]
        for start in gt["round_times"][:, 0]:
            still = (times >= start - rest + 0.05) & (times < start - 0.02)
            if still.sum() >= 3:
                wrists = J[still][:, [0, 21]]
                assert np.abs(np.diff(wrists, axis=0)).max() < 1e-3  # both wrists still during the rest
        assert len(gt["onset_times"]) and np.all(np.diff(gt["onset_times"]) >= 0)


def test_probe_inputs_and_oracle_probe_on_tiny(tiny, prepared):
    sys.path.insert(0, str(BENCH))
    try:
        from predictability import decision_windows, egosynth_features, state_features, train_mlp
    finally:
        sys.path.remove(str(BENCH))
    from egghand_lib.data.windows import WindowDataset

    a = WindowDataset(prepared, "train").arrays()
    f = egosynth_features(a, tiny)
    assert f is not None and f["objects"].shape == (len(a["take_uid"]), 8) and np.isfinite(f["objects"]).all()
    # The oracle's target centre maps back to the ground-truth centre through the window's canonical frame.
    i = len(a["take_uid"]) // 2
    gt = S.load_ground_truth(tiny, str(a["take_uid"][i]))
    row = int(np.searchsorted(gt["frame_numbers"], a["frame_index"][i]))
    C = np.asarray(a["canonical_T"][i], np.float64)
    world = np.linalg.inv(C) @ np.r_[f["objects"][i, :3], 1.0]
    np.testing.assert_allclose(world[:3], gt["target_centers"][row], atol=1e-4)
    assert (f["family"].sum(1) == 1).all() and f["onsets"].any()
    assert 0 < decision_windows(a)["any"].mean() <= 1
    anchor = np.where(a["past_valid"][:, -1, :, None], a["past_joints"][:, -1], 0.0).astype(np.float64)
    x = np.concatenate([state_features(a, anchor), f["objects"]], 1)
    y = (np.asarray(a["future_joints"], np.float64) - anchor[:, None]) / 0.25
    m = np.asarray(a["future_valid"], bool)
    predict = train_mlp(x, np.nan_to_num(y), m, steps=5, width=32, seed=0)
    assert predict(x).shape == y.shape and np.isfinite(predict(x)).all()


def test_version_1_data_is_refused(tiny, prepared, tmp_path):
    from egghand_lib.data.prepare import prepare_dataset
    from egghand_lib.data.windows import WindowDataset

    assert json.loads((prepared / "manifest.json").read_text())["source"]["version"] == S.GENERATOR_VERSION
    assert len(WindowDataset(prepared, "test")) > 0
    # A raw folder of version 1 is refused by prepare ...
    raw1 = tmp_path / "raw1"
    shutil.copytree(tiny, raw1)
    manifest = json.loads((raw1 / "manifest.json").read_text())
    (raw1 / "manifest.json").write_text(json.dumps({**manifest, "version": "egosynth-1.0"}))
    with pytest.raises(ValueError, match="EgoSynth version 'egosynth-1.0'.*egosynth-2.*egghand synth"):
        prepare_dataset(raw1, tmp_path / "p1", splits=("train",), size=32, progress=False)
    # ... and a folder prepared from version 1 is refused where it is opened: recorded as such, or prepared
    # before the source was recorded (no "source" key) from an EgoSynth folder.
    for edit in ({"source": {"generator": "egghand_lib.data.synthetic", "version": "egosynth-1.0"}}, None):
        old = tmp_path / f"old_{edit is None}"
        shutil.copytree(prepared, old)
        m = json.loads((old / "manifest.json").read_text())
        m = {k: v for k, v in m.items() if k != "source"} if edit is None else {**m, **edit}
        (old / "manifest.json").write_text(json.dumps(m))
        with pytest.raises(ValueError, match=f"{old}.*EgoSynth version 'egosynth-1.0'"):
            WindowDataset(old, "train")


def test_existing_folder_and_interrupted_generation(tiny, tmp_path, monkeypatch):
    # Same parameters: returned as is, also through the CLI; other parameters: refused.
    assert S.generate_egosynth(tiny, preset="tiny", seed=0, progress=False) == tiny
    assert cli_main(["synth", "--out", str(tiny), "--preset", "tiny", "--seed", "0", "--no-progress"]) == 0
    with pytest.raises(FileExistsError, match="overwrite"):
        S.generate_egosynth(tiny, preset="tiny", seed=1, progress=False)
    with pytest.raises(ValueError, match="preset"):
        S.generate_egosynth(tmp_path / "x", preset="huge")
    with pytest.raises(ValueError, match="families"):
        S.generate_egosynth(tmp_path / "x", families=("juggle",))
    with pytest.raises(ValueError, match="rest_sec"):
        S.make_config("tiny", rest_sec=2.5)

    calls = []
    real = writer._take_files

    def flaky(root, cfg, plan):
        calls.append(plan.index)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return real(root, cfg, plan)

    monkeypatch.setattr(writer, "_take_files", flaky)
    out = tmp_path / "crash"
    overrides = dict(SMALL, num_takes={"train": 2, "val": 0, "test": 0})
    with pytest.raises(RuntimeError, match="simulated crash"):
        S.generate_egosynth(out, preset="tiny", seed=0, progress=False, **overrides)
    assert not out.exists()
    assert not list(tmp_path.rglob("manifest.json"))  # nothing anywhere looks complete
    monkeypatch.setattr(writer, "_take_files", real)
    S.generate_egosynth(out, preset="tiny", seed=0, progress=False, **overrides)
    assert (out / "manifest.json").is_file() and len(_takes(out)) == 2
