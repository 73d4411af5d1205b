"""Task scripts: what the hands do in a take, as keyframes, built so that the next second needs the scene.

Every take names two objects (the target and a second object: the destination, or the next object to act
on) among look-alikes, and repeats rounds of one task family until it ends. A round is a chain of moves;
every move goes somewhere the scene or the prompt decides (one of the named objects, up to inspect, to the
middle for a handover, back to rest). Nothing in a round is a random pause: every move starts at a fixed
phase of the task (when the previous one ends, or ``rest_sec`` after the hands came to rest), which the
prompt states ("..., then ...") and the lamp shows (``scene.lamp_colour``). Successive rounds alternate
between the two named objects (or carry the target there and back), so the past motion shows where the
hands were, not where the next round goes: that needs where the named objects are (the frames) and which
is meant (the prompt).

Every onset is recorded (``Onset``: time, hands, move name, the object it goes to) for the ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from egghand_lib.data.egosynth.config import FAMILIES, FPS
from egghand_lib.data.egosynth.hand_model import Body, HandModel, Key, euler_to_R
from egghand_lib.data.egosynth.scene import REST_X, REST_Y, REST_Z, Scene

HANDS = ("right", "left")
# Every move from one place to another (reach, carry, hop, to the middle, home) is one minimum-jerk segment of
# this fixed duration: where it ends is decided by the scene and the prompt, and how it gets there is not a
# second unknown (a duration growing with distance, or way points, made the onset windows harder for every
# predictor alike without adding anything that the inputs reveal).
MOVE_SEC = 0.4
SIDE = {"right": -1.0, "left": 1.0}  # side of the body (scene y) of each hand

# family: target kinds, second-object kinds (the destination or the next object), scenarios (parent, name),
# prompt templates ({obj} and {dest} are object names, {hand} an optional " with your right hand").
_GRASPABLE = ("cup", "bottle", "jar", "box", "block", "ball")
FAMILY_SPECS: dict[str, dict] = {
    "pick_lift": dict(
        target=_GRASPABLE, dest=_GRASPABLE,
        scenarios=[("Organizing", "Sorting Groceries"), ("Organizing", "Packing a Box")],
        prompts=["Pick up the {obj}, lift it to look at it and put it back; then do the same with the {dest}.",
                 "Lift the {obj} and then the {dest}, one after the other, and set each down again.",
                 "Take turns: raise the {obj}, put it back, then raise the {dest}.",
                 "Inspect the {obj}, then the {dest}: lift each for a moment and return it."]),
    "place": dict(
        target=("cup", "box", "block", "ball", "jar"), dest=("plate", "bowl", "box"),
        scenarios=[("Organizing", "Tidying the Table"), ("Cooking", "Setting the Table")],
        prompts=["Move the {obj} next to the {dest}, then back to where it was.",
                 "Pick up the {obj}, set it down beside the {dest}, and return it afterwards.",
                 "Put the {obj} by the {dest}, then put it back.",
                 "Place the {obj} next to the {dest} and move it back again."]),
    "pour": dict(
        target=("cup", "bottle"), dest=("bowl",),
        scenarios=[("Cooking", "Making Milk Tea"), ("Cooking", "Making Coffee latte")],
        prompts=["Pour the {obj} into the {dest}, then put it back.",
                 "Pour water from the {obj} into the {dest}.",
                 "Lift the {obj}{hand}, pour it into the {dest} and set it down where it was.",
                 "Empty the {obj} into the {dest}, then return the {obj} to its place."]),
    "twist": dict(
        target=("jar", "bottle"), dest=("jar", "bottle"),
        scenarios=[("Cooking", "Opening a Jar"), ("Cooking", "Preparing a Drink")],
        prompts=["Hold the {obj} steady with one hand and twist its lid with the other; then the {dest}.",
                 "Twist the lids of the {obj} and of the {dest}, one after the other.",
                 "Unscrew the cap of the {obj} while your other hand holds it, then do the {dest}.",
                 "Open the {obj}, then the {dest}: grip each first, then turn its lid."]),
    "press": dict(
        target=("keypad",), dest=("keypad",),
        scenarios=[("Music", "Playing Piano - Scales and Arpeggios"), ("Music", "Playing Piano - Freeplaying")],
        prompts=["Play three notes on the {obj}, then on the {dest}{hand}.",
                 "Press the keys of the {obj} one finger at a time, then those of the {dest}{hand}.",
                 "Play three notes on the {obj} and three on the {dest}, thumb first{hand}.",
                 "Practise finger exercises on the {obj} and the {dest} in turn{hand}."]),
    "wipe": dict(
        target=("sponge",), dest=("plate", "box"),
        scenarios=[("Cleaning", "Cleaning the Table"), ("Cleaning", "Wiping the Counter")],
        prompts=["Wipe the {dest} with the {obj}, then put the {obj} back.",
                 "Clean the {dest} using the {obj}.", "Take the {obj}{hand} and scrub the {dest}.",
                 "Scrub the {dest} back and forth with the {obj} and return the {obj} to its place."]),
    "handover": dict(
        target=("ball", "block", "cup", "box"), dest=("plate", "bowl"),
        scenarios=[("Organizing", "Passing Objects"), ("Organizing", "Sorting Groceries")],
        prompts=["Pass the {obj} to your other hand and put it on the {dest}, then bring it back.",
                 "Hand the {obj} over to the other hand, set it on the {dest}, and return it.",
                 "Pick up the {obj}, pass it between your hands and put it on the {dest}; then back again.",
                 "Transfer the {obj} to the other hand and place it on the {dest}; then back again."]),
    "tap": dict(
        target=("block", "box", "jar", "ball", "cup"), dest=("block", "box", "jar", "ball", "cup", "bowl"),
        scenarios=[("Organizing", "Inspecting Objects"), ("Organizing", "Counting Items")],
        prompts=["Tap the {obj}, then the {dest}, and again.", "Touch the {obj} and then the {dest} with one finger.",
                 "Tap on the {obj}, then on the {dest}, and once more each.",
                 "Point at the {obj} and tap it, then tap the {dest}."]),
}
assert tuple(FAMILY_SPECS) == FAMILIES
# Families whose acting hand stays the same for the whole take (the prompt may name it).
_FIXED_HAND = ("pour", "press", "wipe")
_PHASE_PHRASES = ("", " Rest your hands between rounds.", " Pause briefly between rounds, until the lamp is green.")


@dataclass
class Onset:
    """The start of a move: time (s), the hands that start moving, what the move is, where it goes."""

    t: float
    hands: tuple[str, ...]
    move: str  # reach, lift, lower, carry, put_down, hold, lid, to_middle, hop, home
    goal: int  # index of the object the move goes to, -1 when it goes to a body-relative place
    goal_pos: np.ndarray  # (3,) scene frame: where the leading hand's grip point goes


@dataclass
class TakePlan:
    """Everything about a take that is decided before rendering."""

    index: int
    split: str
    family: str
    take_uid: str
    take_name: str
    prompt: str
    scenario: str
    parent_scenario: str
    scene: Scene
    acting_hand: str  # "right", "left", "both" (press), or the giver's hand of the first round (handover)
    egomotion_level: float
    duration: float
    first_frame: int
    hand: HandModel
    skin: np.ndarray
    sleeve: np.ndarray
    world_T: np.ndarray  # (4, 4) scene -> world
    rest_sec: float
    right_keys: list[Key] = field(default_factory=list)
    left_keys: list[Key] = field(default_factory=list)
    attach: list[tuple[int, str, float, float]] = field(default_factory=list)  # (object, hand, t0, t1)
    focus: list[tuple[float, np.ndarray]] = field(default_factory=list)  # where the gaze goes, from when
    onsets: list[Onset] = field(default_factory=list)
    rounds: list[tuple[float, float]] = field(default_factory=list)  # (first onset, all hands at rest) per round
    body: Body = field(default_factory=Body)
    head_turns: list[tuple[float, float, float, float]] = field(default_factory=list)  # t0, t_in, hold, angle
    sway: np.ndarray = field(default_factory=lambda: np.zeros((3, 3, 2)))

    @property
    def objects(self):
        return self.scene.objects

    @property
    def target(self) -> int:
        return self.scene.target

    @property
    def dest(self) -> int | None:
        return self.scene.dest


def fingers(closure: float, spread: float = 0.0) -> np.ndarray:
    return np.r_[np.full(5, closure), spread]


class Script:
    """Builds the keyframes of both hands, advancing a clock per hand; records onsets and rounds."""

    def __init__(self, plan: TakePlan) -> None:
        self.p = plan
        self.table = plan.scene.table
        self.keys = {"right": plan.right_keys, "left": plan.left_keys}
        self.clock = {"right": 0.0, "left": 0.0}
        self.obj_pos = [o.pos.copy() for o in plan.objects]
        self.round_start = 0.0
        for h in HANDS:
            self.keys[h].append(self.rest(h, 0.0))

    # -- timing -------------------------------------------------------------------------------------
    def add(self, hand: str, dur: float, pos, eul, fing, anchor: str = "world") -> float:
        self.clock[hand] += max(float(dur), 0.05)
        self.keys[hand].append(Key(self.clock[hand], anchor, np.asarray(pos, float), np.asarray(eul, float),
                                   np.asarray(fing, float)))
        return self.clock[hand]

    def hold_until(self, hand: str, t: float) -> None:
        if t > self.clock[hand] + 1e-6:
            k = self.keys[hand][-1]
            self.clock[hand] = t
            self.keys[hand].append(Key(t, k.anchor, k.pos, k.euler, k.fingers))

    def onset(self, hands, move: str, goal: int, goal_pos) -> float:
        """The given hands start a move together, as soon as the last of them is ready (a fixed phase)."""
        t = max(self.clock[h] for h in hands)
        for h in hands:
            self.hold_until(h, t)
        self.p.onsets.append(Onset(t, tuple(hands), move, goal, np.asarray(goal_pos, float).copy()))
        self.look(t, goal_pos)
        return t

    def begin_round(self, not_before: float = 0.0) -> None:
        """Both hands rest ``rest_sec`` after the last one came back (or after ``not_before``), then the round
        starts."""
        t = max(max(self.clock.values()), not_before) + self.p.rest_sec
        for h in HANDS:
            self.hold_until(h, t)
        self.round_start = t

    def end_round(self, hands=HANDS) -> None:
        for h in hands:
            self.go_rest(h)
        self.p.rounds.append((self.round_start, max(self.clock.values())))

    def look(self, t: float, point) -> None:
        self.p.focus.append((t, np.asarray(point, float)))

    # -- poses --------------------------------------------------------------------------------------
    def rest(self, hand: str, t: float) -> Key:
        pos = np.array([self.table.front + REST_X, SIDE[hand] * REST_Y, self.table.z + REST_Z])
        eul = np.array([-SIDE[hand] * 0.35, 0.1, 0.0])
        return Key(t, "body", pos, eul, np.array([0.2, 0.12, 0.12, 0.15, 0.18, 0.0]))

    def rest_point(self, hand: str) -> np.ndarray:
        return np.array([self.table.front + REST_X, SIDE[hand] * REST_Y, self.table.z + REST_Z])

    def go_rest(self, hand: str) -> float:
        k = self.rest(hand, 0.0)
        last = self.keys[hand][-1]
        if last.anchor == "body" and np.allclose(last.pos, k.pos):
            return self.clock[hand]
        return self.add(hand, MOVE_SEC, k.pos, k.euler, k.fingers, "body")

    def shoulder(self, hand: str) -> np.ndarray:
        return np.array([0.0, SIDE[hand] * 0.18, self.table.z + 0.4])

    def approach_yaw(self, hand: str, point) -> float:
        d = np.asarray(point)[:2] - self.shoulder(hand)[:2]
        return float(math.atan2(d[1], d[0]))

    def hand_pose(self, hand: str, grip_point, yaw: float, pitch: float, roll: float, closure: float,
                  fing: np.ndarray | None = None):
        """Wrist position and euler placing the hand's grip point (at ``closure``) on ``grip_point``."""
        eul = np.array([yaw, pitch, roll])
        g, _ = self.p.hand.grip(closure)
        if hand == "left":
            g = g * np.array([1, -1, 1])
        wrist = np.asarray(grip_point, float) - euler_to_R(eul) @ g
        return wrist, eul, fingers(closure) if fing is None else fing

    # -- object geometry ----------------------------------------------------------------------------
    def grip_point(self, k: int, pos=None) -> np.ndarray:
        o = self.p.objects[k]
        base = self.obj_pos[k] if pos is None else np.asarray(pos)
        if o.shape == "sphere":
            return base + np.array([0, 0, o.size[0]])
        return base + np.array([0, 0, min(0.7 * o.height, o.height - 0.012)])

    def top(self, k: int) -> np.ndarray:
        return self.obj_pos[k] + np.array([0, 0, self.p.objects[k].height])

    def grasp(self, hand: str, k: int, pitch: float = 0.55, roll: float = 0.0):
        """Reach straight to object k with the fingers opening to a pre-shape, then close on it.
        Returns (wrist, euler, closure)."""
        o = self.p.objects[k]
        gp = self.grip_point(k)
        yaw = self.approach_yaw(hand, gp)
        c_pre = self.p.hand.closure_for_width(o.grasp_width + 0.04)
        c = self.p.hand.closure_for_width(o.grasp_width)
        w_pre, e_pre, f_pre = self.hand_pose(hand, gp, yaw, pitch, roll, c_pre)
        self.add(hand, MOVE_SEC, w_pre, e_pre, f_pre)
        w, e, f = self.hand_pose(hand, gp, yaw, pitch, roll, c)
        self.add(hand, 0.15, w, e, f)
        return w, e, c

    def release(self, hand: str, k: int, start: float, wrist, eul, c: float, new_pos) -> None:
        """Object k moved with the hand from ``start`` to now; open the hand and lift it away."""
        self.p.attach.append((k, hand, start, self.clock[hand]))
        self.obj_pos[k] = np.asarray(new_pos, float).copy()
        opened = fingers(max(c - 0.25, 0.0))
        self.add(hand, 0.15, wrist, eul, opened)
        fwd = euler_to_R(eul)[:, 0]
        self.add(hand, 0.2, wrist + np.array([0, 0, 0.06]) - 0.04 * fwd, eul, opened)

    def carry(self, hand: str, wrist, eul, c: float, delta, fing=None) -> np.ndarray:
        """Move a held object straight by ``delta`` (3,); returns the new wrist position."""
        f = fingers(c) if fing is None else fing
        delta = np.asarray(delta, float)
        self.add(hand, MOVE_SEC, wrist + delta, eul, f)
        return wrist + delta

    def beside(self, k_dest: int, k_obj: int, direction) -> np.ndarray:
        """A table point next to the destination, on the side ``direction`` (xy) points to."""
        d = np.asarray(direction, float)[:2]
        d = d / max(np.linalg.norm(d), 1e-9)
        o, dst = self.p.objects[k_obj], self.p.objects[k_dest]
        xy = self.obj_pos[k_dest][:2] + d * (dst.footprint + o.footprint + 0.035)
        return self.table.clamp(xy, margin=o.footprint + 0.02)


