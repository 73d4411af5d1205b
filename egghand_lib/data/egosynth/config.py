"""EgoSynth's parameters: the version, the on-disk constants, SynthConfig and the size presets.

Everything a generation depends on is a field of ``SynthConfig`` and is stored in ROOT/manifest.json, so
a folder can be regenerated exactly from its manifest. ``GENERATOR_VERSION`` changes whenever the data a
seed produces changes in meaning; prepared folders made from another EgoSynth version are refused
(``check_generator_version``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GENERATOR_NAME = "egghand_lib.data.egosynth"
GENERATOR_VERSION = "egosynth-2.1"
EGO_CAMERA = "aria01"
VIDEO_RELPATH = "frame_aligned_videos/aria01_214-1.mp4"
FPS = 30
STRIDE = 3  # annotations on every 3rd frame (10 fps)
SPLITS = ("train", "val", "test")
# The task families (their scripts are in tasks.py). Every split of a generation cycles through them.
FAMILIES: tuple[str, ...] = ("pick_lift", "place", "pour", "twist", "press", "wipe", "handover", "tap")


@dataclass
class SynthConfig:
    """All parameters of a generation; stored in manifest.json."""

    preset: str = "tiny"
    seed: int = 0
    num_takes: dict[str, int] = field(default_factory=lambda: {"train": 2, "val": 1, "test": 1})
    duration_sec: tuple[float, float] = (5.0, 6.0)  # per take, uniform
    image_size: int = 224
    hfov_deg: float = 70.0  # horizontal field of view of the pinhole camera
    num_objects: tuple[int, int] = (5, 6)  # objects on the table: target, destination, look-alikes, others
    families: tuple[str, ...] = ()  # empty: all task families
    egomotion_mix: tuple[float, float, float] = (0.3, 0.5, 0.2)  # fractions of still / moderate / strong clips
    rest_sec: float = 0.8  # the hands rest this long between rounds of the task; the lamp goes red -> green over it
    occlusion_drop_prob: float = 0.7  # a joint hidden behind the other hand or an object loses its label
    self_occlusion_drop_prob: float = 0.1  # a joint hidden by its own hand loses its label
    joint_dropout_rate: float = 0.02  # random missing labels (bursts of ~3 frames), per joint and frame
    hand_dropout_rate: float = 0.005  # a whole hand missing for ~1 s, per hand and frame
    first_frame_range: tuple[int, int] = (9, 60)  # 30 fps frame number of the first annotation
    crf: int = 12  # libx264 quality (lower = better)
    workers: int = 1  # processes generating takes in parallel

    def __post_init__(self) -> None:
        unknown = set(self.families) - set(FAMILIES)
        if unknown:
            raise ValueError(f"families: unknown {sorted(unknown)}; expected a subset of {list(FAMILIES)}")
        if set(self.num_takes) - set(SPLITS) or any(int(n) < 0 for n in self.num_takes.values()):
            raise ValueError(f"num_takes: expected non-negative counts for splits {SPLITS}, got {self.num_takes}")
        if self.image_size < 64:
            raise ValueError(f"image_size: expected >= 64, got {self.image_size}")
        if not 0 < self.duration_sec[0] <= self.duration_sec[1]:
            raise ValueError(f"duration_sec: expected 0 < min <= max, got {self.duration_sec}")
        if not 4 <= self.num_objects[0] <= self.num_objects[1] <= 8:
            raise ValueError(f"num_objects: expected 4 <= min <= max <= 8 (target, look-alikes, ...), "
                             f"got {self.num_objects}")
        if not 0.3 <= self.rest_sec <= 1.9:
            raise ValueError(f"rest_sec: expected 0.3-1.9 s (a rest must fit in the 2 s a window observes), "
                             f"got {self.rest_sec}")
        for name in ("occlusion_drop_prob", "self_occlusion_drop_prob", "joint_dropout_rate", "hand_dropout_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1], got {getattr(self, name)}")

    @property
    def focal(self) -> float:
        return self.image_size / 2 / math.tan(math.radians(self.hfov_deg) / 2)

    @property
    def intrinsics(self) -> np.ndarray:
        f, c = self.focal, self.image_size / 2
        return np.array([[f, 0, c], [0, f, c], [0, 0, 1]], dtype=np.float64)


PRESETS: dict[str, dict[str, Any]] = {
    # Both presets render 128 px frames: enough for the 64-96 px video models of the offline path (a prepared
    # folder resizes them to its own size); pass image_size=224 for full-size frames.
    # Used by every test of the project: 4 takes of 4.5-5.5 s (4 task families), a few seconds to generate.
    "tiny": dict(num_takes={"train": 2, "val": 1, "test": 1}, duration_sec=(4.5, 5.5), first_frame_range=(3, 24),
                 image_size=128),
    # Enough for a small model to learn the tasks: every family in every split, ~24,000 annotated frames
    # (~2.5 minutes on 2 cores). The probes of bench/predictability.py learn more of what the scene reveals
    # from more takes, so the train split is as large as that budget allows.
    "bench": dict(num_takes={"train": 144, "val": 24, "test": 24}, duration_sec=(11.0, 14.0), image_size=128,
                  workers=2),
}
_TUPLE_FIELDS = ("duration_sec", "num_objects", "families", "egomotion_mix", "first_frame_range")


def make_config(preset: str = "tiny", seed: int = 0, **overrides: Any) -> SynthConfig:
    """A SynthConfig from a preset name plus field overrides."""
    if preset not in PRESETS:
        raise ValueError(f"preset: unknown {preset!r}; expected one of {sorted(PRESETS)}")
    names = {f.name for f in dataclasses.fields(SynthConfig)}
    bad = set(overrides) - names
    if bad:
        raise ValueError(f"unknown SynthConfig field(s) {sorted(bad)}; expected some of {sorted(names)}")
    kw = {**PRESETS[preset], **overrides}
    for k in _TUPLE_FIELDS:
        if k in kw:
            kw[k] = tuple(kw[k])
    return SynthConfig(preset=preset, seed=int(seed), **kw)


def check_generator_version(version: object, where: str) -> None:
    """Refuse data made by another EgoSynth version (``version`` from an EgoSynth manifest.json).

    Non-EgoSynth data (``version`` None) passes. Raises ValueError naming ``where`` (a file or folder).
    """
    if version is None or version == GENERATOR_VERSION:
        return
    if not (isinstance(version, str) and version.startswith("egosynth")):
        return  # not EgoSynth data
    raise ValueError(
        f"{where}: made from EgoSynth version {version!r}; this toolkit reads {GENERATOR_VERSION!r} (EgoSynth 2 "
        "changed the task scripts, so windows of version 1 mean something else). Regenerate the data "
        "(`egghand synth --overwrite`) and prepare it again (`egghand prepare --overwrite`)")
