"""EgoSynth windows with what the encoder is pretrained to read from them (the generator's ground truth).

``GroundedWindows(prep_dir, split, raw_dir)`` serves the windows of a prepared EgoSynth split together with,
per window, from ``raw_dir/egosynth/gt/{take_uid}.npz``:

- ``target`` (3,): the prompt's target object (its centre) at the current frame, in the window's canonical
  frame (metres);
- ``destination`` (3,) and ``has_destination``: the same for the prompt's destination object (zeros and
  False when the task has none);
- ``time_to_onset``: seconds from the current frame to the next move's onset, clipped to [0, MAX_ONSET_S];
- ``cue`` (4,): the scene's onset cue (the lamp's phase, 0 = a round just ended, 1 = go) at the 4 video frames;
- where things are in the 4 video frames, for the encoder's pointer: ``target_uv`` / ``destination_uv`` /
  ``cue_uv`` (4, 2), the projection of the object's centre (the lamp's panel) in image coordinates scaled to
  [0, 1) (x right, y down), with ``*_seen`` (4,) True where it is in view with at least ``MIN_SEEN_PIXELS``
  visible pixels; and every object of the scene at the current frame: ``object_uv`` (MAX_OBJECTS, 2),
  ``object_position`` (MAX_OBJECTS, 3) canonical, ``object_seen`` (MAX_OBJECTS,) (False past the last object).

Only EgoSynth has these labels; they are never used by EggHand training (the frozen encoder's features are).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from egghand_lib.batch import VIDEO_OFFSETS, collate_windows
from egghand_lib.data.prepared import manifest_digest
from egghand_lib.data.windows import WindowDataset
from egghand_lib.geometry import transform_points

MAX_ONSET_S = 2.0  # the longest wait worth telling apart (the observation is 2 s long)
MAX_OBJECTS = 12  # objects per scene served per window (EgoSynth scenes have fewer)
MIN_SEEN_PIXELS = 4  # at the renderer's resolution: fewer visible pixels than this is not "seen"
GROUND_TRUTH_DIR = Path("egosynth") / "gt"


def _project(E: np.ndarray, K: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points X (N, 3) through a camera (E world -> camera (3, 4), K (3, 3)) -> (uv (N, 2) scaled to
    the image's size, in front (N,) bool). The image is (2 cx) x (2 cy) pixels, as EgoSynth renders it."""
    Xc = X @ E[:3, :3].T + E[:3, 3]
    z = np.where(Xc[:, 2] > 1e-3, Xc[:, 2], 1.0)
    uv = np.stack([(K[0, 0] * Xc[:, 0] / z + K[0, 2]) / (2 * K[0, 2]),
                   (K[1, 1] * Xc[:, 1] / z + K[1, 2]) / (2 * K[1, 2])], -1)
    inside = (Xc[:, 2] > 1e-3) & (uv >= 0).all(-1) & (uv < 1).all(-1)
    return uv.astype(np.float32), inside


def _take_labels(raw_dir: Path, take_uid: str) -> dict[str, np.ndarray]:
    path = raw_dir / GROUND_TRUTH_DIR / f"{take_uid}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no EgoSynth ground truth for take {take_uid} (is {raw_dir} the EgoSynth "
                                "folder the prepared data was made from?)")
    with np.load(path, allow_pickle=False) as z:
        need = ("frame_numbers", "target_centers", "destination_centers", "target_index", "destination_index",
                "time_to_onset", "cue_phase", "object_centers", "object_pixels", "lamp_center", "lamp_pixels")
        missing = [k for k in need if k not in z.files]
        if missing:
            raise ValueError(f"{path}: ground truth lacks {missing} (made by an older EgoSynth generator?)")
        return {k: np.asarray(z[k]) for k in need}


