"""Training on a frozen encoder's precomputed features (`egghand train --feature-cache`)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from egghand_lib.data import feature_cache as FC
from egghand_lib.data.prepared import write_stats
from egghand_lib.data.statistics import compute_stats
from egghand_lib.data.windows import WindowDataset
from egghand_lib.models.encoders.base import EncoderOutput, VideoTextEncoder
from egghand_lib.training import TrainConfig, train


class FrozenMeanEncoder(VideoTextEncoder):
    """Frozen toy encoder: one video token per frame (mean colour), one text token per word."""

    name = "frozen-mean"
    video_dim, text_dim, frozen = 6, 5, True

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.proj = nn.Parameter(torch.randn(3, 6, generator=g), requires_grad=False)
        self.words = nn.Parameter(torch.randn(64, 5, generator=g), requires_grad=False)
        self.calls = 0

    def forward(self, frames, prompts):
        self.calls += 1
        video = (frames.float().mean((-1, -2)) / 255.0) @ self.proj  # (B, 4, 6)
        ids = [[hash(w) % 64 for w in p.split()][:6] for p in prompts]
        text = torch.zeros(len(prompts), 6, 5)
        mask = torch.zeros(len(prompts), 6, dtype=torch.bool)
        for b, row in enumerate(ids):
            text[b, : len(row)] = self.words[torch.tensor(row)]
            mask[b, : len(row)] = True
        return EncoderOutput(video, torch.ones(video.shape[:2], dtype=torch.bool), text, mask)

    def cache_key(self):
        return {"weights_sha256": "frozen-mean-0", "preprocessing": {"pool": "mean"}}


@pytest.fixture()
def prep(tmp_path):
    from tests.fixtures.episodes import make_episodes, write_prepared

    episodes = make_episodes(2, num_frames=30, size=8)
    prep = write_prepared(tmp_path / "prep", episodes)
    write_stats(prep, compute_stats(episodes))
    return prep


def test_training_reads_the_cache_and_never_runs_an_encoder(tmp_path, prep):
    ds = WindowDataset(prep, "train")
    enc = FrozenMeanEncoder()
    FC.build_feature_cache(enc, ds, tmp_path / "cache" / "train", progress=False)
    cfg = TrainConfig.named("tiny", eval_split=None, max_steps=4, batch_size=4, feature_cache=str(tmp_path / "cache"))
    result = train(cfg, tmp_path / "run", prep_dir=prep, progress=False)
    model = result.model
    assert result.finished and model.encoder is None and model.config.encoder == "cached"
    assert (model.config.video_dim, model.config.text_dim) == (6, 5)
    # The trained model forecasts from cached features; changing them changes the forecast.
    cache = FC.CachedFeatures(tmp_path / "cache" / "train", dataset=ds)
    wrapped = FC.with_cached_features(ds, cache, drop_frames=True)
    batch = ds.collate_fn([wrapped[i] for i in range(3)])
    assert "frames" not in batch
    base = model.forecast(batch)
    batch["video_tokens"] = batch["video_tokens"] + 5.0
    assert not torch.allclose(model.forecast(batch), base)
    # Evaluation of that model reads the same cache; its numbers equal forecast_metrics on its forecasts.
    from egghand_lib.evaluation import evaluate
    from egghand_lib.metrics import forecast_metrics

    res = evaluate(prep, "train", model, feature_cache=tmp_path / "cache", progress=False)
    all_items = ds.collate_fn([wrapped[i] for i in range(len(ds))])
    ref = forecast_metrics(model.forecast(all_items), all_items["future_joints"], all_items["future_valid"])
    got = res["metrics"]["EggHand"]["egghand"]["all"]
    assert got["ade"] == pytest.approx(ref["ade"], rel=1e-4) and got["mpjpe"] == pytest.approx(ref["mpjpe"], rel=1e-4)


def test_a_cache_of_other_data_is_refused(tmp_path, prep):
    ds = WindowDataset(prep, "train", protocol="egghand-code")  # other windows than the training ones
    FC.build_feature_cache(FrozenMeanEncoder(), ds, tmp_path / "cache" / "train", progress=False)
    cfg = TrainConfig.named("tiny", eval_split=None, max_steps=2, feature_cache=str(tmp_path / "cache"))
    with pytest.raises(FC.StaleCacheError):
        train(cfg, tmp_path / "run", prep_dir=prep, progress=False)


def test_runs_sharing_a_feature_cache_dir_encode_their_data_once(tmp_path, prep):
    from tests.fixtures.episodes import make_episodes, write_prepared

    over = {"encoder": "egovideo-mini", "encoder_kwargs": {}, "video_dim": None, "text_dim": None}
    cfg = TrainConfig.named("tiny", eval_split=None, max_steps=2, feature_cache="auto",
                            feature_cache_dir=str(tmp_path / "shared"), model_overrides=over)
    train(cfg, tmp_path / "a", prep_dir=prep, progress=False)
    (folder,) = (tmp_path / "shared").iterdir()
    assert folder.name.startswith("egovideo-mini-") and (folder / "train").is_dir()
    assert not (tmp_path / "a" / "features").exists()
    stamps = {p: p.stat().st_mtime_ns for p in folder.rglob("shard_*")}
    assert stamps
    # another seed: the same data and encoder, so the cache is read, not rebuilt
    train(cfg.replace(seed=1), tmp_path / "b", prep_dir=prep, progress=False)
    assert list((tmp_path / "shared").iterdir()) == [folder]
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("shard_*")} == stamps  # no shard encoded again
    assert cfg.digest() == cfg.replace(feature_cache_dir=None).digest()  # where caches live changes no weight
    # other data: a cache folder of its own
    episodes = make_episodes(3, num_frames=30, size=8)
    other = write_prepared(tmp_path / "other", episodes)
    write_stats(other, compute_stats(episodes))
    train(cfg, tmp_path / "c", prep_dir=other, progress=False)
    assert len(list((tmp_path / "shared").iterdir())) == 2
