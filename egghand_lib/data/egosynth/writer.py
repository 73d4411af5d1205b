"""Writing an EgoSynth generation in the EgoExo4D layout, atomically, and reading its extras back.

``generate_egosynth`` plans, simulates, renders and writes every take (in parallel processes if asked),
then the folder-level files, ``manifest.json`` last, inside a hidden sibling folder that is renamed into
place at the end (``egghand_lib.io.atomic_dir``): an interrupted run never leaves a folder that looks
complete. The exact format is in the package docstring (``egghand_lib.data.egosynth``).
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from egghand_lib import skeleton
from egghand_lib.data.egosynth.config import (
    EGO_CAMERA,
    FAMILIES,
    FPS,
    GENERATOR_NAME,
    GENERATOR_VERSION,
    SPLITS,
    VIDEO_RELPATH,
    SynthConfig,
    make_config,
)
from egghand_lib.data.egosynth.rendering import LEFT_TINT, label_validity, render_take
from egghand_lib.data.egosynth.scene import LAMP_PANEL, LAMP_POST_HEIGHT
from egghand_lib.data.egosynth.simulation import TakeSim, lamp_rgb, plan_take, simulate_take
from egghand_lib.data.egosynth.tasks import TakePlan
from egghand_lib.io import atomic_dir, atomic_path, atomic_write_json


def _r(x: float) -> float:
    return round(float(x), 6)


def _write_video(path: Path, frames: np.ndarray, frame_numbers: np.ndarray, n_video: int, crf: int) -> None:
    """30 fps video: grid frame i shown on frames frame_numbers[i] .. frame_numbers[i] + 2."""
    import av  # PyAV: heavy, only needed when writing or reading videos

    S = frames.shape[1]
    idx = np.clip(np.searchsorted(frame_numbers, np.arange(n_video), side="right") - 1, 0, len(frames) - 1)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=FPS)
            stream.width = stream.height = S
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1", "tune": "zerolatency"}
            stream.codec_context.thread_count = 1
            for i in range(n_video):
                vf = av.VideoFrame.from_ndarray(frames[idx[i]], format="rgb24")
                vf.pts = i
                for packet in stream.encode(vf):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def read_video_frames(path: str | Path, frame_numbers) -> np.ndarray:
    """Decode the given 30 fps frame numbers of a video at its own size -> (N, H, W, 3) uint8 RGB (PyAV)."""
    import av  # PyAV: heavy, only needed when reading videos

    wanted = {int(n): i for i, n in enumerate(frame_numbers)}
    out: list[np.ndarray | None] = [None] * len(wanted)
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                out[wanted[i]] = frame.to_ndarray(format="rgb24")
            if i >= max(wanted):
                break
    missing = [n for n, i in wanted.items() if out[i] is None]
    if missing:
        raise ValueError(f"{path}: frames {missing[:5]} are beyond the end of the video")
    return np.stack(out)


LABEL_NOISE_M = 0.0015  # spread of the 3D labels around the true joints (triangulated labels are never exact)


def _annotation_json(plan: TakePlan, sim: TakeSim, valid: np.ndarray, views: np.ndarray,
                     label_noise: np.ndarray) -> tuple[dict, dict]:
    """The hand annotation and camera pose files of one take (EgoExo4D form). label_noise (F, 42, 3) metres is
    added to the 3D labels (a resting hand is then not exactly still in its labels, as in real annotations);
    the 2D labels are their projections. Which joints are labelled is decided on the true joints."""
    K = sim.intrinsics
    hand_json: dict[str, Any] = {}
    extrinsics: dict[str, Any] = {}
    for f in np.flatnonzero(sim.annotated):
        E = sim.extrinsics[f]
        label = sim.joints[f] + label_noise[f]
        Xc = label @ E[:, :3].T + E[:, 3]
        a3, a2 = {}, {}
        for j in np.flatnonzero(valid[f]):
            name = skeleton.JOINT_NAMES[j]
            x, y, z = label[j]
            a3[name] = {"x": _r(x), "y": _r(y), "z": _r(z), "num_views_for_3d": int(views[f, j])}
            a2[name] = {"x": _r(K[0, 0] * Xc[j, 0] / Xc[j, 2] + K[0, 2]),
                        "y": _r(K[1, 1] * Xc[j, 1] / Xc[j, 2] + K[1, 2]), "placement": "auto"}
        hand_json[str(int(sim.frame_numbers[f]))] = [{"annotation3D": a3, "annotation2D": {EGO_CAMERA: a2}}]
        extrinsics[str(int(sim.frame_numbers[f]))] = [[_r(v) for v in row] for row in E]
    cam_json = {
        "metadata": {"take_uid": plan.take_uid, "take_name": plan.take_name, "generator": GENERATOR_VERSION},
        EGO_CAMERA: {"camera_intrinsics": [[_r(v) for v in row] for row in K], "camera_extrinsics": extrinsics},
    }
    return hand_json, cam_json


def _ground_truth(plan: TakePlan, sim: TakeSim, vis: dict, valid: np.ndarray,
                  label_noise: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays of egosynth/gt/{take_uid}.npz (annotated frames only; onsets of the whole take). ``joints``
    are the true joints, ``labelled_joints`` what the annotation files say (the truth plus label noise)."""
    ann = sim.annotated
    objs = plan.objects
    half = np.array([o.height / 2 for o in objs])
    centers = (sim.object_p + sim.object_R[..., :, 2] * half[None, :, None])[ann]
    G = plan.world_T
    dest = -1 if plan.dest is None else int(plan.dest)
    T = sim.frame_numbers[ann] / FPS
    onset_t = np.array([o.t for o in plan.onsets])
    nxt = np.searchsorted(onset_t, T, side="right")  # first onset strictly after each frame
    with np.errstate(invalid="ignore"):
        to_onset = np.where(nxt < len(onset_t), onset_t[np.minimum(nxt, len(onset_t) - 1)] - T, np.inf)
    goal_world = np.array([o.goal_pos for o in plan.onsets]).reshape(-1, 3) @ G[:3, :3].T + G[:3, 3]
    return dict(
        frame_numbers=sim.frame_numbers[ann], joints=sim.joints[ann].astype(np.float32), valid=valid[ann],
        labelled_joints=(sim.joints + label_noise)[ann].astype(np.float32),
        in_view=vis["in_view"][ann], visible=vis["visible"][ann],
        extrinsics=sim.extrinsics[ann].astype(np.float32), intrinsics=sim.intrinsics.astype(np.float32),
        object_positions=sim.object_p[ann].astype(np.float32), object_centers=centers.astype(np.float32),
        object_pixels=vis["object_pixels"][ann], object_names=np.array([o.name for o in objs]),
        object_kinds=np.array([o.kind for o in objs]), object_colours=np.array([o.colour for o in objs]),
        object_rgb=np.array([o.rgb for o in objs], np.float32),
        target_index=np.int64(plan.target), destination_index=np.int64(dest),
        lookalike_indices=np.array(plan.scene.lookalikes, np.int64),
        target_centers=centers[:, plan.target].astype(np.float32),
        destination_centers=(centers[:, dest] if dest >= 0 else np.full((len(T), 3), np.nan)).astype(np.float32),
        target_pixels=vis["object_pixels"][ann][:, plan.target],
        lamp_center=(sim.lamp + G[:3, 2] * (LAMP_POST_HEIGHT + LAMP_PANEL[2])).astype(np.float32),
        lamp_pixels=vis["lamp_pixels"][ann],
        cue_phase=sim.cue_phase[ann].astype(np.float32), cue_go=sim.cue_go[ann],
        lamp_rgb=lamp_rgb(sim)[ann].astype(np.float32), time_to_onset=to_onset.astype(np.float32),
        onset_times=onset_t.astype(np.float32), onset_frames=np.round(onset_t * FPS).astype(np.int64),
        onset_hands=np.array(["both" if len(o.hands) == 2 else o.hands[0] for o in plan.onsets]),
        onset_moves=np.array([o.move for o in plan.onsets]),
        onset_goals=np.array([o.goal for o in plan.onsets], np.int64), onset_goal_positions=goal_world.astype(
            np.float32),
        round_times=np.array(plan.rounds, np.float32).reshape(-1, 2),
        hand_rgb=np.stack([plan.skin, plan.skin * LEFT_TINT]).astype(np.float32),
    )


