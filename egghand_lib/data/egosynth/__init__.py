"""EgoSynth 2: procedural egocentric two-hand manipulation clips written in the EgoExo4D on-disk layout.

EgoExo4D needs a licence and cannot be downloaded here, so the demo, the notebooks and the tests run on
EgoSynth: a person at a table with several coloured objects performs one of eight task families stated in a
prompt, seen by a head-mounted pinhole camera. The next second of hand motion is decided by the scene and the
prompt: the prompt names the target (and destination) by colour and kind among look-alikes, the frames show
where they are, and every move of a round starts at a fixed phase of the task (shown by a lamp on the table)
towards a place the past motion does not point to. Modules: ``config`` (version, SynthConfig, presets),
``scene`` (objects, look-alikes, lamp), ``hand_model`` (skeleton, keyframes), ``tasks`` (task scripts, prompts),
``simulation`` (plan and per-frame arrays), ``rendering`` (ray caster, labels), ``writer`` (files).

On-disk layout (ROOT = the output folder; the EgoExo4D reader ``egghand_lib.data.egoexo4d`` reads it):

    ROOT/takes.json
        list of {"take_uid", "take_name", "parent_task_name" (e.g. "Cooking"), "task_name" (the scenario,
        e.g. "Making Milk Tea"), "root_dir": "takes/<take_name>", "duration_sec", "best_exo": null,
        "capture": {...}, "frame_aligned_videos": {"aria01": {"rgb": {"relative_path":
        "frame_aligned_videos/aria01_214-1.mp4"}}},
        "egosynth": {"prompt", "task_family", "target_object", "destination_object" (or null), "objects",
                     "lookalikes", "egomotion_level", "acting_hand", "split", "rest_sec"}}   # EgoSynth-only
    ROOT/annotations/splits.json
        {"take_uid_to_split": {uid: "train" | "val" | "test"}, "split_to_take_uids": {split: [uid, ...]}}
    ROOT/annotations/ego_pose/{split}/hand/annotation/{take_uid}.json
        {"<frame_number>": [{"annotation3D": {"right_wrist": {"x", "y", "z", "num_views_for_3d"}, ...},
                             "annotation2D": {"aria01": {"right_wrist": {"x", "y", "placement": "auto"}}}}]}
        world metres, z up; frame numbers are 30 fps indices, every 3rd frame, starting at a take-specific
        offset (not 0). A joint that is not annotated (out of view, behind the camera, occluded and
        dropped, or randomly missing) is ABSENT from annotation3D and annotation2D.
    ROOT/annotations/ego_pose/{split}/camera_pose/{take_uid}.json
        {"metadata": {...}, "aria01": {"camera_intrinsics": [[fx,0,cx],[0,fy,cy],[0,0,1]],
                                       "camera_extrinsics": {"<frame_number>": [[r11,r12,r13,t1], ...]}}}
        world -> camera 3x4 (X_c = R X_w + t), OpenCV axes (+z forward, +y down), one per annotated frame.
        Intrinsics are in pixels of the stored video (a distortion-free pinhole, not Aria's fisheye).
    ROOT/annotations/egghand_episodes/{split}.json
        the prompts in the EggHand code-data format (configs/data/train.json): {"tasks": [{"task_index",
        "task"}], "episodes": [{"episode_index", "take_uid", "start_frame", "end_frame", "length",
        "task_index", "tasks": [prompt]}]}, one episode per contiguous run of annotated frames.
    ROOT/takes/<take_name>/frame_aligned_videos/aria01_214-1.mp4
        30 fps H.264 (libx264, yuv420p) ego RGB video, square (``image_size``: 128 in the presets, 224 by
        default), frame i has pts i. Only the 10 fps grid (frame numbers = offset mod 3) is rendered;
        every rendered image is shown for 3 frames (its own frame number and the 2 after it), so decoding an
        annotated frame number returns exactly the image rendered at that instant.
    ROOT/egosynth/gt/{take_uid}.npz
        ground truth before any dropout, per annotated frame (F frames, O objects, M onsets; world frame):
        frame_numbers (F,), joints (F, 42, 3) (true), labelled_joints (F, 42, 3) (what the annotation files say: the
        truth plus 1.5 mm label noise), valid (F, 42), in_view (F, 42), visible (F, 42) (the joint's own
        hand is the nearest surface at its pixel), extrinsics (F, 3, 4), intrinsics (3, 3);
        objects: object_positions (F, O, 3) (base centres), object_centers (F, O, 3), object_pixels (F, O)
        (visible pixels), object_names / object_kinds / object_colours (O,) str, object_rgb (O, 3),
        target_index, destination_index (-1: none), lookalike_indices (L,), target_centers (F, 3),
        destination_centers (F, 3) (NaN without a destination), target_pixels (F,);
        cue lamp: lamp_center (3,), lamp_pixels (F,), cue_phase (F,) (0 -> 1 while the hands rest, 1 during a
        round), cue_go (F,) bool (a round is under way: green), lamp_rgb (F, 3), time_to_onset (F,) (seconds
        to the next onset, inf if none);
        onsets: onset_times (M,) s, onset_frames (M,) 30 fps numbers, onset_hands (M,) "right" | "left" |
        "both", onset_moves (M,) (reach, lift, lower, carry, put_down, hold, lid, play, to_middle, hop, home),
        onset_goals (M,) object index (-1: a body-relative place), onset_goal_positions (M, 3),
        round_times (R, 2) (first onset, back at rest); hand_rgb (2, 3) (right, left base colours in [0, 1]).
    ROOT/manifest.json   written LAST: generator name and version, preset, seed, every parameter, the takes.

Generation builds the whole folder in a hidden sibling (``egghand_lib.io.atomic_dir``) and renames it at
the end, so an interrupted run never leaves a folder that looks complete. Everything is deterministic
from the seed (each take has its own random stream, so takes can be generated in parallel).
"""

from egghand_lib.data.egosynth.config import (
    EGO_CAMERA,
    FAMILIES,
    FPS,
    GENERATOR_NAME,
    GENERATOR_VERSION,
    PRESETS,
    SPLITS,
    STRIDE,
    VIDEO_RELPATH,
    SynthConfig,
    check_generator_version,
    make_config,
)
from egghand_lib.data.egosynth.scene import COLOURS, KINDS, lamp_colour
from egghand_lib.data.egosynth.writer import generate_egosynth, load_ground_truth, read_video_frames

__all__ = [
    "COLOURS", "EGO_CAMERA", "FAMILIES", "FPS", "GENERATOR_NAME", "GENERATOR_VERSION", "KINDS", "PRESETS", "SPLITS",
    "STRIDE", "VIDEO_RELPATH", "SynthConfig", "check_generator_version", "generate_egosynth", "lamp_colour",
    "load_ground_truth", "make_config", "read_video_frames",
]