def scene_objects(raw_dir: str | Path, take_uid: str, frame_index: int, canonical_T: np.ndarray
                  ) -> dict[str, dict]:
    """The objects of an EgoSynth take's scene at one frame, from its ground truth:
    {name ("red box"): {"position": (3,) centre in the frame of ``canonical_T`` (4, 4; world -> canonical,
    a window's), "role": "target" | "destination" | "look-alike" | "other", "rgb": (3,) in [0, 1]}}."""
    path = Path(raw_dir) / GROUND_TRUTH_DIR / f"{take_uid}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no EgoSynth ground truth for take {take_uid}")
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in ("object_names", "object_centers", "object_rgb", "lookalike_indices") if k not in z.files]
        if missing:
            raise ValueError(f"{path}: ground truth lacks {missing} (made by an older EgoSynth generator?)")
        t = int(np.searchsorted(z["frame_numbers"], int(frame_index)))
        if t >= len(z["frame_numbers"]) or int(z["frame_numbers"][t]) != int(frame_index):
            raise ValueError(f"{path}: frame {int(frame_index)} is not in the ground truth")
        centres = transform_points(np.asarray(canonical_T, np.float64), z["object_centers"][t].astype(np.float64))
        roles = {**{int(k): "look-alike" for k in z["lookalike_indices"]},
                 int(z["target_index"]): "target", int(z["destination_index"]): "destination"}
        return {str(name): {"position": centres[k].astype(np.float32), "role": roles.get(k, "other"),
                            "rgb": z["object_rgb"][k].astype(np.float32)}
                for k, name in enumerate(z["object_names"])}