# -------------------------------------------------------------------------------------------------
# One round of each family; round n. Rounds alternate between the two named objects (or go there and back).


def _side(s: Script, k: int) -> str:
    """The hand on the side of object k's current place."""
    return "right" if s.obj_pos[k][1] < 0 else "left"


def _other(hand: str) -> str:
    return "left" if hand == "right" else "right"


def _round_pick_lift(s: Script, n: int) -> None:
    k = (s.p.target, s.p.dest)[n % 2]
    hand = _side(s, k)
    s.onset([hand], "reach", k, s.grip_point(k))
    w, e, c = s.grasp(hand, k)
    t_g = s.clock[hand]
    up = np.array([-0.07, -SIDE[hand] * 0.05, 0.2])
    s.onset([hand], "lift", -1, s.grip_point(k) + up)
    e_up = e + np.array([0, -0.35, -SIDE[hand] * 0.4])
    s.add(hand, 0.4, w + up, e_up, fingers(c))
    s.onset([hand], "lower", k, s.grip_point(k))
    s.add(hand, 0.4, w, e, fingers(c))
    s.release(hand, k, t_g, w, e, c, s.obj_pos[k])
    s.onset([hand], "home", -1, s.rest_point(hand))
    s.end_round([hand])


def _round_place(s: Script, n: int) -> None:
    """Round 0 puts the target beside the destination, round 1 back in its place, and so on."""
    k, d = s.p.target, s.p.dest
    hand = _side(s, k)
    s.onset([hand], "reach", k, s.grip_point(k))
    w, e, c = s.grasp(hand, k)
    t_g = s.clock[hand]
    home = s.p.objects[k].pos
    goal = s.beside(d, k, home[:2] - s.obj_pos[d][:2]) if n % 2 == 0 else home.copy()
    s.onset([hand], "carry", d if n % 2 == 0 else k, s.grip_point(k, goal))
    w2 = s.carry(hand, w, e, c, goal - s.obj_pos[k])
    s.release(hand, k, t_g, w2, e, c, goal)
    s.onset([hand], "home", -1, s.rest_point(hand))
    s.end_round([hand])


