"""Two-hand skeleton of EgoExo4D: 42 joints, right hand first (docs/conventions.md, "Joints").

Per hand: 0 wrist, then thumb, index, middle, ring, pinky with four joints each; ``_1`` is nearest
the palm and ``_4`` is the finger tip. Joint j of the left hand is ``j + 21``.
"""

from __future__ import annotations

HANDS: tuple[str, str] = ("right", "left")
FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
JOINTS_PER_HAND = 21
NUM_JOINTS = 2 * JOINTS_PER_HAND

HAND_JOINT_NAMES: tuple[str, ...] = ("wrist",) + tuple(f"{f}_{k}" for f in FINGERS for k in range(1, 5))
JOINT_NAMES: tuple[str, ...] = tuple(f"{h}_{n}" for h in HANDS for n in HAND_JOINT_NAMES)
WRIST_INDICES: tuple[int, int] = (0, JOINTS_PER_HAND)
FINGERTIP_INDICES: tuple[int, ...] = tuple(
    h * JOINTS_PER_HAND + 1 + 4 * f + 3 for h in range(2) for f in range(len(FINGERS))
)


def _hand_bones() -> list[tuple[int, int]]:
    bones = []
    for f in range(len(FINGERS)):
        chain = [0] + [1 + 4 * f + k for k in range(4)]
        bones += list(zip(chain[:-1], chain[1:], strict=True))
    return bones


HAND_BONES: list[tuple[int, int]] = _hand_bones()
"""The 20 (parent, child) bones of one hand in hand-local indices 0..20."""
BONES: list[tuple[int, int]] = [
    (p + h * JOINTS_PER_HAND, c + h * JOINTS_PER_HAND) for h in range(2) for p, c in HAND_BONES
]
"""The 40 (parent, child) bones of both hands in indices 0..41."""


def hand_of(j: int) -> str:
    """'right' for joints 0-20, 'left' for 21-41."""
    if not 0 <= int(j) < NUM_JOINTS:
        raise ValueError(f"joint index {j} is outside 0..{NUM_JOINTS - 1}")
    return HANDS[int(j) // JOINTS_PER_HAND]


def wrist_of(j: int) -> int:
    """Index of the wrist of joint j's hand (0 or 21)."""
    return WRIST_INDICES[HANDS.index(hand_of(j))]


WRIST_OF: tuple[int, ...] = tuple(wrist_of(j) for j in range(NUM_JOINTS))
"""WRIST_OF[j] is the wrist index of joint j; handy for vectorised gathers."""


def joint_index(name: str) -> int:
    """Index of an EgoExo4D joint name such as ``left_index_3``."""
    try:
        return JOINT_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown joint name {name!r}; expected an EgoExo4D name like 'right_index_3'") from None


def intra_hand_pairs() -> list[tuple[int, int]]:
    """All (i, j), i < j, of joints of the same hand: 2 * 210 = 420 pairs."""
    return [
        (h * JOINTS_PER_HAND + i, h * JOINTS_PER_HAND + j)
        for h in range(2)
        for i in range(JOINTS_PER_HAND)
        for j in range(i + 1, JOINTS_PER_HAND)
    ]
