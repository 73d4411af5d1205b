"""The one min-max normaliser: [min, max] -> [-1, 1], constant dimensions -> 0, checked statistics."""

from __future__ import annotations

import pytest
import torch

from egghand_lib.batch import NormStats
from egghand_lib.normalization import MinMaxNormalizer, minmax_normalize, minmax_unnormalize


def test_minmax_maps_range_to_unit_interval_and_constant_to_zero():
    lo, hi = torch.tensor([0.0, -2.0, 5.0]), torch.tensor([1.0, 2.0, 5.0])
    x = torch.tensor([[0.0, -2.0, 5.0], [1.0, 2.0, 5.0], [0.5, 0.0, 5.0]])
    y = minmax_normalize(x, lo, hi)
    torch.testing.assert_close(y, torch.tensor([[-1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    torch.testing.assert_close(minmax_unnormalize(y, lo, hi), x)


def test_normalizer_checks_its_statistics():
    norm = MinMaxNormalizer()
    with pytest.raises(ValueError, match="no normalisation statistics"):
        norm.normalize(torch.zeros(138), "state")
    good = NormStats(torch.zeros(138), torch.ones(138), torch.zeros(126), torch.ones(126))
    with pytest.raises(ValueError, match="expected shape"):
        norm.set_stats(NormStats(torch.zeros(5), torch.ones(5), good.action_min, good.action_max))
    with pytest.raises(ValueError, match="finite with min <= max"):
        norm.set_stats(NormStats(torch.ones(138), torch.zeros(138), good.action_min, good.action_max))
    norm.set_stats(good)
    assert norm.has_stats and torch.equal(norm.stats.state_max, good.state_max)