def _round_pour(s: Script, n: int) -> None:
    k, d = s.p.target, s.p.dest
    hand = s.p.acting_hand
    obj, dst = s.p.objects[k], s.p.objects[d]
    s.onset([hand], "reach", k, s.grip_point(k))
    w, e, c = s.grasp(hand, k, pitch=0.35)
    t_g = s.clock[hand]
    side = float(np.sign(s.obj_pos[k][1] - s.obj_pos[d][1]) or 1.0)
    spout = s.obj_pos[d] + np.array([0, side * (dst.size[0] + 0.02), dst.height + obj.height * 0.6 + 0.06])
    s.onset([hand], "carry", d, spout)
    w2 = s.carry(hand, w, e, c, spout - s.grip_point(k))
    # Tilt towards the destination: roll about the finger axis (positive roll tips the top towards -y).
    tilt = e + np.array([0, 0, side * 1.6])
    s.add(hand, 0.35, w2, tilt, fingers(c))
    s.add(hand, 0.35, w2, e, fingers(c))
    s.onset([hand], "put_down", k, s.grip_point(k))  # back where it was
    w3 = s.carry(hand, w2, e, c, w - w2)
    s.release(hand, k, t_g, w3, e, c, s.obj_pos[k])
    s.onset([hand], "home", -1, s.rest_point(hand))
    s.end_round([hand])


