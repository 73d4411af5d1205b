"""Feature cache of a frozen encoder: build, exact read-back, staleness, resume, corruption."""

from __future__ import annotations

import json
import pickle
import threading

import pytest
import torch
from filelock import FileLock
from torch import nn

from egghand_lib.batch import collate_windows
from egghand_lib.data import feature_cache as FC
from egghand_lib.models.encoders.base import EncoderOutput, VideoTextEncoder


class TinyFrozenEncoder(VideoTextEncoder):
    """Deterministic toy encoder: 4 video tokens (one per frame) and one token per prompt character."""

    name = "tiny-frozen"
    video_dim = 6
    text_dim = 5
    frozen = True

    def __init__(self, seed: int = 0, text_len: int | None = 12):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.proj = nn.Parameter(torch.randn(3, self.video_dim, generator=g), requires_grad=False)
        self.emb = nn.Parameter(torch.randn(128, self.text_dim, generator=g), requires_grad=False)
        self.seed, self.text_len = seed, text_len
        self.calls = 0

    def forward(self, frames, prompts):
        self.calls += 1
        x = frames.float().mean((-1, -2)) / 255.0  # (B, 4, 3)
        video = x @ self.proj  # (B, 4, Dv)
        codes = [[ord(c) % 128 for c in p] for p in prompts]
        L = self.text_len or max(len(c) for c in codes)  # None: pad to the longest prompt of the batch
        text = torch.zeros(len(prompts), L, self.text_dim)
        mask = torch.zeros(len(prompts), L, dtype=torch.bool)
        for b, c in enumerate(codes):
            c = c[:L]
            text[b, : len(c)] = self.emb[torch.tensor(c, dtype=torch.long)] * (1 + torch.arange(len(c))[:, None])
            mask[b, : len(c)] = True
        return EncoderOutput(video, torch.ones(video.shape[:2], dtype=torch.bool), text, mask)

    def cache_key(self):
        return {"weights_sha256": f"seed-{self.seed}", "preprocessing": {"pool": "mean", "text_len": self.text_len}}


class ToyWindows(torch.utils.data.Dataset):
    """Windows with frames and prompts, identified like a prepared WindowDataset (prep_dir/manifest.json)."""

    def __init__(self, prep_dir, n: int = 23, split: str = "train", protocol: str = "future"):
        self.prep_dir, self.split, self.protocol = prep_dir, split, protocol
        g = torch.Generator().manual_seed(1)
        self.frames = torch.randint(0, 256, (n, 4, 3, 8, 8), generator=g, dtype=torch.uint8)
        self.tasks = [["cut the bread", "stir", "open the fridge door"][i % 3] for i in range(n)]

    def __len__(self):
        return len(self.tasks)

    def __getitem__(self, i):
        return {"frames": self.frames[i], "task": self.tasks[i], "frame_index": torch.tensor(3 * i)}


@pytest.fixture
def prep(tmp_path):
    d = tmp_path / "prep"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"version": 1, "takes": ["a", "b"]}))
    return d


def _direct(encoder, ds, idx):
    b = collate_windows([ds[i] for i in idx])
    with torch.no_grad():
        return encoder(b["frames"], b["task"])


def test_build_and_read_equal_encoder_outputs(tmp_path, prep):
    enc, ds = TinyFrozenEncoder(), ToyWindows(prep)
    cache = FC.build_feature_cache(enc, ds, tmp_path / "cache", batch_size=4, shard_size=10, progress=False)
    assert len(cache) == len(ds)
    shards = sorted(p.name for p in (tmp_path / "cache").glob("shard_*"))
    assert shards == [f"shard_0000{i}.safetensors" for i in range(3)]
    out = _direct(enc, ds, range(len(ds)))
    for i in range(len(ds)):
        f = cache[i]
        torch.testing.assert_close(f["video_tokens"], out.video_tokens[i], rtol=0, atol=0)
        torch.testing.assert_close(f["text_tokens"], out.text_tokens[i], rtol=0, atol=0)
        assert torch.equal(f["video_mask"], out.video_mask[i]) and torch.equal(f["text_mask"], out.text_mask[i])
    wrapped = FC.with_cached_features(ds, tmp_path / "cache", drop_frames=True, encoder_key=enc)
    item = wrapped[11]
    assert "frames" not in item and item["task"] == ds.tasks[11]
    clone = pickle.loads(pickle.dumps(wrapped))  # DataLoader workers get a pickled copy
    torch.testing.assert_close(clone[11]["text_tokens"], item["text_tokens"], rtol=0, atol=0)
    batch = collate_windows([wrapped[i] for i in range(5)])
    assert batch["video_tokens"].shape == (5, 4, 6) and batch["text_tokens"].shape == (5, 12, 5)
    assert cache.token_shape("video") == (4, 6) and cache.token_shape("text") == (12, 5)
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["encoder"]["cache_key"]["weights_sha256"] == "seed-0" and manifest["complete"]
    assert manifest["dataset"]["split"] == "train" and manifest["dataset"]["num_windows"] == len(ds)


