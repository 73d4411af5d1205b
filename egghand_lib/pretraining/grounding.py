"""EgoSynth windows with what the encoder is pretrained to read from them (the generator's ground truth).

``GroundedWindows(prep_dir, split, raw_dir)`` serves the windows of a prepared EgoSynth split together with,
per window, from ``raw_dir/egosynth/gt/{take_uid}.npz``:

- ``target`` (3,): the prompt's target object (its centre) at the current frame, in the window's canonical
  frame (metres);
- ``destination`` (3,) and ``has_destination``: the same for the prompt's destination object (zeros and
  False when the task has none);
- ``time_to_onset``: seconds from the current frame to the next move's onset, clipped to [0, MAX_ONSET_S];
- ``cue`` (4,): the scene's onset cue (the lamp's phase, 0 = a round just ended, 1 = go) at the 4 video frames.

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
GROUND_TRUTH_DIR = Path("egosynth") / "gt"


def _take_labels(raw_dir: Path, take_uid: str) -> dict[str, np.ndarray]:
    path = raw_dir / GROUND_TRUTH_DIR / f"{take_uid}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no EgoSynth ground truth for take {take_uid} (is {raw_dir} the EgoSynth "
                                "folder the prepared data was made from?)")
    with np.load(path, allow_pickle=False) as z:
        need = ("frame_numbers", "target_centers", "destination_centers", "destination_index", "time_to_onset",
                "cue_phase")
        missing = [k for k in need if k not in z.files]
        if missing:
            raise ValueError(f"{path}: ground truth lacks {missing} (made by an older EgoSynth generator?)")
        return {k: np.asarray(z[k]) for k in need}


class GroundedWindows(torch.utils.data.Dataset):
    """Windows of ``prep_dir``'s ``split`` (every ``stride``-th) with their grounding labels (module docstring).

    Items: ``frames`` (4, 3, H, W) uint8, ``task`` str, ``target`` (3,), ``destination`` (3,),
    ``has_destination`` bool, ``time_to_onset`` float, ``cue`` (4,) float; ``collate_fn`` stacks them.
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
            shown = self.windows.episode_of(i).frame_numbers[a["frame_indices"][i]]
            self.cue[row] = gt["cue_phase"][np.searchsorted(frames, shown)]

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
        }