def _round_twist(s: Script, n: int) -> None:
    """The hand away from the object holds it, the hand on its side twists the lid; the objects alternate."""
    k = (s.p.target, s.p.dest)[n % 2]
    hand = _side(s, k)
    other = _other(hand)
    o = s.p.objects[k]
    hold_pt = s.obj_pos[k] + np.array([0, 0, 0.45 * o.height])
    c_hold = s.p.hand.closure_for_width(o.grasp_width)
    s.onset([other], "hold", k, hold_pt)
    hw, he, hf = s.hand_pose(other, hold_pt, s.approach_yaw(other, hold_pt), 0.3, -SIDE[other] * 1.2, c_hold)
    s.add(other, MOVE_SEC, hw, he, hf)
    lid = s.top(k) + np.array([0, 0, 0.01])
    s.hold_until(hand, s.clock[other])
    s.onset([hand], "lid", k, lid)  # when the holding hand has arrived
    c_open = s.p.hand.closure_for_width(o.grasp_width + 0.03)
    c_lid = s.p.hand.closure_for_width(o.grasp_width * 0.9)
    yaw0 = s.approach_yaw(hand, lid)
    twist = -SIDE[hand] * 0.85  # counter-clockwise seen from above, mirrored per hand
    w0, e0, f0 = s.hand_pose(hand, lid, yaw0, 1.15, 0.0, c_open)
    s.add(hand, MOVE_SEC, w0 + np.array([0, 0, 0.05]), e0, f0)
    s.add(hand, 0.2, *s.hand_pose(hand, lid, yaw0, 1.15, 0.0, c_lid))
    s.add(hand, 0.4, *s.hand_pose(hand, lid, yaw0 + twist, 1.15, 0.0, c_lid))
    s.add(hand, 0.15, *s.hand_pose(hand, lid, yaw0 + twist, 1.15, 0.0, c_open))
    s.add(hand, 0.25, w0, e0, f0)
    s.onset([hand, other], "home", -1, s.rest_point(hand))
    s.end_round()


