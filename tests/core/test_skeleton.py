"""Skeleton: joint names, wrists, bones and hand membership follow EgoExo4D (docs/conventions.md, "Joints")."""

import pytest

from egghand_lib import skeleton as sk


def test_joint_names_follow_egoexo4d_order():
    assert len(sk.JOINT_NAMES) == 42 and len(set(sk.JOINT_NAMES)) == 42
    assert sk.JOINT_NAMES[0] == "right_wrist" and sk.JOINT_NAMES[21] == "left_wrist"
    assert sk.JOINT_NAMES[1:5] == ("right_thumb_1", "right_thumb_2", "right_thumb_3", "right_thumb_4")
    assert sk.JOINT_NAMES[5] == "right_index_1" and sk.JOINT_NAMES[20] == "right_pinky_4"
    assert sk.JOINT_NAMES[41] == "left_pinky_4"
    for j in range(21):  # the left hand mirrors the right hand's order
        assert sk.JOINT_NAMES[j + 21] == sk.JOINT_NAMES[j].replace("right_", "left_")


def test_wrists_hands_and_index_lookup():
    assert sk.WRIST_INDICES == (0, 21)
    assert [sk.hand_of(j) for j in (0, 20, 21, 41)] == ["right", "right", "left", "left"]
    assert sk.WRIST_OF == tuple([0] * 21 + [21] * 21)
    for j, name in enumerate(sk.JOINT_NAMES):
        assert sk.joint_index(name) == j
        assert sk.wrist_of(j) == sk.WRIST_OF[j]
    assert [sk.JOINT_NAMES[j] for j in sk.FINGERTIP_INDICES[:5]] == [
        f"right_{f}_4" for f in ("thumb", "index", "middle", "ring", "pinky")
    ]


def test_bones_form_two_wrist_rooted_trees():
    assert len(sk.BONES) == 40 and len(set(sk.BONES)) == 40
    parents = {}
    for p, c in sk.BONES:
        assert sk.hand_of(p) == sk.hand_of(c), "a bone never crosses hands"
        assert c not in parents, f"joint {c} has two parents"
        parents[c] = p
    assert set(parents) == set(range(42)) - set(sk.WRIST_INDICES)
    for j in parents:  # every joint reaches its own wrist through finger_1 -> ... -> finger_4
        k, depth = j, 0
        while k in parents:
            k, depth = parents[k], depth + 1
        assert k == sk.WRIST_OF[j]
        assert depth == int(sk.JOINT_NAMES[j][-1])


def test_intra_hand_pairs():
    pairs = sk.intra_hand_pairs()
    assert len(pairs) == 420 and len(set(pairs)) == 420
    assert all(i < j and sk.hand_of(i) == sk.hand_of(j) for i, j in pairs)


@pytest.mark.parametrize("bad", [-1, 42, 100])
def test_bad_joint_index_and_name(bad):
    with pytest.raises(ValueError, match="joint index"):
        sk.hand_of(bad)
    with pytest.raises(ValueError, match="unknown joint name"):
        sk.joint_index("right_toe_1")