def test_concurrent_builds_wait_for_the_one_that_builds(tmp_path, prep):
    """Two runs sharing a feature folder: while one holds the cache's lock the other waits, then reads the
    finished cache without encoding again (and without clearing the first one's partial files)."""
    enc, ds = TinyFrozenEncoder(), ToyWindows(prep, n=9)
    cache_dir = tmp_path / "features" / "train"
    done: list = []
    cache_dir.mkdir(parents=True)
    with FileLock(FC.cache_lock_path(cache_dir)):  # "the other process" is building
        worker = threading.Thread(target=lambda: done.append(
            FC.build_feature_cache(enc, ds, cache_dir, batch_size=4, shard_size=4, progress=False)))
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive() and not done and enc.calls == 0  # waiting, nothing encoded or written
        assert not (cache_dir / FC.MANIFEST).exists()
        # the holder's build (the locked body itself: a second lock in this process would wait for the first)
        FC._build_locked(TinyFrozenEncoder(), ds, cache_dir, 4, 4, False, 0, True, False, None, None, None, FC.PARTS)
    worker.join(timeout=30)
    assert done and len(done[0]) == len(ds)
    assert enc.calls == 0  # the waiting build found the cache complete: it encoded nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features", "prep"]  # nothing written beside the cache
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == ["train"]


def test_variable_text_length_is_padded_and_masked(tmp_path, prep):
    enc, ds = TinyFrozenEncoder(text_len=None), ToyWindows(prep, n=9)
    cache = FC.build_feature_cache(enc, ds, tmp_path / "c", batch_size=2, shard_size=4, progress=False)
    longest = max(len(t) for t in ds.tasks)
    for i in range(len(ds)):
        f = cache[i]
        single = _direct(enc, ds, [i])  # unpadded: the prompt's own length
        L = len(ds.tasks[i])
        assert f["text_tokens"].shape == (longest, 5) and int(f["text_mask"].sum()) == L
        torch.testing.assert_close(f["text_tokens"][:L], single.text_tokens[0], rtol=0, atol=0)
        assert not f["text_tokens"][L:].any()


def test_stale_cache_refused(tmp_path, prep):
    enc, ds = TinyFrozenEncoder(seed=0), ToyWindows(prep, n=6)
    FC.build_feature_cache(enc, ds, tmp_path / "c", batch_size=3, shard_size=4, progress=False)
    with pytest.raises(FC.StaleCacheError, match="weights_sha256: cache has 'seed-0', now 'seed-1'"):
        FC.CachedFeatures(tmp_path / "c", encoder_key=TinyFrozenEncoder(seed=1), dataset=ds)
    with pytest.raises(FC.StaleCacheError, match="split: cache has 'train', now 'val'"):
        FC.with_cached_features(ToyWindows(prep, n=6, split="val"), tmp_path / "c")
    with pytest.raises(FC.StaleCacheError, match="num_windows"):
        FC.with_cached_features(ToyWindows(prep, n=7), tmp_path / "c")
    (prep / "manifest.json").write_text(json.dumps({"version": 1, "takes": ["a"]}))  # data re-prepared
    with pytest.raises(FC.StaleCacheError, match="prep_manifest_sha256"):
        FC.CachedFeatures(tmp_path / "c", dataset=ds)
    with pytest.raises(FC.StaleCacheError, match="stale feature cache"):  # building on top refuses too
        FC.build_feature_cache(enc, ds, tmp_path / "c", batch_size=3, shard_size=4, progress=False)
    cache = FC.build_feature_cache(enc, ds, tmp_path / "c", batch_size=3, shard_size=4, progress=False, overwrite=True)
    assert FC.CachedFeatures(tmp_path / "c", encoder_key=enc, dataset=ds).manifest == cache.manifest


def test_trainable_encoder_refused(tmp_path, prep):
    enc = TinyFrozenEncoder()
    enc.frozen = False
    with pytest.raises(ValueError, match="not frozen"):
        FC.build_feature_cache(enc, ToyWindows(prep, n=3), tmp_path / "c", progress=False)