def _round_press(s: Script, n: int) -> None:
    k = (s.p.target, s.p.dest)[n % 2]
    kb, kpos = s.p.objects[k], s.obj_pos[k]
    players = HANDS if s.p.acting_hand == "both" else (_side(s, k),)
    c0 = 0.35
    s.onset(players, "reach", k, kpos + np.array([0, 0, kb.height]))
    base = {}
    for h in players:
        half = kb.size[0] * 0.5
        y0 = kpos[1] + (SIDE[h] * half * 0.5 if len(players) == 2 else SIDE[h] * half * 0.2)
        pt = np.array([kpos[0] - 0.005, y0, kpos[2] + kb.height + 0.012])
        wh, eh, fh = s.hand_pose(h, pt, kb.yaw - math.pi / 2, 0.35, 0.0, c0)
        s.add(h, MOVE_SEC, wh + np.array([0, 0, 0.02]), eh, fh)
        base[h] = s.keys[h][-1]
    s.onset(players, "play", k, kpos + np.array([0, 0, kb.height]))
    for fi in range(3):
        for h in players:
            b = base[h]
            f_press = b.fingers.copy()
            f_press[fi] = min(f_press[fi] + 0.35, 1.0)
            s.add(h, 0.14, b.pos - np.array([0, 0, 0.012]), b.euler, f_press)
            s.add(h, 0.14, b.pos, b.euler, b.fingers)
    s.onset(players, "home", -1, s.rest_point(players[0]))
    s.end_round(players)


