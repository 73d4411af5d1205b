"""Ablations: modality corruptions change exactly the inputs they target; the runner's tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from egghand_lib.ablations import (
    MODALITY_VARIANTS,
    dummy_language,
    make_corruption,
    noisy_vision,
    run_ablations,
    task_vocabulary,
)
from egghand_lib.batch import collate_windows
from egghand_lib.metrics import forecast_metrics
from egghand_lib.training import TrainConfig
from tests.fixtures.learnable_episodes import fake_datasets, input_dependent, single_thread, tiny_model


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def data():
    return fake_datasets()


def _batch(ds, idx):
    return collate_windows([ds[i] for i in idx])


def _assert_same_except(a: dict, b: dict, changed: set[str]):
    assert a.keys() == b.keys()
    for k in a:
        if k in changed:
            continue
        assert b[k] is a[k], f"{k} was replaced"
    for k in changed:
        if isinstance(a[k], torch.Tensor):
            assert b[k].shape == a[k].shape and b[k].dtype == a[k].dtype
            assert not torch.equal(a[k], b[k]), f"{k} unchanged"
        else:
            assert len(b[k]) == len(a[k]) and all(x != y for x, y in zip(a[k], b[k], strict=True)), f"{k} unchanged"


def test_noisy_vision_changes_frames_only_and_is_seeded(data):
    _, test = data
    batch = _batch(test, range(6))
    frames_before = batch["frames"].clone()
    out = noisy_vision(batch, seed=3)
    _assert_same_except(batch, out, {"frames"})
    assert torch.equal(batch["frames"], frames_before)  # the input batch is not mutated
    x = out["frames"].float()
    assert 100 < x.mean() < 155 and 40 < x.std() < 80  # Gaussian noise around mid-grey, not the scene
    assert torch.equal(noisy_vision(batch, seed=3)["frames"], out["frames"])
    assert not torch.equal(noisy_vision(batch, seed=4)["frames"], out["frames"])
    # Per-window seeding: a window's noise does not depend on which batch it is in.
    part = noisy_vision(_batch(test, [2, 3]), seed=3)
    assert torch.equal(part["frames"], out["frames"][2:4])
    # Float frames stay float in [0, 1].
    fb = {**batch, "frames": batch["frames"].float() / 255}
    f_out = noisy_vision(fb, seed=3)["frames"]
    assert f_out.dtype == torch.float32 and 0 <= f_out.min() and f_out.max() <= 1


def test_dummy_language_changes_prompts_only_and_is_seeded(data):
    train, test = data
    vocab = task_vocabulary(sorted(set(train.arrays()["task"])))
    assert "reach" in vocab and "cup" in vocab and vocab == sorted(set(vocab))
    batch = _batch(test, range(6))
    out = dummy_language(batch, vocab, seed=1)
    _assert_same_except(batch, out, {"task"})
    for old, new in zip(batch["task"], out["task"], strict=True):
        assert len(new.split()) == len(old.split()) and set(new.split()) <= set(vocab)
    assert dummy_language(batch, vocab, seed=1)["task"] == out["task"]
    assert dummy_language(batch, vocab, seed=2)["task"] != out["task"]
    assert dummy_language(_batch(test, [4, 5]), vocab, seed=1)["task"] == out["task"][4:6]
    # A pool of K texts per prompt length keeps the number of distinct prompts small; None: one per window.
    many = _batch(test, range(len(test)))
    pooled = dummy_language(many, vocab, seed=1, pool_size=2)["task"]
    lengths = {len(p.split()) for p in many["task"]}
    assert len(set(pooled)) <= 2 * len(lengths)
    free = dummy_language(many, vocab, seed=1, pool_size=None)["task"]
    assert len(set(free)) > 2 * len(lengths)


def test_both_corruptions_and_errors(data):
    train, test = data
    vocab = task_vocabulary(list(train.arrays()["task"]))
    batch = _batch(test, range(4))
    both = make_corruption("noisy vision + dummy language", vocab, seed=0)(batch)
    _assert_same_except(batch, both, {"frames", "task"})
    assert make_corruption("clean") is None
    with pytest.raises(ValueError, match="unknown"):
        make_corruption("blurry vision", vocab)
    with pytest.raises(ValueError, match="cached encoder features"):
        noisy_vision({**batch, "video_tokens": torch.zeros(4, 2, 8), "text_tokens": torch.zeros(4, 2, 8)})
    with pytest.raises(ValueError, match="no words"):
        task_vocabulary(["", "123"])


def test_run_ablations_modality_and_egomotion(tmp_path, data):
    train, test = data
    model = input_dependent(tiny_model(train))
    idx = np.linspace(0, len(test) - 1, 30).round().astype(int)  # what max_windows=30 selects
    res = run_ablations(None, tmp_path, model=model, which=("modality", "egomotion", "encoder"), dataset=test,
                        train_dataset=train, batch_size=64, max_windows=30, progress=False)
    rows = {(r["table"], r["variant"]): r for r in res["rows"]}
    # The clean row is exactly forecast_metrics of the model's forecasts.
    preds = model.forecast(_batch(test, idx)).numpy()
    a = test.arrays()
    clean = forecast_metrics(preds, a["future_joints"][idx], a["future_valid"][idx])
    for k in ("ade", "fde", "mpjpe", "mpjpe_f"):
        assert rows[("3 modality", "clean")][k] == pytest.approx(clean[k], rel=1e-6)
    # Corrupting an input changes the forecasts (this model reads frames and prompts).
    for v in MODALITY_VARIANTS[1:]:
        assert rows[("3 modality", v)]["ade"] != pytest.approx(clean["ade"], rel=1e-9)
    # Egomotion rows: the model's "all" row equals the clean numbers; top rows cover ~10% of windows.
    assert rows[("4 egomotion", "EggHand all")]["mpjpe"] == pytest.approx(clean["mpjpe"], rel=1e-6)
    top = rows[("4 egomotion", "EggHand top 10%")]
    assert 0 < top["windows"] <= 0.2 * len(idx) and res["num_windows"] == len(idx)
    # Encoder swap without weights (EgoVideo, InternVL) or without a prepared folder to retrain on (the offline
    # pair): reported, not silently skipped.
    enc = {r["variant"]: r for r in res["rows"] if r["table"] == "4 encoder"}
    assert all(r["status"] == "not run" for r in enc.values()) and len(enc) == 4
    assert all("egovideo_path" in enc[v]["reason"] for v in ("EgoVideo", "InternVL3.5-1B"))
    assert "prep_dir" in enc["EgoVideo-mini (pretrained, frozen)"]["reason"]
    on_disk = json.loads((tmp_path / "ablations.json").read_text())
    assert on_disk["rows"] == json.loads(json.dumps(res["rows"]))
    md = (tmp_path / "ablations.md").read_text()
    assert "noisy vision + dummy language" in md and "not run" in md
    assert (tmp_path / "ablations.csv").read_text().count("\n") == len(res["rows"]) + 1


def test_run_ablations_rejects_unknown(tmp_path, data):
    with pytest.raises(ValueError, match="unknown ablation"):
        run_ablations(None, tmp_path, which=("colour",), dataset=data[1], train_dataset=data[0])


def test_foundation_rows_without_the_shipped_weights_say_how_to_make_them(tmp_path, data, monkeypatch):
    """An installation without egghand_lib/resources/weights reports the EgoVideo-mini and gr00t-mini rows as
    not run, naming the command that makes the weights; the rows that need no shipped weights still run."""
    import egghand_lib.ablations as ablations
    from tests.fixtures.episodes import make_episodes, write_prepared

    monkeypatch.setattr(ablations, "SHIPPED_EGOVIDEO_MINI", tmp_path / "absent_encoder")
    monkeypatch.setattr(ablations, "SHIPPED_GR00T_MINI_HEAD", tmp_path / "absent_head")
    from egghand_lib.data.prepared import write_stats
    from egghand_lib.data.statistics import compute_stats

    eps = make_episodes(2, num_frames=30, size=8)
    prep = write_prepared(tmp_path / "prep", eps)
    write_stats(prep, compute_stats(eps))
    train, test = data
    res = run_ablations(prep, tmp_path / "abl", model=tiny_model(train), which=("encoder", "head_init"),
                        dataset=test, train_dataset=train, batch_size=64, max_windows=8, progress=False,
                        train_config=TrainConfig.named("tiny", max_steps=1, batch_size=4, eval_split=None))
    rows = {(r["table"], r["variant"]): r for r in res["rows"]}
    for key in (("4 encoder", "EgoVideo-mini (pretrained, frozen)"), ("5 head init", "pretrained head (gr00t-mini)")):
        assert rows[key]["status"] == "not run" and "egghand pretrain recipe" in rows[key]["reason"]
    for key in (("4 encoder", "small CNN trained from scratch"), ("5 head init", "random head"),
                ("5 head init", "motion MLP beside a random head")):
        assert rows[key]["status"] == "ok" and np.isfinite(rows[key]["ade"])


def test_shipped_head_row_runs_only_for_its_own_sizes(tmp_path, data):
    """The shipped GR00T-mini head has cpu-small sizes: variants of another preset report it as not run (saying
    which config runs it) instead of failing to load it."""
    from egghand_lib.data.prepared import write_stats
    from egghand_lib.data.statistics import compute_stats
    from tests.fixtures.episodes import make_episodes, write_prepared

    eps = make_episodes(2, num_frames=30, size=8)
    prep = write_prepared(tmp_path / "prep", eps)
    write_stats(prep, compute_stats(eps))
    train, test = data
    res = run_ablations(prep, tmp_path / "abl", model=tiny_model(train), which=("head_init",), dataset=test,
                        train_dataset=train, batch_size=64, max_windows=8, progress=False,
                        train_config=TrainConfig.named("tiny", max_steps=1, batch_size=4, eval_split=None))
    rows = {r["variant"]: r for r in res["rows"]}
    mini = rows["pretrained head (gr00t-mini)"]
    assert mini["status"] == "not run" and "cpu-small sizes" in mini["reason"] and "'tiny'" in mini["reason"]
    assert rows["random head"]["status"] == "ok"


def test_head_models_are_evaluated_as_given_not_retrained(tmp_path, data):
    """Table 5 from trained models (the shipped pair's path): one row per model, its own forecast, nothing trained."""
    train, test = data
    a, b = tiny_model(train), tiny_model(train)
    with torch.no_grad():  # a second model that forecasts differently
        for p in b.parameters():
            p.add_(0.05 * torch.randn_like(p))
    res = run_ablations(None, tmp_path / "abl", which=("head_init",), dataset=test, train_dataset=train,
                        batch_size=64, max_windows=8, progress=False, head_models={"pretrained": a, "random": b})
    rows = {r["variant"]: r for r in res["rows"]}
    assert list(rows) == ["pretrained", "random"] and all(r["table"] == "5 head init" for r in rows.values())
    assert rows["pretrained"]["ade"] != rows["random"]["ade"]
    assert not (tmp_path / "abl" / "runs").exists()  # no variant was trained
    assert "action-head initialisation (trained models, as given)" in (tmp_path / "abl" / "ablations.md").read_text()
