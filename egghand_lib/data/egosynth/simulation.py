"""Planning a take (scene, subject, task, prompt, ego-motion) and evaluating it on the 10 fps grid.

``plan_take`` draws everything random about take ``index`` from its own stream (seed, index), so takes
can be generated in any order or in parallel. ``simulate_take`` turns the plan into per-frame arrays in
the world frame: joints, object poses, camera extrinsics and the cue lamp's state.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import numpy as np

from egghand_lib.data.egosynth.config import FPS, STRIDE, SynthConfig
from egghand_lib.data.egosynth.hand_model import HandModel, Key, body_to_scene, euler_to_R, evaluate_keys, min_jerk
from egghand_lib.data.egosynth.scene import lamp_colour, plan_scene
from egghand_lib.data.egosynth.tasks import FAMILY_SPECS, HANDS, SIDE, TakePlan, acting_hand, make_prompt, script_take
from egghand_lib.geometry import look_at_extrinsics

GAZE_PULL = 0.2  # how far the gaze moves from the workspace centre towards where the hands are going


def plan_take(cfg: SynthConfig, index: int, split: str, family: str) -> TakePlan:
    """Decide scene, subject, task, prompt, motion keys and ego-motion of take ``index`` (deterministic)."""
    rng = np.random.default_rng([cfg.seed, index, 7])
    spec = FAMILY_SPECS[family]
    n_objects = int(rng.integers(cfg.num_objects[0], cfg.num_objects[1] + 1))
    scene = plan_scene(rng, spec["target"], spec["dest"], n_objects, opposite_sides=family == "handover")
    hand = acting_hand(rng, family, scene)
    prompt = make_prompt(rng, family, scene, hand)
    parent, scenario = spec["scenarios"][int(rng.integers(len(spec["scenarios"])))]
    mix = np.asarray(cfg.egomotion_mix, float)
    band = int(rng.choice(3, p=mix / mix.sum()))
    level = float([rng.uniform(0.0, 0.08), rng.uniform(0.15, 0.55), rng.uniform(0.6, 1.0)][band])
    duration = float(rng.uniform(*cfg.duration_sec))
    first = int(rng.integers(cfg.first_frame_range[0], cfg.first_frame_range[1] + 1))
    take_uid = str(uuid.UUID(bytes=rng.bytes(16), version=4))
    world_T = np.eye(4)
    world_T[:3, :3] = euler_to_R(np.array([rng.uniform(-math.pi, math.pi), 0.0, 0.0]))
    world_T[:3, 3] = [rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(-0.3, 0.3)]
    skin = np.array([0.88, 0.66, 0.52]) * rng.uniform(0.9, 1.05)
    sleeve = np.array([[0.25, 0.27, 0.33], [0.30, 0.33, 0.28], [0.35, 0.29, 0.25]][int(rng.integers(3))])
    plan = TakePlan(
        index=index, split=split, family=family, take_uid=take_uid, take_name=f"egosynth_{family}_{index:03d}",
        prompt=prompt, scenario=scenario, parent_scenario=parent, scene=scene, acting_hand=hand,
        egomotion_level=level, duration=duration, first_frame=first, hand=HandModel.sample(rng), skin=skin,
        sleeve=sleeve, world_T=world_T, rest_sec=cfg.rest_sec,
    )
    script_take(plan, duration + 1.0)
    plan_egomotion(plan, rng)
    return plan


def plan_egomotion(plan: TakePlan, rng: np.random.Generator) -> None:
    """Head sway, fast head turns and, at the strong level, shifting the weight at the table (the body and the
    hands at rest move a few centimetres), scaled by the take's ego-motion level."""
    lv, T = plan.egomotion_level, plan.duration + 2.0
    # Sway: 3 sinusoids per axis (yaw, pitch, roll): rows (amplitude rad, frequency Hz) and phases.
    amp = math.radians(0.3 + 4.0 * lv)
    plan.sway = np.stack([rng.uniform(0.3, 1.0, (3, 3)) * amp * np.array([[1.0], [0.7], [0.3]]),
                          rng.uniform(0.1, 0.9, (3, 3)) * (1 + lv), rng.uniform(0, 2 * math.pi, (3, 3))], -1)
    if lv > 0.3:
        t = rng.uniform(0.5, 2.0)
        while t < T:
            ang = math.radians(rng.uniform(15, 25 + 40 * lv)) * rng.choice([-1, 1])
            t_in, hold = rng.uniform(0.25, 0.6) / (0.5 + lv), rng.uniform(0.3, 1.2)
            plan.head_turns.append((t, t_in, hold, ang))
            t += t_in * 2 + hold + rng.exponential(2.0 / lv)
    if lv > 0.6:
        t = rng.uniform(0.3, 1.5)
        while t < T:
            dur = rng.uniform(0.8, 1.6)
            plan.body.step_to(t, dur, [rng.uniform(-0.04, 0.02), rng.uniform(-0.06, 0.06), rng.uniform(-0.12, 0.12)])
            t += dur + rng.uniform(0.5, 2.5)