def _round_wipe(s: Script, n: int) -> None:
    k, d = s.p.target, s.p.dest
    hand = s.p.acting_hand
    s.onset([hand], "reach", k, s.grip_point(k))
    w, e, c = s.grasp(hand, k, pitch=0.2)
    t_g = s.clock[hand]
    on_dest = s.obj_pos[d] + np.array([0, 0, s.p.objects[d].height + 0.002])
    s.onset([hand], "carry", d, s.grip_point(k, on_dest))
    w2 = s.carry(hand, w, e, c, on_dest - s.obj_pos[k])
    flat = fingers(0.15, 0.3)
    lat = np.array([-math.sin(e[0]), math.cos(e[0]), 0.0])
    amp = 0.35 * s.p.objects[d].footprint + 0.02
    for i in range(2):
        s.add(hand, 0.32, w2 + (1 if i % 2 == 0 else -1) * amp * lat, e, flat)
    s.add(hand, 0.25, w2, e, fingers(c))
    s.onset([hand], "put_down", k, s.grip_point(k))  # back where it was
    w3 = s.carry(hand, w2, e, c, s.obj_pos[k] - on_dest)
    s.release(hand, k, t_g, w3, e, c, s.obj_pos[k])
    s.onset([hand], "home", -1, s.rest_point(hand))
    s.end_round([hand])


def _round_handover(s: Script, n: int) -> None:
    """Round 0 passes the target from the hand on its side to the other one, which puts it on the destination
    (on the other side of the body); round 1 brings it back the same way, and so on."""
    k, d = s.p.target, s.p.dest
    o = s.p.objects[k]
    giver = _side(s, k)
    taker = _other(giver)
    s.onset([giver], "reach", k, s.grip_point(k))
    w, e, c = s.grasp(giver, k)
    t_g = s.clock[giver]
    gp = s.grip_point(k)
    mid = np.array([s.table.front + 0.24, 0.0, s.table.z + 0.18])
    s.onset([giver, taker], "to_middle", -1, mid)
    delta = mid - gp
    s.add(giver, MOVE_SEC, w + delta, e, fingers(c))
    c_take = s.p.hand.closure_for_width(o.grasp_width)
    gp_mid = mid + np.array([0, 0, -0.03])
    wt, et, ft = s.hand_pose(taker, gp_mid, s.approach_yaw(taker, gp_mid), 0.2, -SIDE[taker] * 0.9, c_take)
    f_open = fingers(max(c_take - 0.25, 0))
    s.add(taker, MOVE_SEC, wt - np.array([0, -SIDE[taker] * 0.05, 0]), et, f_open)
    s.add(taker, 0.25, wt, et, ft)
    s.hold_until(giver, s.clock[taker])
    t_swap = s.clock[taker]
    s.release(giver, k, t_g, w + delta, e, c, mid - (gp - s.obj_pos[k]))
    s.hold_until(taker, s.clock[giver])
    goal = s.obj_pos[d] + np.array([0, 0, s.p.objects[d].height]) if n % 2 == 0 else s.p.objects[k].pos.copy()
    s.onset([giver, taker], "carry", d if n % 2 == 0 else k, s.grip_point(k, goal))
    s.go_rest(giver)
    w_end = wt + (s.grip_point(k, goal) - gp_mid) - np.array([0, 0, 0.03])
    s.add(taker, MOVE_SEC, w_end + np.array([0, 0, 0.04]), et, ft)
    s.add(taker, 0.3, w_end, et, ft)
    s.p.attach.append((k, taker, t_swap, s.clock[taker]))
    s.obj_pos[k] = goal
    s.add(taker, 0.2, w_end, et, f_open)
    s.add(taker, 0.25, w_end + np.array([0, 0, 0.06]), et, f_open)
    s.onset([taker], "home", -1, s.rest_point(taker))
    s.end_round()


