"""Training loop: schedule, exact resume, checkpoints, CSV log, configs; a tiny real run lowers its loss."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from torch import nn

from egghand_lib.training import (
    TrainConfig,
    build_scheduler,
    list_checkpoints,
    micro_batch_indices,
    rng_state,
    set_rng_state,
    train,
)


class ToyRegressor(nn.Module):
    """A model with dropout and its own randn in forward, so exact resume needs every RNG restored."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, batch):
        self.calls += 1
        pred = self.net(batch["x"]).squeeze(-1) + 0.01 * torch.randn(len(batch["x"]))
        return {"loss": ((pred - batch["y"]) ** 2).mean()}


def toy_dataset(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    return [{"x": x[i], "y": y[i]} for i in range(n)]


def toy_config(**kw):
    base = dict(name="toy", lr=1e-2, batch_size=8, grad_accum_steps=2, max_steps=12, log_every=2,
                save_every=0, eval_split=None)
    return TrainConfig(**{**base, **kw})


def test_resume_gives_identical_weights(tmp_path):
    cfg, ds = toy_config(), toy_dataset()
    torch.manual_seed(1)
    straight = train(cfg, tmp_path / "a", model=ToyRegressor(), train_dataset=ds, progress=False)
    torch.manual_seed(1)
    half = train(cfg, tmp_path / "b", model=ToyRegressor(), train_dataset=ds, stop_at_step=5, progress=False)
    assert half.step == 5 and not half.finished and half.model_dir is None
    assert [p.name for p in list_checkpoints(tmp_path / "b")] == ["step_000005"]
    # A fresh process would build a fresh model with other random weights: resume must overwrite them.
    torch.manual_seed(999)
    resumed = train(cfg, tmp_path / "b", model=ToyRegressor(), train_dataset=ds, progress=False)
    assert resumed.finished and resumed.step == 12
    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    # The log of the resumed run covers every logged step once.
    with open(tmp_path / "b" / "metrics.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [2, 4, 6, 8, 10, 12]


def test_resume_differs_without_rng_restore(tmp_path, monkeypatch):
    """Guard for the test above: skipping the RNG restore must break exactness (dropout + randn)."""
    import egghand_lib.training as tr

    cfg, ds = toy_config(), toy_dataset()
    torch.manual_seed(1)
    straight = train(cfg, tmp_path / "a", model=ToyRegressor(), train_dataset=ds, progress=False)
    torch.manual_seed(1)
    train(cfg, tmp_path / "b", model=ToyRegressor(), train_dataset=ds, stop_at_step=5, progress=False)
    monkeypatch.setattr(tr, "set_rng_state", lambda state: torch.manual_seed(12345))
    resumed = train(cfg, tmp_path / "b", model=ToyRegressor(), train_dataset=ds, progress=False)
    w_a, w_b = straight.model.net[0].weight, resumed.model.net[0].weight
    assert not torch.equal(w_a, w_b)


def test_resume_refuses_changed_config(tmp_path):
    ds = toy_dataset()
    train(toy_config(), tmp_path, model=ToyRegressor(), train_dataset=ds, stop_at_step=2, progress=False)
    with pytest.raises(ValueError, match="different config"):
        train(toy_config(lr=5e-3), tmp_path, model=ToyRegressor(), train_dataset=ds, progress=False)
    # Tuples inside model_overrides survive the JSON round trip of the stored config.
    tup = toy_config(model_overrides={"loss_weights": (0.6, 0.0, 0.2)})
    train(tup, tmp_path / "t", model=ToyRegressor(), train_dataset=ds, stop_at_step=1, progress=False)
    assert train(tup, tmp_path / "t", model=ToyRegressor(), train_dataset=ds, stop_at_step=2, progress=False).step == 2
    # Bookkeeping fields may change; resume=False starts over.
    out = train(toy_config(log_every=3), tmp_path, model=ToyRegressor(), train_dataset=ds, progress=False)
    assert out.finished
    fresh = train(toy_config(lr=5e-3), tmp_path, model=ToyRegressor(), train_dataset=ds, resume=False,
                  stop_at_step=1, progress=False)
    assert fresh.step == 1 and [p.name for p in list_checkpoints(tmp_path)] == ["step_000001"]


def test_keyboard_interrupt_saves_last_completed_step(tmp_path):
    cfg, ds = toy_config(), toy_dataset()

    class Interrupting(ToyRegressor):
        def forward(self, batch):
            if int(self.calls) == 7:  # inside the accumulation of optimizer step 4 (micro-batches 6, 7)
                raise KeyboardInterrupt
            return super().forward(batch)

    torch.manual_seed(1)
    straight = train(cfg, tmp_path / "a", model=ToyRegressor(), train_dataset=ds, progress=False)
    torch.manual_seed(1)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b", model=Interrupting(), train_dataset=ds, progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "b")] == ["step_000003"]
    resumed = train(cfg, tmp_path / "b", model=ToyRegressor(), train_dataset=ds, progress=False)
    for k, v in straight.model.net.state_dict().items():
        assert torch.equal(v, resumed.model.net.state_dict()[k]), k


def test_cosine_schedule_with_warmup():
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, total_steps=100, warmup_ratio=0.05)
    lrs = []
    for _ in range(100):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:5], lrs[1:6], strict=True))  # linear warm-up over 5 steps
    assert all(a >= b for a, b in zip(lrs[5:], lrs[6:], strict=False))  # then monotone cosine decay
    assert lrs[5 + 95 // 2] == pytest.approx(0.5 * (1 + math.cos(math.pi * (95 // 2) / 95)))


def test_micro_batches_cover_each_epoch_once_and_resume_midway():
    it = micro_batch_indices(20, 4, seed=3)
    first_epoch = [next(it) for _ in range(5)]
    assert sorted(i for b in first_epoch for i in b) == list(range(20))
    second = [next(it) for _ in range(5)]
    assert second != first_epoch
    resumed = micro_batch_indices(20, 4, seed=3, start=7)
    assert [next(resumed) for _ in range(3)] == second[2:5]
    # Two processes split every micro-batch without overlap.
    r0, r1 = micro_batch_indices(20, 2, seed=3, rank=0, world=2), micro_batch_indices(20, 2, seed=3, rank=1, world=2)
    assert next(r0) + next(r1) == first_epoch[0]
    with pytest.raises(ValueError, match="fewer than one batch"):
        next(micro_batch_indices(3, 4, seed=0))


def test_accumulation_sees_step_by_step_the_windows_of_several_processes():
    """Epochs hold whole optimizer steps: 1 process x 2 accumulated micro-batches == 2 processes x 1, for every
    step, across epoch boundaries (22 windows: 2 steps of 2 x 4 per epoch, 6 windows dropped each epoch)."""
    one = micro_batch_indices(22, 4, seed=5, accum=2)
    r0, r1 = (micro_batch_indices(22, 4, seed=5, rank=r, world=2) for r in (0, 1))
    for _ in range(7):
        assert next(one) + next(one) == next(r0) + next(r1)
    epoch = [next(micro_batch_indices(22, 4, seed=5, start=m, accum=2)) for m in range(4)]
    assert len({i for b in epoch for i in b}) == 16  # one epoch: 2 steps of 8 distinct windows
    assert next(micro_batch_indices(22, 4, seed=5, start=4, accum=2)) != epoch[0]  # then a new permutation


def test_rng_state_round_trip():
    import random

    import numpy as np

    s = rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(s)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_named_configs_and_errors(tmp_path):
    assert TrainConfig.named("paper").lr == 3e-5 and TrainConfig.named("paper").warmup_ratio == 0.05
    assert TrainConfig.named("paper").batch_size * TrainConfig.named("paper").grad_accum_steps == 64
    assert TrainConfig.named("cpu-small").model_preset == "cpu-small"
    assert TrainConfig.named("tiny", max_steps=3).max_steps == 3
    with pytest.raises(ValueError, match="unknown name"):
        TrainConfig.named("huge")
    with pytest.raises(ValueError, match="unknown field"):
        TrainConfig.named("tiny", learning_rate=1.0)
    cfg = TrainConfig.named("cpu-small")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="give prep_dir, lerobot_dir or train_dataset"):
        train(TrainConfig.named("tiny"), tmp_path / "unused", progress=False)
    with pytest.raises(ValueError, match="not both"):
        train(TrainConfig.named("tiny"), tmp_path / "unused", prep_dir=tmp_path, lerobot_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="warmup_ratio"):
        toy_config(warmup_ratio=1.5).validate()


def test_tiny_egghand_run_lowers_its_loss(tmp_path):
    from egghand_lib.batch import collate_windows
    from tests.fixtures.learnable_episodes import fake_datasets, single_thread, tiny_model

    train_ds, test_ds = fake_datasets()
    with single_thread():
        model = tiny_model(train_ds)
        batch = collate_windows([test_ds[i] for i in range(0, len(test_ds), 3)])
        model.eval()
        with torch.no_grad():
            before = float(model(batch)["loss"])
        cfg = TrainConfig.named("tiny", max_steps=20, eval_every=10)
        result = train(cfg, tmp_path, model=model, train_dataset=train_ds, eval_dataset=test_ds, progress=False)
        model.eval()
        with torch.no_grad():
            after = float(model(batch)["loss"])
    assert after < 0.95 * before
    assert result.finished and (tmp_path / "model" / "config.json").is_file()
    assert {"val_loss", "val_ade", "val_mpjpe"} <= set(result.eval_metrics)
    # The saved model reloads with the same forecasts.
    from egghand_lib.models.egghand import EggHandPolicy

    with single_thread(), torch.no_grad():
        assert torch.allclose(EggHandPolicy.from_pretrained(tmp_path).forecast(batch), model.forecast(batch), atol=1e-6)
