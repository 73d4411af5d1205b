"""Where the windows of a split come from: a prepared folder or LeRobot datasets.

Both give the same windows in the same order (``LeRobotWindowDataset`` is tested equal to ``WindowDataset``
on an export of the same episodes), so training and evaluation read either:

    ds = open_windows("train", prep_dir="data/prepared")              # WindowDataset
    ds = open_windows("train", lerobot_dir="data/prepared/lerobot")   # LeRobotWindowDataset of .../lerobot/train

A LeRobot folder is either a folder of datasets by split (``DIR/{split}``, what ``egghand prepare --lerobot``
writes to ``PREP/lerobot``) or one dataset (``DIR/meta/info.json``) whose episodes all belong to the split.
Statistics: the prepared folder's ``stats.json``, or the export's ``meta/egghand_stats.json`` (``ds.stats``).
"""

from __future__ import annotations

from pathlib import Path

from egghand_lib.data.lerobot_dataset import LeRobotWindowDataset, read_sidecar
from egghand_lib.data.windows import WindowDataset, check_edges

INFO = Path("meta") / "info.json"


def lerobot_split_root(lerobot_dir: str | Path, split: str) -> Path:
    """The LeRobot dataset that holds ``split``: ``lerobot_dir/split``, or ``lerobot_dir`` itself when it is one
    dataset whose episodes (``meta/egghand.json``) all belong to ``split``. FileNotFoundError otherwise."""
    root = Path(lerobot_dir)
    if (root / split / INFO).is_file():
        return root / split
    if (root / INFO).is_file():
        splits = sorted({str(e.get("split")) for e in read_sidecar(root)["episodes"]})
        if splits == [split]:
            return root
        raise FileNotFoundError(f"lerobot_dir: {root} is one LeRobot dataset of split(s) {splits}, not {split!r}")
    if not root.is_dir():
        raise FileNotFoundError(f"lerobot_dir: {root} not found")
    have = sorted(p.name for p in root.iterdir() if (p / INFO).is_file())
    raise FileNotFoundError(f"lerobot_dir: no LeRobot dataset for split {split!r} in {root} (expected "
                            f"{root / split / INFO}; datasets there: {have or 'none'})")


def open_windows(split: str, protocol: str = "future", *, prep_dir: str | Path | None = None,
                 lerobot_dir: str | Path | None = None, load_frames: bool = True,
                 edges: str = "mask") -> WindowDataset | LeRobotWindowDataset:
    """The windows of ``split``, from a prepared folder (``prep_dir``) or LeRobot datasets (``lerobot_dir``).

    Exactly one of the two must be given. ``load_frames=False`` skips image decoding (LeRobot only; a prepared
    folder memory-maps its frames, which costs nothing until they are read). ``edges``: the episode edges
    (docs/conventions.md, "Windows"); a LeRobot dataset gives the default ("mask") windows only.
    """
    if (prep_dir is None) == (lerobot_dir is None):
        raise ValueError("give exactly one of prep_dir (a prepared folder) or lerobot_dir (LeRobot datasets)")
    check_edges(edges)
    if prep_dir is not None:
        return WindowDataset(prep_dir, split, protocol=protocol, edges=edges)
    if edges != "mask":
        raise ValueError(f"edges={edges!r}: LeRobot datasets give windows with masked edges only; prepare the data "
                         "(egghand prepare) for the official padded or EgoH4's complete windows")
    return LeRobotWindowDataset(lerobot_split_root(lerobot_dir, split), protocol=protocol, load_frames=load_frames)


__all__ = ["lerobot_split_root", "open_windows"]