def _take_files(root: Path, cfg: SynthConfig, plan: TakePlan) -> dict[str, Any]:
    """Simulate, render, label and write one take; returns its takes.json entry and episode runs."""
    sim = simulate_take(cfg, plan)
    vis = render_take(cfg, plan, sim)
    valid = label_validity(cfg, plan, vis)
    rng = np.random.default_rng([cfg.seed, plan.index, 13])
    views = np.where(vis["visible"], rng.integers(3, 7, valid.shape), rng.integers(2, 4, valid.shape))
    noise = np.random.default_rng([cfg.seed, plan.index, 17]).normal(0.0, LABEL_NOISE_M, sim.joints.shape)
    hand_json, cam_json = _annotation_json(plan, sim, valid, views, noise)
    split_dir = root / "annotations" / "ego_pose" / plan.split
    atomic_write_json(split_dir / "hand" / "annotation" / f"{plan.take_uid}.json", hand_json, indent=None)
    atomic_write_json(split_dir / "camera_pose" / f"{plan.take_uid}.json", cam_json, indent=None)
    n_video = int(round(plan.duration * FPS))
    _write_video(root / "takes" / plan.take_name / VIDEO_RELPATH, vis["frames"], sim.frame_numbers, n_video, cfg.crf)
    with atomic_path(root / "egosynth" / "gt" / f"{plan.take_uid}.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **_ground_truth(plan, sim, vis, valid, noise))
    ann_fn = sim.frame_numbers[sim.annotated]
    objs = plan.objects
    take = {
        "take_uid": plan.take_uid,
        "take_name": plan.take_name,
        "parent_task_name": plan.parent_scenario,
        "task_name": plan.scenario,
        "root_dir": f"takes/{plan.take_name}",
        "duration_sec": _r(n_video / FPS),
        "best_exo": None,
        "capture": {"capture_name": plan.take_name, "university_name": "egosynth"},
        "frame_aligned_videos": {EGO_CAMERA: {"rgb": {"relative_path": VIDEO_RELPATH}}},
        "egosynth": {
            "prompt": plan.prompt, "task_family": plan.family, "target_object": objs[plan.target].name,
            "destination_object": objs[plan.dest].name if plan.dest is not None else None,
            "objects": [o.name for o in objs], "lookalikes": [objs[i].name for i in plan.scene.lookalikes],
            "egomotion_level": _r(plan.egomotion_level), "acting_hand": plan.acting_hand, "split": plan.split,
            "rest_sec": _r(plan.rest_sec),
        },
    }
    return {"take": take, "runs": [(int(ann_fn[0]), int(ann_fn[-1]), len(ann_fn))]}


def _family_schedule(cfg: SynthConfig) -> list[tuple[int, str, str]]:
    """(index, split, family) of every take: families cycle within each split, so all splits see all tasks."""
    fams = list(cfg.families or FAMILIES)
    rng = np.random.default_rng([cfg.seed, 3])
    rng.shuffle(fams)
    out, index = [], 0
    for split in SPLITS:
        n = int(cfg.num_takes.get(split, 0))
        order = [fams[(index + i) % len(fams)] for i in range(n)]  # one round-robin across all splits
        rng.shuffle(order)
        for fam in order:
            out.append((index, split, fam))
            index += 1
    return out


def _generate_one(args) -> dict[str, Any]:
    root, cfg, index, split, family = args
    return _take_files(Path(root), cfg, plan_take(cfg, index, split, family))


def _manifest(cfg: SynthConfig, takes: list[dict]) -> dict[str, Any]:
    return {
        "generator": GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "preset": cfg.preset,
        "seed": cfg.seed,
        "config": json.loads(json.dumps(asdict(cfg))),
        "num_takes": len(takes),
        "takes": [{"take_uid": t["take_uid"], "take_name": t["take_name"], "split": t["egosynth"]["split"],
                   "task_family": t["egosynth"]["task_family"], "prompt": t["egosynth"]["prompt"]} for t in takes],
        "layout": "EgoExo4D (takes.json, annotations/splits.json, annotations/ego_pose/{split}/hand/annotation, "
                  "annotations/ego_pose/{split}/camera_pose, takes/<take_name>/frame_aligned_videos)",
    }


def _same_data(old_config: dict | None, cfg: SynthConfig) -> bool:
    """True if a stored config generates the same data as ``cfg`` (``workers`` does not change the data)."""
    if not isinstance(old_config, dict):
        return False
    new = json.loads(json.dumps(asdict(cfg)))
    return {k: v for k, v in old_config.items() if k != "workers"} == {k: v for k, v in new.items() if k != "workers"}


def _progress(it, total: int, enabled: bool):
    if not enabled:
        return it
    from tqdm.auto import tqdm  # only for the progress bar

    return tqdm(it, total=total, desc="egosynth takes", unit="take")


def generate_egosynth(out_dir: str | Path, preset: str = "tiny", seed: int = 0, overwrite: bool = False,
                      progress: bool = True, **overrides: Any) -> Path:
    """Generate an EgoSynth dataset in the EgoExo4D layout at ``out_dir`` and return its path.

    Deterministic from (preset, seed, overrides); ``overrides`` are SynthConfig fields (e.g. ``workers=2``).
    If ``out_dir`` already holds a complete generation of this version with the same parameters it is
    returned as is; any other existing folder needs ``overwrite=True``.
    """
    cfg = make_config(preset, seed, **overrides)
    out_dir = Path(out_dir)
    manifest_path = out_dir / "manifest.json"
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        overwrite = True  # an empty folder (e.g. made by the user for it) holds nothing to protect
    if out_dir.exists() and not overwrite:
        if manifest_path.exists():
            try:
                old = json.loads(manifest_path.read_text())
            except json.JSONDecodeError:
                old = None
            if old is not None and old.get("version") == GENERATOR_VERSION and _same_data(old.get("config"), cfg):
                return out_dir
        raise FileExistsError(f"out_dir: {out_dir} already exists (and is not this very generation); "
                              "pass overwrite=True (CLI: --overwrite) to replace it")
    jobs = _family_schedule(cfg)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        args = [(str(tmp), cfg, i, split, fam) for i, split, fam in jobs]
        if cfg.workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=cfg.workers) as pool:
                results = list(_progress(pool.map(_generate_one, args), len(jobs), progress))
        else:
            results = list(_progress(map(_generate_one, args), len(jobs), progress))
        takes = [r["take"] for r in results]
        atomic_write_json(tmp / "takes.json", takes)
        t2s = {t["take_uid"]: t["egosynth"]["split"] for t in takes}
        atomic_write_json(tmp / "annotations" / "splits.json", {
            "take_uid_to_split": t2s,
            "split_to_take_uids": {s: [u for u, v in t2s.items() if v == s] for s in SPLITS},
        })
        for split in SPLITS:
            tasks = sorted({t["task_name"] for t in takes if t["egosynth"]["split"] == split})
            episodes = []
            for r in results:
                t = r["take"]
                if t["egosynth"]["split"] != split:
                    continue
                for start, end, length in r["runs"]:
                    episodes.append({"episode_index": len(episodes), "take_uid": t["take_uid"], "start_frame": start,
                                     "end_frame": end, "length": length, "task_index": tasks.index(t["task_name"]),
                                     "tasks": [t["egosynth"]["prompt"]]})
            atomic_write_json(tmp / "annotations" / "egghand_episodes" / f"{split}.json", {
                "tasks": [{"task_index": i, "task": name} for i, name in enumerate(tasks)], "episodes": episodes})
        atomic_write_json(tmp / "manifest.json", _manifest(cfg, takes))  # last: marks the folder complete
    return out_dir


def load_ground_truth(root: str | Path, take_uid: str) -> dict[str, np.ndarray]:
    """The ground-truth arrays of one generated take (see the package docstring)."""
    path = Path(root) / "egosynth" / "gt" / f"{take_uid}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no EgoSynth ground truth for take {take_uid!r}")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
