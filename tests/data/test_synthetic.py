"""EgoSynth: layout, determinism, labels consistent with the camera and the pixels, atomic output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from egghand_lib import skeleton
from egghand_lib.cli import main as cli_main
from egghand_lib.data import synthetic as S

SMALL = dict(num_takes={"train": 1, "val": 0, "test": 0}, duration_sec=(3.2, 3.2), num_objects=(3, 3))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return S.generate_egosynth(tmp_path_factory.mktemp("egosynth") / "tiny", preset="tiny", seed=0, progress=False)


def _takes(root: Path) -> list[dict]:
    return json.loads((root / "takes.json").read_text())


def _split_of(root: Path) -> dict[str, str]:
    return json.loads((root / "annotations" / "splits.json").read_text())["take_uid_to_split"]


def _hand(root: Path, split: str, uid: str) -> dict:
    return json.loads((root / "annotations/ego_pose" / split / "hand/annotation" / f"{uid}.json").read_text())


def _cam(root: Path, split: str, uid: str) -> dict:
    return json.loads((root / "annotations/ego_pose" / split / "camera_pose" / f"{uid}.json").read_text())


def _joints_from_json(ann: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """frame numbers (F,), joints (F, 42, 3) NaN where absent, valid (F, 42)."""
    fns = sorted(int(k) for k in ann)
    J = np.full((len(fns), 42, 3), np.nan)
    for i, fn in enumerate(fns):
        for name, p in ann[str(fn)][0]["annotation3D"].items():
            J[i, skeleton.joint_index(name)] = (p["x"], p["y"], p["z"])
    return np.array(fns), J, ~np.isnan(J[..., 0])


def _is_shade_of(pixels: np.ndarray, base, tol: float = 28.0) -> np.ndarray:
    """(N, 3) uint8 pixels that look like ``base`` ((3,) or (N, 3) RGB in [0, 1]) under a shading factor in [0.3, 1]."""
    p = pixels.astype(np.float32)
    b = np.broadcast_to(np.asarray(base, np.float32) * 255, p.shape)
    s = np.clip((p * b).sum(-1) / (b * b).sum(-1), 0.3, 1.0)
    return ((p - s[:, None] * b) ** 2).sum(-1) < tol * tol


def test_layout_follows_egoexo4d(tiny):
    manifest = json.loads((tiny / "manifest.json").read_text())
    assert manifest["preset"] == "tiny" and manifest["seed"] == 0 and manifest["version"] == S.GENERATOR_VERSION
    takes = _takes(tiny)
    assert len(takes) == 4 and manifest["num_takes"] == 4
    splits = _split_of(tiny)
    assert sorted(splits.values()) == ["test", "train", "train", "val"]
    s2t = json.loads((tiny / "annotations/splits.json").read_text())["split_to_take_uids"]
    assert {u for us in s2t.values() for u in us} == set(splits)
    families = set()
    for t in takes:
        for key in ("take_uid", "take_name", "parent_task_name", "task_name", "root_dir", "frame_aligned_videos",
                    "duration_sec", "best_exo"):
            assert key in t, key
        assert t["root_dir"] == f"takes/{t['take_name']}"
        rel = t["frame_aligned_videos"][S.EGO_CAMERA]["rgb"]["relative_path"]
        video = tiny / t["root_dir"] / rel
        assert video.is_file() and rel == "frame_aligned_videos/aria01_214-1.mp4"
        synth = t["egosynth"]
        assert synth["target_object"] in synth["prompt"]  # the prompt names the target object
        families.add(synth["task_family"])
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
        assert K.shape == (3, 3) and K[2, 2] == 1 and K[0, 2] == 112
        ext = cam[S.EGO_CAMERA]["camera_extrinsics"]
        assert sorted(int(k) for k in ext) == fns
        E = np.array(ext[str(fns[0])])
        assert E.shape == (3, 4)
        np.testing.assert_allclose(E[:, :3] @ E[:, :3].T, np.eye(3), atol=1e-5)  # a rotation
        frames = S.read_video_frames(video, [0, fns[-1]])
        assert frames.shape == (2, 224, 224, 3)
        assert fns[-1] < round(t["duration_sec"] * 30)
    assert len(families) == 4  # tiny covers four different task families
    # Prompts also in the EggHand code-data episode format, one episode per take here.
    ep = json.loads((tiny / "annotations/egghand_episodes/train.json").read_text())
    assert len(ep["episodes"]) == 2
    e = ep["episodes"][0]
    assert e["length"] == (e["end_frame"] - e["start_frame"]) // 3 + 1
    assert ep["tasks"][e["task_index"]]["task"] == next(t["task_name"] for t in takes if t["take_uid"] == e["take_uid"])


def test_reader_reads_it_back(tiny):
    from egghand_lib.data.episodes import read_episodes

    takes = {t["take_uid"]: t for t in _takes(tiny)}
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
        np.testing.assert_allclose(ep.joints[ep.valid], gt["joints"][sel][ep.valid], atol=2e-6)
        direct = S.read_video_frames(tiny / t["root_dir"] / S.VIDEO_RELPATH, ep.frame_numbers[:3])
        np.testing.assert_array_equal(np.asarray(ep.frames[:3]), direct)


def test_deterministic_from_seed(tmp_path):
    a = S.generate_egosynth(tmp_path / "a", preset="tiny", seed=5, progress=False, **SMALL)
    b = S.generate_egosynth(tmp_path / "b", preset="tiny", seed=5, progress=False, **SMALL)
    c = S.generate_egosynth(tmp_path / "c", preset="tiny", seed=6, progress=False, **SMALL)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix in (".json", ".mp4"):
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    (ta,), (tc,) = _takes(a), _takes(c)
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
        E = np.stack([np.array(cam["camera_extrinsics"][str(f)]) for f in fns])
        Xc = np.einsum("fij,fkj->fki", E[:, :, :3], np.nan_to_num(J)) + E[:, None, :, 3]
        u = K[0, 0] * Xc[..., 0] / Xc[..., 2] + K[0, 2]
        v = K[1, 1] * Xc[..., 1] / Xc[..., 2] + K[1, 2]
        # Every annotated joint is in front of the camera and inside the 224x224 image ...
        assert (Xc[..., 2][valid] > 0).all()
        assert ((u[valid] >= 0) & (u[valid] < 224) & (v[valid] >= 0) & (v[valid] < 224)).all()
        # ... its 2D annotation is its projection ...
        for i in (0, len(fns) // 2):
            for name, p in ann[str(fns[i])][0]["annotation2D"][S.EGO_CAMERA].items():
                j = skeleton.joint_index(name)
                assert abs(p["x"] - u[i, j]) < 1e-3 and abs(p["y"] - v[i, j]) < 1e-3
        # ... and, from the ground truth, every joint out of view or behind the camera is absent.
        gt = S.load_ground_truth(tiny, uid)
        np.testing.assert_array_equal(gt["frame_numbers"], fns)
        np.testing.assert_array_equal(gt["valid"], valid)
        gXc = np.einsum("fij,fkj->fki", gt["extrinsics"][:, :, :3].astype(np.float64), gt["joints"]) + gt[
            "extrinsics"][:, None, :, 3]
        gu = K[0, 0] * gXc[..., 0] / gXc[..., 2] + K[0, 2]
        gv = K[1, 1] * gXc[..., 1] / gXc[..., 2] + K[1, 2]
        outside = (gXc[..., 2] <= 0) | (gu < 0) | (gu >= 224) | (gv < 0) | (gv >= 224)
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
        L = np.linalg.norm(J[:, bones[:, 0]] - J[:, bones[:, 1]], axis=-1)  # (F, 40), NaN if a joint is absent
        both = valid[:, bones[:, 0]] & valid[:, bones[:, 1]]
        assert both.sum(0).min() >= 1
        spread = np.nanmax(np.where(both, L, np.nan), 0) - np.nanmin(np.where(both, L, np.nan), 0)
        assert np.nanmax(spread) < 2e-5  # metres: only json rounding
        assert 0.015 < np.nanmin(L) and np.nanmax(L) < 0.12  # anatomical range
        # The subject's bones differ between takes (per-subject scale).
    lengths = []
    for t in _takes(tiny):
        gt = S.load_ground_truth(tiny, t["take_uid"])
        lengths.append(np.linalg.norm(gt["joints"][0, 5] - gt["joints"][0, 6]))
    assert np.ptp(lengths) > 1e-3


def test_projected_joints_land_on_hand_pixels(tiny):
    splits = _split_of(tiny)
    hits = misses = control_hits = 0
    for t in _takes(tiny):
        uid = t["take_uid"]
        gt = S.load_ground_truth(tiny, uid)
        cam = _cam(tiny, splits[uid], uid)[S.EGO_CAMERA]
        K = np.array(cam["camera_intrinsics"])
        frames = S.read_video_frames(tiny / t["root_dir"] / S.VIDEO_RELPATH, gt["frame_numbers"])
        E = gt["extrinsics"].astype(np.float64)
        Xc = np.einsum("fij,fkj->fki", E[:, :, :3], gt["joints"]) + E[:, None, :, 3]
        u = (K[0, 0] * Xc[..., 0] / Xc[..., 2] + K[0, 2]).astype(int)
        v = (K[1, 1] * Xc[..., 1] / Xc[..., 2] + K[1, 2]).astype(int)
        sel = gt["valid"] & gt["visible"]  # annotated joints whose own hand is the nearest surface
        f, j = np.nonzero(sel)
        colour = gt["hand_rgb"][(j >= 21).astype(int)]
        ok = _is_shade_of(frames[f, v[f, j], u[f, j]], colour)
        hits += ok.sum()
        misses += (~ok).sum()
        # Control: the same test 40 px to the side mostly fails (it can fail).
        u2 = np.clip(u + 40, 0, 223)
        control_hits += _is_shade_of(frames[f, v[f, j], u2[f, j]], colour).sum()
    assert hits + misses > 200
    assert hits / (hits + misses) > 0.9
    assert control_hits / (hits + misses) < 0.5


def test_target_object_visible_and_motion_goes_to_it(tiny):
    for t in _takes(tiny):
        gt = S.load_ground_truth(tiny, t["take_uid"])
        seen = gt["target_pixels"] > 15
        assert seen.mean() > 0.7
        # Every 2 s observation window (20 frames at 10 fps) sees the target in at least a third of its frames
        # (a hand may cover a small object while grasping it, or a head turn may look away briefly).
        per_window = np.convolve(seen, np.ones(20), mode="valid")
        assert per_window.min() >= 7, per_window.min()
        # Some hand comes close to the target object: the motion depends on where it is.
        target = gt["object_positions"][:, int(gt["target_index"])]
        tips = gt["joints"][:, list(skeleton.FINGERTIP_INDICES) + [0, 21]]
        d = np.linalg.norm(tips - target[:, None], axis=-1).min()
        assert d < 0.12, (t["egosynth"]["task_family"], d)
        # In the video, the target's colour (unique in the scene) shows in nearly every frame; a palette colour
        # that is not in the scene does not (control).
        frames = S.read_video_frames(tiny / t["root_dir"] / S.VIDEO_RELPATH, gt["frame_numbers"])
        frames = frames[:, ::2, ::2].reshape(-1, 3)  # every 4th pixel is plenty (and 4x faster)
        n = len(gt["frame_numbers"])
        colour = t["egosynth"]["target_object"].split()[0]
        shows = _is_shade_of(frames, S.COLOURS[colour], tol=20).reshape(n, -1).sum(1)
        assert (shows >= 8).mean() > 0.7
        in_scene = {o.split()[0] for o in t["egosynth"]["objects"]}
        absent = [c for c in S.COLOURS if c not in in_scene and c != "white"]  # white looks like the grey table
        assert absent
        for c in absent:
            assert (_is_shade_of(frames, S.COLOURS[c], tol=20).reshape(n, -1).sum(1) >= 8).mean() < 0.05, c


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

    calls = []
    real = S._take_files

    def flaky(root, cfg, plan):
        calls.append(plan.index)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return real(root, cfg, plan)

    monkeypatch.setattr(S, "_take_files", flaky)
    out = tmp_path / "crash"
    overrides = dict(SMALL, num_takes={"train": 2, "val": 0, "test": 0})
    with pytest.raises(RuntimeError, match="simulated crash"):
        S.generate_egosynth(out, preset="tiny", seed=0, progress=False, **overrides)
    assert not out.exists()
    assert not list(tmp_path.rglob("manifest.json"))  # nothing anywhere looks complete
    monkeypatch.setattr(S, "_take_files", real)
    S.generate_egosynth(out, preset="tiny", seed=0, progress=False, **overrides)
    assert (out / "manifest.json").is_file() and len(_takes(out)) == 2