def _round_tap(s: Script, n: int) -> None:
    k, d = s.p.target, s.p.dest
    point = np.array([0.75, 0.0, 0.95, 0.95, 0.95, 0.0])
    tip_local = s.p.hand.local_joints(point[None, :5], np.zeros(1))[0, 8]
    current = None
    for obj in (k, d, k, d):
        h = _side(s, obj)
        top = s.top(obj) + np.array([0, 0, 0.008])
        movers = [h] if current in (None, h) else [h, current]
        s.onset(movers, "reach" if current is None else "hop", obj, top)
        if current not in (None, h):
            s.go_rest(current)
        eul = np.array([s.approach_yaw(h, top), 0.8, 0.0])
        tip = tip_local * (np.array([1, -1, 1]) if h == "left" else 1.0)
        w = top - euler_to_R(eul) @ tip
        s.add(h, MOVE_SEC, w + np.array([0, 0, 0.05]), eul, point)
        s.add(h, 0.15, w, eul, point)
        s.add(h, 0.18, w + np.array([0, 0, 0.035]), eul, point)
        current = h
    s.onset([current], "home", -1, s.rest_point(current))
    s.end_round()


ROUNDS = {"pick_lift": _round_pick_lift, "place": _round_place, "pour": _round_pour, "twist": _round_twist,
          "press": _round_press, "wipe": _round_wipe, "handover": _round_handover, "tap": _round_tap}


def acting_hand(rng: np.random.Generator, family: str, scene: Scene) -> str:
    """The hand on the target's side (press sometimes plays with both). In families that alternate between
    the objects or carry them across, each move uses the hand on its object's side; this is the first one."""
    side = "right" if scene.objects[scene.target].pos[1] < 0 else "left"
    if family == "press":
        return str(rng.choice([side, "both"], p=[0.6, 0.4]))
    return side


def make_prompt(rng: np.random.Generator, family: str, scene: Scene, hand: str) -> str:
    """A sentence naming the target by colour and kind (and the destination), from varied templates."""
    spec = FAMILY_SPECS[family]
    template = str(rng.choice(spec["prompts"]))
    hand_phrase = ""
    if "{hand}" in template and family in _FIXED_HAND and rng.random() < 0.6:
        hand_phrase = " with both hands" if hand == "both" else f" with your {hand} hand"
    dest = scene.objects[scene.dest].name if scene.dest is not None else ""
    prompt = template.format(obj=scene.objects[scene.target].name, dest=dest, hand=hand_phrase)
    return prompt + str(rng.choice(_PHASE_PHRASES))


def script_take(plan: TakePlan, until: float) -> None:
    """Fill the plan's keys, onsets and rounds with rounds of its task until time ``until``."""
    s = Script(plan)
    n = 0
    while max(s.clock.values()) < until:
        # The first round starts rest_sec after the first annotated frame: a phase the annotations show.
        s.begin_round(not_before=plan.first_frame / FPS if n == 0 else 0.0)
        ROUNDS[plan.family](s, n)
        n += 1
    plan.onsets.sort(key=lambda o: o.t)