def test_resume_after_interruption(tmp_path, prep):
    ds = ToyWindows(prep, n=23)
    enc = TinyFrozenEncoder()

    def boom(i):
        if i == 0:
            raise KeyboardInterrupt  # the process dies after the first shard is on disk

    with pytest.raises(KeyboardInterrupt):
        FC.build_feature_cache(enc, ds, tmp_path / "c", batch_size=5, shard_size=10, progress=False, on_shard=boom)
    assert (tmp_path / "c" / "shard_00000.safetensors").is_file()
    assert not (tmp_path / "c" / "shard_00001.safetensors").exists()
    with pytest.raises(ValueError, match="incomplete"):
        FC.CachedFeatures(tmp_path / "c")
    first_mtime = (tmp_path / "c" / "shard_00000.safetensors").stat().st_mtime_ns
    enc2 = TinyFrozenEncoder()
    done = []
    cache = FC.build_feature_cache(enc2, ds, tmp_path / "c", batch_size=5, shard_size=10, progress=False,
                                   on_shard=done.append)
    assert done == [1, 2]  # only the missing shards were computed
    assert enc2.calls == 3  # windows 10..22 in batches of 5
    assert (tmp_path / "c" / "shard_00000.safetensors").stat().st_mtime_ns == first_mtime
    out = _direct(enc2, ds, range(len(ds)))
    for i in (0, 9, 10, 22):
        torch.testing.assert_close(cache[i]["video_tokens"], out.video_tokens[i], rtol=0, atol=0)


