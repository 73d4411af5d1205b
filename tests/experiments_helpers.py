"""Tiny in-memory episodes for the experiments tests (training, evaluation, ablations).

The future depends on the prompt (which direction the hand moves) and on the frames (a coloured square
whose position sets the speed), so a model can learn something in a few dozen steps.
"""

from __future__ import annotations

import numpy as np

from egghand_lib.data.episodes import Episode

TASKS = ("reach left to the red cup", "reach right to the blue box", "lift the green ball up")
DIRECTIONS = np.array([[0.0, 0.03, 0.0], [0.0, -0.03, 0.0], [0.0, 0.0, 0.03]], dtype=np.float32)


def fake_episodes(num: int = 6, length: int = 36, seed: int = 0, size: int = 32, split: str = "train") -> list[Episode]:
    rng = np.random.default_rng(seed)
    hand = rng.normal(0, 0.03, (42, 3)).astype(np.float32)
    hand[21:] += np.array([0.0, 0.2, 0.0], np.float32)  # left hand beside the right one
    eps = []
    for e in range(num):
        kind = e % len(TASKS)
        speed = 0.5 + (e % 2)
        t = np.arange(length, dtype=np.float32)[:, None, None]
        start = np.array([0.5, 0.0, 0.8], np.float32) + rng.normal(0, 0.02, 3).astype(np.float32)
        joints = start + hand[None] + speed * DIRECTIONS[kind] * t + rng.normal(0, 0.002, (length, 42, 3))
        valid = rng.random((length, 42)) > 0.05
        ext = np.zeros((length, 3, 4), np.float32)
        ext[:, :, :3] = np.eye(3, dtype=np.float32)
        ext[:, :, 3] = rng.normal(0, 0.01 * (1 + e), (length, 3)).cumsum(0)  # egomotion grows with e
        frames = np.full((length, size, size, 3), 40, np.uint8)
        x0 = int(4 + 16 * (e % 2))
        frames[:, 8:16, x0:x0 + 8, kind] = 230
        eps.append(Episode(
            take_uid=f"take{e:03d}", episode_index=e, task=TASKS[kind], scenario=f"scenario{kind}", split=split,
            frame_numbers=np.arange(0, 3 * length, 3, dtype=np.int64), joints=joints.astype(np.float32),
            valid=valid, extrinsics=ext, intrinsics=np.eye(3, dtype=np.float32), frames=frames,
        ))
    return eps


def fake_datasets(num_train: int = 6, num_test: int = 3, length: int = 36):
    """(train, test) WindowDatasets over fake episodes; statistics from the training episodes."""
    from egghand_lib.data.statistics import compute_stats
    from egghand_lib.data.windows import WindowDataset

    train_eps = fake_episodes(num_train, length, seed=0, split="train")
    test_eps = fake_episodes(num_test, length, seed=1, split="test")
    for i, ep in enumerate(test_eps):
        ep.episode_index = 100 + i
    stats = compute_stats(train_eps)
    return (WindowDataset.from_episodes(train_eps, stats=stats, split="train"),
            WindowDataset.from_episodes(test_eps, stats=stats, split="test"))


_TINY_CACHE: dict = {}


def tiny_model(train_ds, seed: int = 0):
    """A fresh copy of an untrained tiny EggHandPolicy (built once per process: MiniLM loading is slow)."""
    import copy

    import torch

    from egghand_lib.training import TrainConfig, build_model

    if seed not in _TINY_CACHE:
        torch.manual_seed(seed)
        _TINY_CACHE[seed] = build_model(TrainConfig.named("tiny"), stats=train_ds.stats)
    return copy.deepcopy(_TINY_CACHE[seed])


def input_dependent(model):
    """An untrained anchored model forecasts "hold the last pose" whatever its frames, prompt or noise (its
    output adapter and motion MLP start at zero); give both small random weights so that tests of the
    evaluation plumbing see forecasts that depend on every input, as a trained model's do."""
    import torch

    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in (model.action_out_proj, model.motion_mlp[-1]):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 0.05)
    return model


def single_thread():
    """Context manager: torch on one thread (the 2 CI cores are shared), restored afterwards."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def cm():
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(n)

    return cm()