@dataclass
class TakeSim:
    """Per-frame arrays of a take on its 10 fps grid (world frame). F = grid frames, O = objects."""

    frame_numbers: np.ndarray  # (F,) 30 fps numbers, 3 apart
    annotated: np.ndarray  # (F,) bool: frames written to the annotation files
    joints: np.ndarray  # (F, 42, 3) world, all joints (before any dropout)
    extrinsics: np.ndarray  # (F, 3, 4) world -> camera
    intrinsics: np.ndarray  # (3, 3)
    object_R: np.ndarray  # (F, O, 3, 3)
    object_p: np.ndarray  # (F, O, 3) base centres
    elbows: np.ndarray  # (F, 2, 3)
    lamp: np.ndarray  # (3,) world position of the lamp's post base
    cue_phase: np.ndarray  # (F,) 0 -> 1 while the hands rest (red -> green), 1 during a round
    cue_go: np.ndarray  # (F,) bool: a round is under way (the lamp is green)
    floor_z: float


def _hand_world(plan: TakePlan, keys: list[Key], hand: str, T: np.ndarray):
    pos, eul, fing = evaluate_keys(keys, T, plan.body)
    local = plan.hand.local_joints(fing[:, :5], fing[:, 5])
    if hand == "left":
        local = local * np.array([1, -1, 1])
    R = euler_to_R(eul)
    return pos[:, None, :] + local @ R.transpose(0, 2, 1), pos, R