def test_corrupted_manifest_and_shard(tmp_path, prep):
    enc, ds = TinyFrozenEncoder(), ToyWindows(prep, n=6)
    FC.build_feature_cache(enc, ds, tmp_path / "c", batch_size=3, shard_size=4, progress=False)
    path = tmp_path / "c" / "manifest.json"
    good = path.read_text()
    path.write_text(good[: len(good) // 2])
    with pytest.raises(ValueError, match="corrupted feature-cache manifest"):
        FC.CachedFeatures(tmp_path / "c")
    m = json.loads(good)
    m["shards"] = m["shards"][:1]
    path.write_text(json.dumps(m))
    with pytest.raises(ValueError, match="shard list does not cover 6 windows"):
        FC.CachedFeatures(tmp_path / "c")
    path.write_text(good)
    (tmp_path / "c" / "shard_00001.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="shard_00001.safetensors"):
        FC.CachedFeatures(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="build the cache"):
        FC.CachedFeatures(tmp_path / "nothing")


class VideoDependentText(TinyFrozenEncoder):
    """Text tokens that mix in the video (as a fused VLM would): they must not be shared per prompt."""

    name = "fused"

    def forward(self, frames, prompts):
        out = super().forward(frames, prompts)
        out.text_tokens = out.text_tokens + out.video_tokens.mean(1, keepdim=True)[..., :1]
        return out


def test_video_dependent_text_detected_and_stored_per_window(tmp_path, prep):
    enc, ds = VideoDependentText(), ToyWindows(prep, n=7)
    with pytest.raises(ValueError, match="share_text=False"):
        FC.build_feature_cache(enc, ds, tmp_path / "a", batch_size=3, shard_size=7, progress=False)
    cache = FC.build_feature_cache(enc, ds, tmp_path / "b", batch_size=3, shard_size=7, progress=False,
                                   share_text=False)
    out = _direct(enc, ds, range(len(ds)))
    for i in range(len(ds)):
        torch.testing.assert_close(cache[i]["text_tokens"], out.text_tokens[i], rtol=0, atol=0)


def test_window_dataset_of_prepared_folder(tmp_path):
    """The real WindowDataset is fingerprinted by its prepared folder; features ride along its items."""
    from egghand_lib.data.windows import WindowDataset
    from tests.fixtures.episodes import make_episodes, write_prepared

    prep = write_prepared(tmp_path / "prep", make_episodes(2, num_frames=8, size=8))
    ds = WindowDataset(prep, "train")
    enc = TinyFrozenEncoder()
    FC.build_feature_cache(enc, ds, tmp_path / "c", batch_size=4, shard_size=5, progress=False)
    wrapped = FC.with_cached_features(ds, tmp_path / "c", encoder_key=enc)
    batch = collate_windows([wrapped[i] for i in range(len(ds))])
    out = _direct(enc, ds, range(len(ds)))
    torch.testing.assert_close(batch["video_tokens"], out.video_tokens, rtol=0, atol=0)
    assert batch["past_joints"].shape == (len(ds), 20, 42, 3) and batch["frames"].shape[1:] == (4, 3, 8, 8)
    assert wrapped.protocol == "future"  # attributes of the wrapped dataset pass through
    with pytest.raises(FC.StaleCacheError, match="protocol"):
        FC.with_cached_features(WindowDataset(prep, "train", protocol="egghand-code"), tmp_path / "c")


def test_half_precision_storage_reads_float32(tmp_path, prep):
    enc, ds = TinyFrozenEncoder(), ToyWindows(prep, n=5)
    cache = FC.build_feature_cache(enc, ds, tmp_path / "c", batch_size=5, shard_size=5, progress=False,
                                   store_dtype=torch.float16)
    out = _direct(enc, ds, range(5))
    f = cache[3]
    assert f["video_tokens"].dtype == torch.float32 and f["text_tokens"].dtype == torch.float32
    torch.testing.assert_close(f["video_tokens"], out.video_tokens[3].half().float(), rtol=0, atol=0)
    with pytest.raises(FC.StaleCacheError, match="store_dtype"):  # resuming with other settings is refused
        FC.build_feature_cache(enc, ds, tmp_path / "c", batch_size=5, shard_size=5, progress=False)


class TinyHalves(TinyFrozenEncoder):
    """Separate video / text halves (like EgoVideo): text must be computed once per unique prompt."""

    name = "tiny-halves"

    def __init__(self, frozen: bool = True):
        super().__init__(text_len=12)
        self.frozen = frozen
        self.text_prompts: list[str] = []
        self.video_calls = 0

    def encode_video(self, frames):
        self.video_calls += 1
        out = TinyFrozenEncoder.forward(self, frames, [""] * len(frames))
        return out.video_tokens, out.video_mask

    def encode_text(self, prompts):
        self.text_prompts += list(prompts)
        out = TinyFrozenEncoder.forward(self, torch.zeros(len(prompts), 4, 3, 2, 2, dtype=torch.uint8), prompts)
        return out.text_tokens, out.text_mask

    def forward(self, frames, prompts):
        raise AssertionError("the cache must use the halves")

    def text_cache_key(self):
        return {"text_weights": "seed-0"}


def test_encoder_halves_text_once_per_prompt(tmp_path, prep):
    enc, ds = TinyHalves(), ToyWindows(prep, n=12)
    cache = FC.build_feature_cache(enc, ds, tmp_path / "c", batch_size=4, shard_size=6, progress=False)
    assert sorted(enc.text_prompts) == sorted(list(set(ds.tasks)) * 2)  # each prompt once per shard (2 shards)
    assert enc.video_calls == 4
    ref = TinyFrozenEncoder(text_len=12)
    out = _direct(ref, ds, range(len(ds)))
    for i in range(len(ds)):
        torch.testing.assert_close(cache[i]["video_tokens"], out.video_tokens[i], rtol=0, atol=0)
        torch.testing.assert_close(cache[i]["text_tokens"], out.text_tokens[i], rtol=0, atol=0)


def test_text_only_cache_for_partly_trained_encoder(tmp_path, prep):
    enc, ds = TinyHalves(frozen=False), ToyWindows(prep, n=7)
    with pytest.raises(ValueError, match=r"not frozen.*parts=\('text',\)"):
        FC.build_feature_cache(enc, ds, tmp_path / "c", progress=False)
    cache = FC.build_feature_cache(enc, ds, tmp_path / "c", batch_size=3, shard_size=4, progress=False,
                                   parts=("text",))
    assert enc.video_calls == 0
    assert set(cache[5]) == {"text_tokens", "text_mask"}
    wrapped = FC.with_cached_features(ds, cache, encoder_key=enc)
    item = wrapped[5]
    assert "frames" in item and "video_tokens" not in item  # the model still computes video itself
    with pytest.raises(ValueError, match="caches no video"):
        FC.with_cached_features(ds, cache, drop_frames=True)
    with pytest.raises(FC.StaleCacheError, match="parts"):
        FC.CachedFeatures(tmp_path / "c", encoder_key=FC.encoder_identity(TinyHalves()))


def test_offline_encoder_text_half(tmp_path, prep):
    """The project's "offline" encoder: its frozen MiniLM text half is cacheable, its video CNN is not."""
    from egghand_lib.models.encoders.offline import OfflineEncoder

    enc, ds = OfflineEncoder(), ToyWindows(prep, n=4)
    cache = FC.build_feature_cache(enc, ds, tmp_path / "c", batch_size=4, progress=False, parts=("text",))
    tokens, mask = enc.encode_text(ds.tasks)
    for i in range(4):
        torch.testing.assert_close(cache[i]["text_tokens"], tokens[i], rtol=0, atol=0)
        assert torch.equal(cache[i]["text_mask"], mask[i])