class GroundedWindows(torch.utils.data.Dataset):
    """Windows of ``prep_dir``'s ``split`` (every ``stride``-th) with their grounding labels (module docstring).

    Items: ``frames`` (4, 3, H, W) uint8, ``task`` str, ``target`` (3,), ``destination`` (3,),
    ``has_destination`` bool, ``time_to_onset`` float, ``cue`` (4,) float, and the pointer's labels
    (``{target,destination,cue}_uv`` (4, 2), ``*_seen`` (4,), ``object_uv`` / ``object_position`` /
    ``object_seen``); ``collate_fn`` stacks them.
    """

    collate_fn = staticmethod(collate_windows)

    def __init__(self, prep_dir: str | Path, split: str, raw_dir: str | Path, stride: int = 1,
                 protocol: str = "future"):
        if stride < 1:
            raise ValueError(f"stride: must be >= 1, got {stride}")
        self.windows = WindowDataset(prep_dir, split, protocol=protocol)
        self.stride = int(stride)
        raw_dir = Path(raw_dir)
        a = self.windows.arrays()
        self.index = np.arange(0, len(self.windows), stride)
        n = len(self.index)
        self.target = np.zeros((n, 3), np.float32)
        self.destination = np.zeros((n, 3), np.float32)
        self.has_destination = np.zeros(n, bool)
        self.time_to_onset = np.zeros(n, np.float32)
        self.cue = np.zeros((n, len(VIDEO_OFFSETS)), np.float32)
        f = len(VIDEO_OFFSETS)
        self.uv = {k: np.zeros((n, f, 2), np.float32) for k in ("target", "destination", "cue")}
        self.seen = {k: np.zeros((n, f), bool) for k in ("target", "destination", "cue")}
        self.object_uv = np.zeros((n, MAX_OBJECTS, 2), np.float32)
        self.object_position = np.zeros((n, MAX_OBJECTS, 3), np.float32)
        self.object_seen = np.zeros((n, MAX_OBJECTS), bool)
        labels: dict[str, dict[str, np.ndarray]] = {}
        for row, i in enumerate(self.index):
            uid = str(a["take_uid"][i])
            if uid not in labels:
                labels[uid] = _take_labels(raw_dir, uid)
            gt = labels[uid]
            frames = gt["frame_numbers"]
            t = int(np.searchsorted(frames, int(a["frame_index"][i])))
            if t >= len(frames) or frames[t] != int(a["frame_index"][i]):
                raise ValueError(f"take {uid}: frame {int(a['frame_index'][i])} is not in its ground truth")
            T = a["canonical_T"][i].astype(np.float64)
            self.target[row] = transform_points(T, gt["target_centers"][t].astype(np.float64))
            if int(gt["destination_index"]) >= 0:
                self.destination[row] = transform_points(T, gt["destination_centers"][t].astype(np.float64))
                self.has_destination[row] = True
            self.time_to_onset[row] = min(float(gt["time_to_onset"][t]), MAX_ONSET_S)  # inf (no onset) -> max
            # the 4 video frames as the window holds them (clamped inside its episode), looked up by frame number
            episode = self.windows.episode_of(i)
            shown = np.searchsorted(frames, episode.frame_numbers[a["frame_indices"][i]])
            self.cue[row] = gt["cue_phase"][shown]
            self._where(row, gt, episode, a["frame_indices"][i], shown, T)

    def _where(self, row: int, gt: dict, episode, frame_indices: np.ndarray, shown: np.ndarray, T: np.ndarray
               ) -> None:
        """The pointer's labels of one window (module docstring): projections into its 4 video frames."""
        K = episode.intrinsics.astype(np.float64)
        ti, di = int(gt["target_index"]), int(gt["destination_index"])
        n_obj = min(gt["object_centers"].shape[1], MAX_OBJECTS)
        for k, (fi, t) in enumerate(zip(frame_indices, shown, strict=True)):
            E = episode.extrinsics[fi].astype(np.float64)
            X = gt["object_centers"][t].astype(np.float64)
            uv, inside = _project(E, K, X)
            seen = inside & (gt["object_pixels"][t] >= MIN_SEEN_PIXELS)
            self.uv["target"][row, k], self.seen["target"][row, k] = uv[ti], seen[ti]
            if di >= 0:
                self.uv["destination"][row, k], self.seen["destination"][row, k] = uv[di], seen[di]
            lamp_uv, lamp_inside = _project(E, K, gt["lamp_center"].astype(np.float64)[None])
            self.uv["cue"][row, k] = lamp_uv[0]
            self.seen["cue"][row, k] = lamp_inside[0] and gt["lamp_pixels"][t] >= MIN_SEEN_PIXELS
            if k == len(frame_indices) - 1:  # the current frame
                self.object_uv[row, :n_obj], self.object_seen[row, :n_obj] = uv[:n_obj], seen[:n_obj]
                self.object_position[row, :n_obj] = transform_points(T, X[:n_obj])

    def __len__(self) -> int:
        return len(self.index)

    def fingerprint(self) -> dict:
        """Identity of these windows (for a training run's settings): the prepared data, split and stride."""
        return {"source": "egosynth-grounded", "prep_manifest_sha256": manifest_digest(self.windows.prep_dir),
                "split": self.windows.split, "stride": self.stride}

    def __getitem__(self, row: int) -> dict:
        i = int(self.index[row])
        return {
            "frames": torch.from_numpy(self.windows.frames_of(i)).permute(0, 3, 1, 2),
            "task": str(self.windows.arrays()["task"][i]),
            "target": torch.from_numpy(self.target[row]),
            "destination": torch.from_numpy(self.destination[row]),
            "has_destination": torch.tensor(bool(self.has_destination[row])),
            "time_to_onset": torch.tensor(float(self.time_to_onset[row])),
            "cue": torch.from_numpy(self.cue[row]),
            **{f"{k}_uv": torch.from_numpy(self.uv[k][row]) for k in self.uv},
            **{f"{k}_seen": torch.from_numpy(self.seen[k][row]) for k in self.seen},
            "object_uv": torch.from_numpy(self.object_uv[row]),
            "object_position": torch.from_numpy(self.object_position[row]),
            "object_seen": torch.from_numpy(self.object_seen[row]),
        }
