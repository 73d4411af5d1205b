"""The encoder's pretraining labels: where the prompt's objects and the cue lamp are in each video frame."""

from __future__ import annotations

import numpy as np
import pytest

from egghand_lib.data.prepare import prepare_dataset
from egghand_lib.notebook_utils import renamed_target_prompts
from egghand_lib.pretraining.grounding import GROUND_TRUTH_DIR, GroundedWindows, scene_objects


def _hue_near(frame: np.ndarray, uv: np.ndarray, rgb: np.ndarray) -> bool:
    """Whether a pixel within 2 of image coordinates uv in [0, 1) has colour rgb once shading is divided out
    (chromaticity r, g, b / (r + g + b) within 0.05). Near, not at: a grasping hand can cover the centre."""
    h, w = frame.shape[:2]
    x, y = int(uv[0] * w), int(uv[1] * h)
    patch = frame[max(0, y - 2):y + 3, max(0, x - 2):x + 3].reshape(-1, 3)
    chroma = patch / np.maximum(patch.sum(-1, keepdims=True), 1e-6)
    return bool((np.abs(chroma - rgb / rgb.sum()).max(-1) < 0.05).any())


def test_pointer_labels_land_on_the_named_object_and_the_lamp(tiny_egosynth, tmp_path):
    # at 64 px (the suite's 32 px blend small objects into the table)
    prepare_dataset(tiny_egosynth.raw, tmp_path / "prep", splits=("train",), size=64, progress=False)
    ds = GroundedWindows(tmp_path / "prep", "train", tiny_egosynth.raw, stride=3)
    a = ds.windows.arrays()
    right, shifted, seen, lamp_right, lamp_seen = 0, 0, 0, 0, 0
    for row in range(len(ds)):
        item = ds[row]
        i = int(ds.index[row])
        with np.load(tiny_egosynth.raw / GROUND_TRUTH_DIR / f"{a['take_uid'][i]}.npz") as z:
            target_rgb = z["object_rgb"][int(z["target_index"])]
            lamp = z["lamp_rgb"][np.searchsorted(z["frame_numbers"], ds.windows.episode_of(i).frame_numbers[
                a["frame_indices"][i][-1]])]
        frame = item["frames"][-1].permute(1, 2, 0).numpy().astype(np.float64) / 255  # the current frame
        if item["target_seen"][-1]:
            seen += 1
            uv = item["target_uv"][-1].numpy()
            elsewhere = np.array([(uv[0] + 0.5) % 1.0, uv[1]])  # half an image across: a wrong label
            right += _hue_near(frame, uv, target_rgb)
            shifted += _hue_near(frame, elsewhere, target_rgb)
        if item["cue_seen"][-1]:
            lamp_seen += 1
            lamp_right += _hue_near(frame, item["cue_uv"][-1].numpy(), lamp)
    assert seen >= 0.8 * len(ds) and lamp_seen >= 0.8 * len(ds)
    # (the shifted label can land on a look-alike of the same colour: every scene has one)
    assert right >= 0.75 * seen and right > 3 * shifted, f"target's colour at its label: {right} of {seen} windows"
    assert lamp_right >= 0.8 * lamp_seen, f"the lamp's colour at its label in {lamp_right} of {lamp_seen} windows"
    # the target's canonical position is among the scene's objects' (the pointer's dense labels)
    close = [np.min(np.linalg.norm(ds.object_position[r] - ds.target[r], axis=-1)) for r in range(len(ds))]
    assert np.median(close) < 1e-4


def test_scene_objects_name_every_object_where_the_labels_put_them(tiny_egosynth, tmp_path):
    prepare_dataset(tiny_egosynth.raw, tmp_path / "prep", splits=("train",), progress=False)
    ds = GroundedWindows(tmp_path / "prep", "train", tiny_egosynth.raw, stride=7)
    a = ds.windows.arrays()
    for row in range(len(ds)):
        i = int(ds.index[row])
        objects = scene_objects(tiny_egosynth.raw, a["take_uid"][i], a["frame_index"][i], a["canonical_T"][i])
        roles = [o["role"] for o in objects.values()]
        assert roles.count("target") == 1 and "look-alike" in roles
        target = next(n for n, o in objects.items() if o["role"] == "target")
        assert target in a["task"][i]  # the prompt names its target ...
        assert np.allclose(objects[target]["position"], ds.target[row], atol=1e-5)  # ... where the labels put it
        renamed = renamed_target_prompts({"task": a["task"][i]}, objects)
        assert renamed and all(p == a["task"][i].replace(target, name) != a["task"][i]
                               for p, name in renamed.items())
    with pytest.raises(ValueError, match="frame 99999"):
        scene_objects(tiny_egosynth.raw, a["take_uid"][0], 99999, a["canonical_T"][0])