def cue_state(plan: TakePlan, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(phase (F,), go (F,)) of the lamp at times T: during the rest before each round the phase rises
    linearly from 0 to 1 (red -> green); from a round's first onset until the hands rest again it is 1."""
    phase = np.zeros(len(T))
    go = np.zeros(len(T), bool)
    prev_end = 0.0
    for start, end in plan.rounds:
        resting = (T > prev_end) & (T < start)  # a frame exactly at a round's end belongs to the round
        phase[resting] = (T[resting] - prev_end) / max(start - prev_end, 1e-9)
        during = (T >= start) & (T <= end)
        phase[during], go[during] = 1.0, True
        prev_end = end
    after = T > prev_end
    phase[after] = np.clip((T[after] - prev_end) / plan.rest_sec, 0.0, 1.0)
    return phase, go


def simulate_take(cfg: SynthConfig, plan: TakePlan) -> TakeSim:
    """Evaluate the plan on the 10 fps grid covering the whole video (frame 0 .. duration)."""
    n_video = int(round(plan.duration * FPS))
    grid = np.arange(plan.first_frame % STRIDE, n_video, STRIDE)
    T = grid / FPS
    joints, wrist_p, wrist_R = {}, {}, {}
    for h, keys in (("right", plan.right_keys), ("left", plan.left_keys)):
        joints[h], wrist_p[h], wrist_R[h] = _hand_world(plan, keys, h, T)
    J = np.concatenate([joints["right"], joints["left"]], axis=1)
    B = plan.body(T)
    table = plan.scene.table

    # Objects: static, except while attached to a hand (rigidly, relative to the wrist at grasp time).
    n_obj = len(plan.objects)
    obj_R = np.zeros((len(T), n_obj, 3, 3))
    obj_p = np.zeros((len(T), n_obj, 3))
    for k, o in enumerate(plan.objects):
        obj_R[:, k] = euler_to_R(np.array([o.yaw, 0.0, 0.0]))
        obj_p[:, k] = o.pos
    for k, h, t0, t1 in sorted(plan.attach, key=lambda a: a[2]):
        keys = plan.right_keys if h == "right" else plan.left_keys
        _, p0, R0 = _hand_world(plan, keys, h, np.array([t0]))
        _, p1, R1 = _hand_world(plan, keys, h, np.array([t1]))
        i0 = min(int(np.searchsorted(T, t0)), len(T) - 1)
        rel_R = R0[0].T @ obj_R[i0, k]
        rel_p = R0[0].T @ (obj_p[i0, k] - p0[0])
        during = (T >= t0) & (T <= t1)
        obj_R[during, k] = wrist_R[h][during] @ rel_R
        obj_p[during, k] = wrist_p[h][during] + (wrist_R[h][during] @ rel_p)
        after = T > t1
        obj_R[after, k] = R1[0] @ rel_R
        obj_p[after, k] = p1[0] + R1[0] @ rel_p

    # Elbows, for drawing forearms: behind the wrist, towards the shoulder, a little lower.
    elbows = np.zeros((len(T), 2, 3))
    for n, h in enumerate(HANDS):
        sh = body_to_scene(B, np.broadcast_to(np.array([0.0, SIDE[h] * 0.2, table.z + 0.35]), (len(T), 3)))
        x = wrist_R[h][:, :, 0] * np.array([1.0, 1.0, 0.0])  # horizontal part of the hand's direction
        x /= np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)
        to_sh = sh - wrist_p[h]
        to_sh /= np.linalg.norm(to_sh, axis=-1, keepdims=True)
        d = 0.75 * to_sh - 0.35 * x
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        elbows[:, n] = wrist_p[h] + 0.26 * plan.hand.scale * d - np.array([0, 0, 0.06])

    # Camera: eye on the moving body; gaze at the workspace, drawn towards where the hands are going.
    eye_h = table.z + 0.5 + (plan.index % 3) * 0.03
    bob = 0.012 * plan.egomotion_level * np.sin(2 * math.pi * 1.8 * T) * (plan.egomotion_level > 0.6)
    eye = body_to_scene(B, np.broadcast_to(np.array([0.05, 0.0, eye_h]), (len(T), 3))) + np.stack(
        [0 * T, 0 * T, bob], -1)
    centre = body_to_scene(B, np.broadcast_to(np.array([table.front + 0.22, 0.0, table.z]), (len(T), 3)))
    pull = np.zeros((len(T), 3))
    for t_f, pt in sorted(plan.focus, key=lambda f: f[0]):
        s = min_jerk((T - t_f) / 0.4)[:, None]
        pull = (1 - s) * pull + s * (GAZE_PULL * (pt - centre))
    gaze = centre + pull
    yaw_off = np.zeros(len(T))
    for t0, t_in, hold, ang in plan.head_turns:
        yaw_off += ang * (min_jerk((T - t0) / t_in) - min_jerk((T - t0 - t_in - hold) / t_in))
    sway = (plan.sway[..., 0][None] * np.sin(2 * math.pi * plan.sway[..., 1][None] * T[:, None, None]
                                            + plan.sway[..., 2][None])).sum(-1)  # (F, 3)
    E_scene = np.zeros((len(T), 3, 4))
    for f in range(len(T)):
        d = euler_to_R(np.array([yaw_off[f] + sway[f, 0], 0.0, 0.0])) @ (gaze[f] - eye[f])
        horiz = np.hypot(d[0], d[1])
        el = math.atan2(d[2], horiz) + sway[f, 1]
        d = np.array([d[0] / horiz * math.cos(el), d[1] / horiz * math.cos(el), math.sin(el)])
        c, s_ = math.cos(sway[f, 2]), math.sin(sway[f, 2])
        E_scene[f] = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1]]) @ look_at_extrinsics(eye[f], eye[f] + d)

    # Scene -> world: one rigid motion for everything (the world frame of EgoExo4D is arbitrary up to yaw).
    G = plan.world_T
    J = J @ G[:3, :3].T + G[:3, 3]
    obj_R = G[:3, :3] @ obj_R
    obj_p = obj_p @ G[:3, :3].T + G[:3, 3]
    elbows = elbows @ G[:3, :3].T + G[:3, 3]
    E_world = E_scene @ np.linalg.inv(G)
    phase, go = cue_state(plan, T)
    return TakeSim(grid, grid >= plan.first_frame, J, E_world[:, :3, :], cfg.intrinsics, obj_R, obj_p, elbows,
                   plan.scene.lamp @ G[:3, :3].T + G[:3, 3], phase, go, float(G[2, 3]))


def lamp_rgb(sim: TakeSim) -> np.ndarray:
    """(F, 3) the lamp's colour in each grid frame."""
    return lamp_colour(sim.cue_phase)
