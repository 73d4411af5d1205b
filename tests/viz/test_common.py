"""egghand_lib.viz.common: skeleton polylines leave out invalid joints and their bones."""

from __future__ import annotations

import numpy as np

from egghand_lib import viz
from egghand_lib.skeleton import BONES
from tests.fixtures.hand_scenes import two_hands


def test_skeleton_segments_drop_invalid_joints_and_their_bones():
    J = two_hands()
    assert len(viz.skeleton_segments(J)) == 3 * len(BONES)  # parent, child, gap per bone
    valid = np.ones(42, bool)
    valid[6] = False  # right_index_2: bones 5-6 and 6-7 go
    seg = viz.skeleton_segments(J, valid)
    assert len(seg) == 3 * (len(BONES) - 2)
    assert not np.any(np.all(np.isclose(seg, J[6]), axis=1))
    # Joint 5 keeps its bone to the wrist, joint 7 its bone to 8: both still drawn.
    for j in (5, 7, 8):
        assert np.any(np.all(np.isclose(seg, J[j]), axis=1))
    # An isolated valid joint (all its neighbours missing) still shows as a lone marker.
    only = np.zeros(42, bool)
    only[3] = True
    seg = viz.skeleton_segments(J, only)
    assert seg.shape == (2, 3) and np.allclose(seg[0], J[3]) and np.isnan(seg[1]).all()
