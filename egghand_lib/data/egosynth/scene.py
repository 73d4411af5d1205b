"""The scene of a take: a table, the candidate objects (target, destination, look-alikes) and the cue lamp.

Scene frame: the person stands at the origin facing +x, z up, the table's front edge at x = ``front``.
Objects are named by colour and kind ("red cup"). The prompt names two of them (the target and a second
object, a destination or the next object to act on, at least MIN_APART apart); every take has look-alikes
of the target (the same kind in another colour and the same colour on another kind) and of the second
object, so that finding a named object needs both words of its name.
Objects sit at random places in the workspace in front of and beside the hands' rest positions, so the
direction of a reach is spread over about 150 degrees.

The cue lamp is a panel on a post at the back of the table, facing the person. It is red while the hands
rest, turns towards green as the next round approaches and is green from the round's first reach until the
hands are back at rest (``lamp_colour``), so the phase of the task is visible in every frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.12), "green": (0.12, 0.65, 0.22), "blue": (0.12, 0.28, 0.90),
    "yellow": (0.95, 0.85, 0.10), "purple": (0.55, 0.18, 0.75), "cyan": (0.08, 0.78, 0.85),
}
# kind: shape and size ranges (radius / half extents and height, metres). Sizes are generous so that kinds
# stay distinguishable in 64-96 px frames (a cup is ~5 px wide at 64 px, a keypad ~13 px).
KINDS: dict[str, dict] = {
    "cup": dict(shape="cylinder", r=(0.044, 0.050), h=(0.10, 0.12)),
    "bottle": dict(shape="cylinder", r=(0.032, 0.038), h=(0.18, 0.21)),
    "jar": dict(shape="cylinder", r=(0.050, 0.058), h=(0.10, 0.12)),
    "bowl": dict(shape="cylinder", r=(0.080, 0.092), h=(0.05, 0.06)),
    "plate": dict(shape="cylinder", r=(0.092, 0.105), h=(0.014, 0.018)),
    "box": dict(shape="box", hx=(0.050, 0.058), hy=(0.042, 0.050), h=(0.08, 0.10)),
    "block": dict(shape="box", hx=(0.032, 0.036), hy=(0.032, 0.036), h=(0.06, 0.07)),
    "ball": dict(shape="sphere", r=(0.042, 0.048)),
    "sponge": dict(shape="box", hx=(0.055, 0.060), hy=(0.036, 0.040), h=(0.03, 0.035)),
    "keypad": dict(shape="box", hx=(0.110, 0.125), hy=(0.048, 0.055), h=(0.026, 0.030)),  # long axis local x
}
DISTRACTOR_KINDS = ("cup", "bottle", "jar", "bowl", "plate", "box", "block", "ball", "sponge")
TALL = 0.15  # objects taller than this stay out of the lamp's line of sight
MIN_APART = 0.22  # metres between the two named objects (the moves between them go somewhere new)

# The lamp: a panel (half extents: depth, width, height) on a post, drawn unshaded.
LAMP_PANEL = np.array([0.012, 0.10, 0.065])
LAMP_POST_HEIGHT = 0.11
LAMP_RED = np.array([0.95, 0.10, 0.06])
LAMP_GREEN = np.array([0.10, 0.92, 0.20])
LAMP_POST_RGB = (0.25, 0.25, 0.28)

# Hands rest here (scene frame, relative to the table front and top); the workspace avoids this zone.
REST_X, REST_Y, REST_Z = 0.08, 0.13, 0.035
WORK_X = (0.06, 0.44)  # object base centres: x - front in this range ...
WORK_Y = (0.30, 0.30)  # ... and |y| < WORK_Y[0] + WORK_Y[1] * (x - front - WORK_X[0]) (what the camera sees) ...
HANDS_ZONE = (0.19, 0.25)  # ... but not x - front < 0.19 with |y| < 0.25 (hands and forearms at rest)


@dataclass
class SceneObject:
    name: str  # "red cup"
    kind: str
    colour: str
    shape: str  # "cylinder" | "box" | "sphere"
    size: np.ndarray  # cylinder: (r, h); sphere: (r,); box: (hx, hy, h)
    pos: np.ndarray  # base centre (scene frame), on the table top
    yaw: float

    @property
    def footprint(self) -> float:
        return float(np.hypot(self.size[0], self.size[1])) if self.shape == "box" else float(self.size[0])

    @property
    def height(self) -> float:
        return float(2 * self.size[0]) if self.shape == "sphere" else float(self.size[-1])

    @property
    def grasp_width(self) -> float:
        return float(2 * min(self.size[0], self.size[1])) if self.shape == "box" else float(2 * self.size[0])

    @property
    def rgb(self) -> tuple[float, float, float]:
        return COLOURS[self.colour]


@dataclass
class Table:
    z: float  # height of the top
    front: float  # x of the front edge
    back: float  # x of the back edge
    half_width: float

    def clamp(self, xy, margin: float = 0.06) -> np.ndarray:
        """The table-top point nearest to ``xy`` at least ``margin`` inside the edges (scene frame, (3,))."""
        x = np.clip(xy[0], self.front + margin, self.back - margin)
        y = np.clip(xy[1], -self.half_width + margin, self.half_width - margin)
        return np.array([x, y, self.z])


@dataclass
class Scene:
    table: Table
    objects: list[SceneObject]
    target: int
    dest: int | None
    lookalikes: list[int]  # indices of the look-alikes of the target and the destination
    lamp: np.ndarray  # (3,) base of the lamp's post (scene frame)

    @property
    def lamp_center(self) -> np.ndarray:
        return self.lamp + np.array([0.0, 0.0, LAMP_POST_HEIGHT + LAMP_PANEL[2]])


def lamp_colour(phase: np.ndarray) -> np.ndarray:
    """Lamp RGB (..., 3) for a cue phase (...,) in [0, 1]: 0 red (a round just ended), 1 green (go)."""
    p = np.clip(np.asarray(phase, float), 0.0, 1.0)[..., None]
    return (1 - p) * LAMP_RED + p * LAMP_GREEN


def _sample_size(kind: str, rng: np.random.Generator) -> np.ndarray:
    k = KINDS[kind]
    if k["shape"] == "box":
        return np.array([rng.uniform(*k["hx"]), rng.uniform(*k["hy"]), rng.uniform(*k["h"])])
    if k["shape"] == "cylinder":
        return np.array([rng.uniform(*k["r"]), rng.uniform(*k["h"])])
    return np.array([rng.uniform(*k["r"])])


def _wanted_objects(rng: np.random.Generator, target_kinds, dest_kinds,
                    n_objects: int) -> tuple[list[tuple], int | None]:
    """(kind, colour) of every object (target first, destination second if any) and the destination index."""
    colours = list(COLOURS)
    t_kind = str(rng.choice(target_kinds))
    t_col = str(rng.choice(colours))
    wanted = [(t_kind, t_col)]
    dest = None
    if dest_kinds:
        d_kind = str(rng.choice([k for k in dest_kinds if k != t_kind] or list(dest_kinds)))
        wanted.append((d_kind, str(rng.choice([c for c in colours if c != t_col]))))
        dest = 1

    def add(kind: str | None = None, colour: str | None = None, avoid_kinds=()) -> None:
        kinds = [kind] if kind else [k for k in DISTRACTOR_KINDS if k not in avoid_kinds]
        cols = [colour] if colour else colours
        options = [(k, c) for k in kinds for c in cols if (k, c) not in wanted]
        if options:
            wanted.append(options[int(rng.integers(len(options)))])

    if dest is None or wanted[1][0] != t_kind:
        add(kind=t_kind)  # the target's kind in another colour (unless the second named object is one)
    add(colour=t_col, avoid_kinds=(t_kind,) + ((wanted[1][0],) if dest is not None else ()))  # its colour elsewhere
    if dest is not None and wanted[1][0] != t_kind:
        add(kind=wanted[1][0])  # the destination's kind in another colour
    while len(wanted) < n_objects:
        add(avoid_kinds=("keypad",))
    return wanted, dest


def plan_scene(rng: np.random.Generator, target_kinds, dest_kinds, n_objects: int,
               opposite_sides: bool = False) -> Scene:
    """A random table, objects and lamp. ``opposite_sides``: target and destination on either side of the
    body (a handover). Raises RuntimeError if the objects cannot be placed (never for the built-in families)."""
    table = Table(z=float(rng.uniform(0.72, 0.9)), front=0.22, back=0.22 + float(rng.uniform(0.66, 0.8)),
                  half_width=float(rng.uniform(0.52, 0.65)))
    lamp = np.array([table.front + 0.48 + rng.uniform(-0.015, 0.015), rng.uniform(-0.05, 0.05), table.z])
    wanted, dest = _wanted_objects(rng, target_kinds, dest_kinds, n_objects)
    for _attempt in range(40):
        objects: list[SceneObject] = []
        for n, (kind, colour) in enumerate(wanted):
            obj = SceneObject(f"{colour} {kind}", kind, colour, KINDS[kind]["shape"], _sample_size(kind, rng),
                              np.zeros(3), 0.0)
            side = None
            if opposite_sides and n == 0:
                side = float(rng.choice([-1.0, 1.0]))
            elif opposite_sides and n == dest:
                side = -float(np.sign(objects[0].pos[1]))
            away = objects[0].pos if n == dest else None  # the two named objects are well apart
            if not _place(obj, objects, table, rng, side, away):
                if n <= (dest or 0) + 2:  # the task objects and the target's look-alikes must all be there
                    break
                continue  # an extra distractor that does not fit is left out
            objects.append(obj)
        else:
            names = [o.name for o in objects]
            lookalikes = [i for i, o in enumerate(objects) if i not in (0, dest) and (
                o.kind == objects[0].kind or o.colour == objects[0].colour
                or (dest is not None and (o.kind == objects[dest].kind or o.colour == objects[dest].colour)))]
            assert len(set(names)) == len(names)
            return Scene(table, objects, 0, dest, lookalikes, lamp)
    raise RuntimeError("could not place the task objects on the table")


def _place(obj: SceneObject, placed: list[SceneObject], table: Table, rng: np.random.Generator,
           side: float | None, away: np.ndarray | None = None) -> bool:
    """Put ``obj`` at a random free spot of the workspace (in place), on the ``side`` (sign of y) if given and
    at least MIN_APART from ``away`` if given; False after 300 tries."""
    for _ in range(300):
        if obj.kind == "keypad":
            xy = np.array([table.front + rng.uniform(0.22, 0.40), rng.uniform(-0.3, 0.3)])
            yaw = float(math.pi / 2 + rng.uniform(-0.12, 0.12))  # long axis across the table
        else:
            x = rng.uniform(*WORK_X)
            half = WORK_Y[0] + WORK_Y[1] * (x - WORK_X[0])
            xy = np.array([table.front + x, rng.uniform(-half, half)])
            yaw = float(rng.uniform(-0.6, 0.6))
        if side is not None and xy[1] * side < 0.10:
            continue
        if away is not None and np.linalg.norm(xy - away[:2]) < MIN_APART:
            continue
        if xy[0] - table.front < HANDS_ZONE[0] and abs(xy[1]) < HANDS_ZONE[1]:
            continue
        if obj.height > TALL and xy[0] - table.front > 0.28 and abs(xy[1]) < 0.2:
            continue  # would hide the lamp
        if any(np.linalg.norm(xy - o.pos[:2]) < obj.footprint + o.footprint + 0.04 for o in placed):
            continue
        obj.pos, obj.yaw = np.array([xy[0], xy[1], table.z]), yaw
        return True
    return False
