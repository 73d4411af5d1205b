"""Encoders: shapes and masks, offline text model, frozen-ness, determinism, strict EgoVideo loading."""

from __future__ import annotations

import pytest
import torch

from egghand_lib.models.encoders import (
    CachedEncoder,
    EncoderOutput,
    available_encoders,
    build_encoder,
    features_from_batch,
)


def _frames(b: int = 2, size: int = 64, seed: int = 0, dtype=torch.uint8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (b, 4, 3, size, size), generator=g, dtype=torch.uint8)
    return x if dtype == torch.uint8 else x.float() / 255


def _check_output(out: EncoderOutput, b: int, enc) -> None:
    assert out.video_tokens.shape == (b, enc.num_video_tokens, enc.video_dim)
    assert out.video_mask.shape == (b, enc.num_video_tokens) and out.video_mask.dtype == torch.bool
    assert out.text_tokens.ndim == 3 and out.text_tokens.shape[0] == b and out.text_tokens.shape[2] == enc.text_dim
    assert out.text_mask.shape == out.text_tokens.shape[:2] and out.text_mask.dtype == torch.bool
    assert torch.isfinite(out.video_tokens).all() and torch.isfinite(out.text_tokens).all()
    assert out.text_mask.any(dim=1).all()  # every prompt has at least one real token


# ---------------------------------------------------------------- offline (MiniLM text + small CNN)


@pytest.fixture(scope="module")
def offline():
    torch.manual_seed(0)
    return build_encoder("offline")


def test_registry_names_and_unknown_name():
    assert {"offline", "egovideo", "internvl", "cached"} <= set(available_encoders())
    with pytest.raises(ValueError, match="unknown name 'clip'"):
        build_encoder("clip")


def test_offline_shapes_masks_and_gradients(offline):
    frames = _frames(3, size=96)
    prompts = ["Cut the onion into thin slices.", "Tighten the bolt.", "Cut the onion into thin slices."]
    out = offline(frames, prompts)
    _check_output(out, 3, offline)
    assert offline.num_video_tokens == 64 and offline.video_dim == 128 and offline.text_dim == 384
    assert out.video_mask.all()
    # float frames take the float resize path; uint8 resizing rounds to integers, so only close
    as_float = offline.encode_video(frames.float() / 255)[0]
    assert (as_float - out.video_tokens).abs().mean() < 0.05
    # text padding: real tokens first, zeros after; identical prompts give identical rows
    n_real = out.text_mask.sum(1)
    assert n_real[0] == n_real[2] and n_real[0] > n_real[1] >= 3
    assert torch.equal(out.text_tokens[0], out.text_tokens[2])
    assert (out.text_tokens[1, n_real[1] :] == 0).all()
    assert not offline.frozen
    # video trains, text is frozen
    (out.video_tokens.square().mean() + out.text_tokens.sum()).backward()
    assert all(p.grad is not None for p in offline.video.parameters())
    assert all(not p.requires_grad and p.grad is None for p in offline.text.parameters())
    offline.zero_grad()


def test_offline_minilm_is_pretrained_and_discriminates_prompts(offline):
    prompts = ["Cook an omelet in a pan.", "Fix the flat tire of the bicycle.", "Cook an omelette in the pan."]
    tokens, mask = offline.encode_text(prompts)
    m = mask.unsqueeze(-1).float()
    emb = torch.nn.functional.normalize((tokens * m).sum(1) / m.sum(1), dim=-1)  # sentence-transformers pooling
    cos = emb @ emb.T
    # pretrained weights: paraphrases are much closer than unrelated prompts (random weights would not do this)
    assert cos[0, 2] > 0.8 and cos[0, 1] < 0.5, cos
    assert not torch.allclose(tokens[0], tokens[1])


def test_offline_text_cache_and_batch_independence(offline):
    offline.text.clear_cache()
    a, _ = offline.encode_text(["Slice the bread.", "Pour the milk."])
    assert len(offline.text._cache) == 2
    b, _ = offline.encode_text(["Pour the milk.", "Wash the dishes.", "Pour the milk."])
    assert len(offline.text._cache) == 3  # only the new prompt was encoded
    assert torch.equal(a[1], b[0]) and torch.equal(b[0], b[2])
    key = offline.text_cache_key()
    assert key["name"] == "minilm-l6-v2-tokens" and key["max_text_len"] == 32 and len(key["weights"]) == 16
    with pytest.raises(NotImplementedError, match="cannot be cached"):
        offline.cache_key()  # the encoder as a whole trains


def test_offline_deterministic_uint8_equals_float_and_train_mode_keeps_text_frozen(offline):
    frames = _frames(2, size=64)
    offline.train()
    assert not offline.text.training and not offline.text.model.training  # dropout stays off
    out1 = offline(frames, ["a", "b"])
    out2 = offline(frames.float() / 255, ["a", "b"])
    assert torch.allclose(out1.video_tokens, out2.video_tokens, atol=1e-5)
    assert torch.equal(out1.text_tokens, out2.text_tokens)
    offline.eval()


def _frame_by_frame(enc, frames):
    """video tokens assembled from per-frame features, each frame encoded alone (what a stream does)."""
    feats = torch.stack([torch.stack([enc.encode_frames(clip[k:k + 1])[0] for k in range(4)]) for clip in frames])
    return enc.video_tokens_from_frames(feats)


def test_offline_frame_by_frame_features_give_the_clip_tokens(offline):
    assert offline.frames_independent
    frames = _frames(3, size=48)
    want, want_mask = offline.encode_video(frames)
    got, mask = _frame_by_frame(offline, frames)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert torch.equal(mask, want_mask)
    assert not torch.allclose(got[0], got[1])  # the clips differ


def test_offline_video_tokens_depend_on_object_location():
    torch.manual_seed(0)
    from egghand_lib.models.encoders.offline import OfflineEncoderConfig, SmallVideoCNN

    net = SmallVideoCNN(OfflineEncoderConfig(grid=2))
    left = torch.zeros(1, 4, 3, 64, 64, dtype=torch.uint8)
    right = left.clone()
    left[..., 24:40, 4:20] = 255
    right[..., 24:40, 44:60] = 255
    # same object, mirrored position: the tokens must differ (coordinates are kept)
    assert net(left).shape == (1, 16, 128)
    assert not torch.allclose(net(left), net(right), atol=1e-3)


def test_offline_bad_inputs(offline):
    with pytest.raises(ValueError, match=r"frames: expected shape \(B, 4, 3, H, W\)"):
        offline(torch.zeros(2, 3, 3, 64, 64, dtype=torch.uint8), ["a", "b"])
    with pytest.raises(ValueError, match="2 prompts for a batch of 3"):
        offline(_frames(3), ["a", "b"])
    with pytest.raises(ValueError, match="list of str"):
        offline.encode_text("a single string")
    with pytest.raises(ValueError, match="unknown option"):
        build_encoder("offline", image_sise=64)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        build_encoder("offline", text_model_dir="/nonexistent/minilm")


# ---------------------------------------------------------------- cached features


def test_cached_encoder_reads_batch_and_errors_clearly():
    enc = build_encoder("cached", video_dim=8, text_dim=4, num_video_tokens=1, source_key={"name": "x"})
    assert isinstance(enc, CachedEncoder) and enc.frozen
    batch = {"video_tokens": torch.randn(2, 1, 8), "text_tokens": torch.randn(2, 5, 4),
             "text_mask": torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)}
    out = enc.encode_batch(batch)
    _check_output(out, 2, enc)
    assert out.video_mask.all() and torch.equal(out.text_mask, batch["text_mask"])
    assert enc.cache_key() == {"name": "x"}
    with pytest.raises(ValueError, match=r"no \['video_tokens'\] features"):
        enc.encode_batch({"text_tokens": batch["text_tokens"]})
    with pytest.raises(ValueError, match="feature width 8 != expected 16"):
        build_encoder("cached", video_dim=16, text_dim=4).encode_batch(batch)
    with pytest.raises(ValueError, match="reads features from the batch"):
        enc(_frames(2), ["a", "b"])


def test_features_from_batch_mixes_cached_text_with_trained_video(offline):
    frames = _frames(2)
    text, mask = offline.encode_text(["x y", "z"])
    batch = {"frames": frames, "task": ["ignored", "ignored"], "text_tokens": text, "text_mask": mask}
    out = features_from_batch(offline, batch)
    assert torch.equal(out.text_tokens, text)
    assert torch.allclose(out.video_tokens, offline.encode_video(frames)[0])
    with pytest.raises(ValueError, match="neither 'video_tokens' nor 'frames'"):
        features_from_batch(offline, {"task": ["a"]})


# ---------------------------------------------------------------- EgoVideo (small random instance, real key layout)

from egghand_lib.models.encoders.egovideo import (  # noqa: E402
    EgoVideoConfig,
    EgoVideoModel,
    _unused_ok,
    egovideo_manifest,
    load_egovideo_checkpoint,
    random_egovideo_state_dict,
)

SMALL_EGOVIDEO = EgoVideoConfig(
    image_size=28, width=32, depth=2, heads=4, mlp_dim=64, pool_heads=4, pool_dim=24, embed_dim=16,
    text_width=32, text_layers=2, text_heads=4, text_mlp_dim=64, max_positions=64,
)


@pytest.fixture(scope="module")
def small_egovideo_ckpt(tmp_path_factory):
    """A random small-width EgoVideo saved like the release: 'module.' prefix + tensors the features never use."""
    state = random_egovideo_state_dict(SMALL_EGOVIDEO, seed=1)
    state["textual.embeddings.position_ids"] = torch.arange(64)[None]
    state["textual.encoder.layer.2.crossattention.self.query.weight"] = torch.zeros(32, 32)  # fusion layer
    state["visual.clip_decoder.0.head.weight"] = torch.zeros(8, 32)
    path = tmp_path_factory.mktemp("egovideo") / "ckpt_small.pth"
    torch.save({"module." + k: v for k, v in state.items()}, path)
    return path, state


@pytest.fixture(scope="module")
def egovideo(small_egovideo_ckpt):
    return build_encoder("egovideo", checkpoint=small_egovideo_ckpt[0], config=SMALL_EGOVIDEO)


def test_egovideo_full_size_keys_and_shapes_equal_the_manifest():
    with torch.device("meta"):
        model = EgoVideoModel(EgoVideoConfig())
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    manifest = egovideo_manifest()
    assert shapes == manifest["required"]  # same names, same shapes, nothing more
    assert len(shapes) == manifest["counts"]["required_tensors"] == 849
    assert sum(v.numel() for v in model.state_dict().values()) == manifest["counts"]["required_params"]


def test_egovideo_unused_rule_covers_the_manifest_list():
    cfg = EgoVideoConfig()
    for entry in egovideo_manifest()["unused_ok"]:
        if "19..23" in entry:
            assert _unused_ok("textual.encoder.layer.19.crossattention.self.query.weight", cfg)
            assert _unused_ok("textual.encoder.layer.23.output.dense.bias", cfg)
        elif entry.endswith(".*"):
            assert _unused_ok(entry[:-1] + "dense.weight", cfg), entry
        else:
            assert _unused_ok(entry, cfg), entry
    assert not _unused_ok("textual.encoder.layer.18.output.dense.bias", cfg)
    assert not _unused_ok("visual.blocks.0.norm1.weight", cfg)


def test_egovideo_loads_through_strict_loader_and_matches_the_saved_weights(small_egovideo_ckpt, egovideo):
    _, state = small_egovideo_ckpt
    loaded = egovideo.model.state_dict()
    assert set(loaded) == {k for k in state if not _unused_ok(k, SMALL_EGOVIDEO)}
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)
    assert egovideo.frozen and not egovideo.training
    assert all(not p.requires_grad for p in egovideo.parameters())


def test_egovideo_output_shapes_masks_and_determinism(egovideo):
    assert not egovideo.frames_independent  # its ViT attends across the 4 frames: a stream encodes clips
    frames = _frames(2, size=40)
    prompts = ["Cut the onion.", "Tighten the bolt on the bike axle firmly."]
    out = egovideo(frames, prompts)
    _check_output(out, 2, egovideo)
    assert out.video_tokens.shape == (2, 1, 32) and out.text_tokens.shape == (2, 59, 16)
    n_real = out.text_mask.sum(1).tolist()
    assert n_real == [len(egovideo.tokenizer(p)["input_ids"]) for p in prompts] and n_real[0] < n_real[1]
    assert out.text_mask[:, 0].all() and not out.text_mask[:, -1].any()  # real tokens first
    again = egovideo(frames, prompts)
    assert torch.equal(out.video_tokens, again.video_tokens) and torch.equal(out.text_tokens, again.text_tokens)
    # a window's features do not depend on the rest of the batch (fixed padding length)
    alone = egovideo(frames[:1], prompts[:1])
    assert torch.allclose(alone.text_tokens[0], out.text_tokens[0], atol=1e-5)
    assert torch.allclose(alone.video_tokens[0], out.video_tokens[0], atol=1e-5)
    assert not torch.allclose(out.video_tokens[0], out.video_tokens[1])


def test_egovideo_other_outputs_tokenizer_and_cache_key(small_egovideo_ckpt, egovideo):
    frames = _frames(1, size=28)
    cls_tok = egovideo.encode_video(frames)[0]
    all_enc = build_encoder("egovideo", checkpoint=small_egovideo_ckpt[0], config=SMALL_EGOVIDEO, video_output="all")
    all_tok = all_enc.encode_video(frames)[0]
    assert all_tok.shape == (1, 1 + 4 * 2 * 2, 32) == (1, all_enc.num_video_tokens, all_enc.video_dim)
    assert torch.equal(all_tok[:, :1], cls_tok)  # the EggHand token is the CLS of the last block
    pooled = build_encoder("egovideo", checkpoint=small_egovideo_ckpt[0], config=SMALL_EGOVIDEO,
                           video_output="pooled", dtype="bfloat16")
    assert pooled.model.text_projection.dtype == torch.bfloat16
    pooled_tok = pooled.encode_video(frames)[0]
    assert pooled_tok.shape == (1, 1, 24) and pooled_tok.dtype == torch.float32
    assert pooled.encode_text(["cut the onion"])[0].dtype == torch.float32
    tok = egovideo.tokenizer
    assert tok.vocab_size == 30522 and tok.tokenize("Cut The ONION") == ["cut", "the", "onion"]
    from egghand_lib.models.encoders.egovideo import load_bert_uncased_tokenizer

    vocab_dir = small_egovideo_ckpt[0].parent
    vocab = vocab_dir / "vocab.txt"
    words = tok.convert_ids_to_tokens(list(range(30522)))
    vocab.write_text("\n".join(words[:-1]) + "\n")
    with pytest.raises(ValueError, match="30521 entries, expected 30522"):
        load_bert_uncased_tokenizer(vocab_dir)
    vocab.write_text("\n".join(words[:-1] + ["Onion"]) + "\n")
    with pytest.raises(ValueError, match="cased vocabulary"):
        load_bert_uncased_tokenizer(vocab)
    vocab.write_text("\n".join(words) + "\n")
    assert load_bert_uncased_tokenizer(vocab_dir).tokenize("Cut The ONION") == ["cut", "the", "onion"]
    with pytest.raises(FileNotFoundError, match="no WordPiece vocabulary"):
        load_bert_uncased_tokenizer(vocab_dir / "missing")
    key = egovideo.cache_key()
    assert key["name"] == "egovideo-4f" and key["video_output"] == "cls" and key["max_text_len"] == 59
    assert key != all_enc.cache_key()
    other = small_egovideo_ckpt[0].with_name("other.pth")
    torch.save(random_egovideo_state_dict(SMALL_EGOVIDEO, seed=2), other)
    assert build_encoder("egovideo", checkpoint=other, config=SMALL_EGOVIDEO).cache_key()["weights"] != key["weights"]


def test_bert_uncased_tokenizer_holds_the_whole_vocabulary():
    """All 30522 WordPiece entries, each word at its vocab.txt line (transformers 5 silently builds a 5-token
    tokenizer from ``BertTokenizerFast(vocab_file=...)``: every word [UNK]); the MiniLM folder's own tokenizer.json
    beside the vocabulary (truncation and padding at 128) is not used."""
    from egghand_lib.models.encoders._utils import minilm_model_dir
    from egghand_lib.models.encoders.egovideo import load_bert_uncased_tokenizer

    tok = load_bert_uncased_tokenizer()  # the vocabulary shipped with MiniLM
    entries = (minilm_model_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(tok) == tok.vocab_size == len(entries) == 30522
    ids = tok("Cut the onion, then tighten the bolt of the bicycle axle.")["input_ids"]
    words = ["[CLS]", "cut", "the", "onion", ",", "then", "tighten", "the", "bolt", "of", "the", "bicycle", "axle",
             ".", "[SEP]"]
    assert ids == [entries.index(w) for w in words] and tok.unk_token_id not in ids
    assert len(tok(" ".join(["onion"] * 600))["input_ids"]) == 602


def test_egovideo_frozen_in_a_training_graph(egovideo):
    egovideo.train()
    assert not egovideo.training and not egovideo.model.textual.training
    head = torch.nn.Linear(32, 1)
    out = egovideo(_frames(2, size=28), ["a", "b"])
    head(out.video_tokens).sum().backward()
    assert head.weight.grad is not None
    assert all(p.grad is None for p in egovideo.parameters())


class _Payload:
    """An arbitrary pickled object: torch.load(weights_only=True) must refuse it."""


def test_egovideo_malformed_checkpoints(small_egovideo_ckpt, tmp_path):
    _, state = small_egovideo_ckpt
    broken = dict(state)
    del broken["visual.blocks.1.attn.qkv.weight"]
    del broken["text_projection"]
    broken["visual.pos_embed"] = torch.zeros(1, 5, 32)
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(ValueError) as err:
        load_egovideo_checkpoint(path, SMALL_EGOVIDEO)
    msg = str(err.value)
    assert str(path) in msg and "2 missing, 1 with a wrong shape" in msg
    assert "missing: visual.blocks.1.attn.qkv.weight" in msg and "missing: text_projection" in msg
    assert "wrong shape: visual.pos_embed: file (1, 5, 32) != model (1, 17, 32)" in msg

    pickled = tmp_path / "pickled.pth"
    torch.save({"visual.cls_token": torch.zeros(1, 1, 32), "payload": _Payload()}, pickled)
    with pytest.raises(ValueError, match="refused by torch.load\\(weights_only=True\\)"):
        load_egovideo_checkpoint(pickled, SMALL_EGOVIDEO)
    with pytest.raises(FileNotFoundError, match="ckpt_4frames.pth"):
        build_encoder("egovideo", checkpoint=tmp_path / "nope.pth", config=SMALL_EGOVIDEO)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth"):
        load_egovideo_checkpoint(garbage, SMALL_EGOVIDEO)
    extra = dict(state)
    extra["visual.something_new"] = torch.zeros(3)
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.warns(UserWarning, match="ignoring 1 unexpected tensor\\(s\\): visual.something_new"):
        load_egovideo_checkpoint(tmp_path / "extra.pth", SMALL_EGOVIDEO)


# ---------------------------------------------------------------- InternVL (tiny random config + tiny tokenizer)

TINY_WORDS = ["[PAD]", "[UNK]", "<eos>"] + "cut the onion tighten bolt on bike axle pour milk".split()


@pytest.fixture(scope="module")
def tiny_internvl_dir(tmp_path_factory):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import InternVLConfig, InternVLForConditionalGeneration, PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(TINY_WORDS)}, unk_token="[UNK]"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]", eos_token="<eos>")
    config = InternVLConfig(
        vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                           image_size=[56, 56], patch_size=[14, 14]),
        text_config=dict(model_type="qwen3", hidden_size=24, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, head_dim=12, intermediate_size=48, vocab_size=len(TINY_WORDS),
                         max_position_embeddings=64, tie_word_embeddings=True),
        image_token_id=1, image_seq_length=4,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = InternVLForConditionalGeneration(config)
    path = tmp_path_factory.mktemp("internvl")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "preprocessor_config.json").write_text('{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}')
    return path, model.state_dict()


def test_internvl_loads_locally_with_shapes_masks_frozen_and_deterministic(tiny_internvl_dir):
    path, saved = tiny_internvl_dir
    enc = build_encoder("internvl", model_dir=path, max_text_len=8)
    loaded = enc.model.state_dict()
    assert set(loaded) == set(saved) and all(torch.equal(loaded[k], saved[k]) for k in saved)  # real weights
    frames = _frames(2, size=64)
    prompts = ["Cut the onion", "pour milk"]
    out = enc(frames, prompts)
    _check_output(out, 2, enc)
    assert out.video_tokens.shape == (2, 4, 24) and out.text_tokens.shape == (2, 8, 24)
    assert out.text_mask.sum(1).tolist() == [3, 2] and out.text_mask[:, 0].all()
    assert torch.allclose(enc.mean.flatten(), torch.tensor([0.5, 0.5, 0.5]))  # the folder's image stats
    again = enc(frames, prompts)
    assert torch.equal(out.video_tokens, again.video_tokens) and torch.equal(out.text_tokens, again.text_tokens)
    assert not torch.allclose(out.text_tokens[0, :2], out.text_tokens[1, :2])
    assert enc.frozen and all(not p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.model.training
    key = enc.cache_key()
    assert key["name"] == "internvl" and key["video_tokens"] == "frame_mean" and len(key["weights"]) == 16

    all_tokens = build_encoder("internvl", model_dir=path, video_tokens="all")
    video, mask = all_tokens.encode_video(frames)
    assert video.shape == (2, 4 * 4, 24) == (2, all_tokens.num_video_tokens, all_tokens.video_dim) and mask.all()
    assert torch.allclose(video.view(2, 4, 4, 24).mean(2), out.video_tokens, atol=1e-5)
    for e in (enc, all_tokens):  # frame by frame, as a stream encodes them
        assert e.frames_independent
        torch.testing.assert_close(_frame_by_frame(e, frames)[0], e.encode_video(frames)[0], rtol=0, atol=1e-5)


def test_internvl_missing_dir_says_what_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="OpenGVLab/InternVL3_5-1B-HF"):
        build_encoder("internvl", model_dir=tmp_path / "InternVL3_5-1B-HF")


def test_weights_fingerprint_samples_large_tensors_and_sees_changes():
    from egghand_lib.models.encoders._utils import state_dict_fingerprint

    big = torch.zeros(2**25 + 7, dtype=torch.uint8)  # float32 index arithmetic would overrun this one
    a = state_dict_fingerprint({"w": big, "b": torch.ones(3)})
    big[-1] = 1  # the last element is always sampled
    b = state_dict_fingerprint({"w": big, "b": torch.ones(3)})
    assert b != a and b == state_dict_fingerprint({"b": torch.ones(3), "w": big})  # key order does not matter


def test_egghand_cache_command_with_a_small_egovideo_then_train_on_it(tmp_path, small_egovideo_ckpt, egovideo,
                                                                     capsys):
    """`egghand cache` (EgoVideo of another size via --encoder-config), then `egghand train --feature-cache`."""
    import dataclasses
    import json
    import re

    from egghand_lib.cli import main
    from egghand_lib.data import feature_cache as FC
    from egghand_lib.data.prepared import write_stats
    from egghand_lib.data.statistics import compute_stats
    from egghand_lib.data.windows import WindowDataset
    from egghand_lib.models.egghand import EggHandPolicy
    from tests.fixtures.episodes import make_episodes, write_prepared

    episodes = make_episodes(2, num_frames=30, size=28)
    prep = write_prepared(tmp_path / "prep", episodes)
    write_stats(prep, compute_stats(episodes))
    cfg_file = tmp_path / "egovideo_small.json"
    cfg_file.write_text(json.dumps(dataclasses.asdict(SMALL_EGOVIDEO)))
    cache_dir = tmp_path / "cache"
    args = ["cache", "--prep", str(prep), "--out", str(cache_dir), "--splits", "train", "--encoder", "egovideo",
            "--checkpoint", str(small_egovideo_ckpt[0]), "--device", "cpu", "--no-progress"]
    assert main(args + ["--encoder-config", str(cfg_file)]) == 0
    # The cached features are the encoder's own outputs for those windows.
    ds = WindowDataset(prep, "train")
    cache = FC.CachedFeatures(cache_dir / "train", dataset=ds, encoder_key=egovideo)
    idx = [0, len(ds) - 1]
    batch = ds.collate_fn([ds[i] for i in idx])
    with torch.no_grad():
        direct = egovideo(batch["frames"], batch["task"])
    for j, i in enumerate(idx):
        assert torch.allclose(cache[i]["video_tokens"], direct.video_tokens[j], atol=1e-5)
        n = int(direct.text_mask[j].sum())
        assert torch.allclose(cache[i]["text_tokens"][:n], direct.text_tokens[j, :n], atol=1e-5)
    # Training from the cache via the command line: a model on cached EgoVideo-sized features.
    run = tmp_path / "run"
    assert main(["train", "--prep", str(prep), "--out", str(run), "--config", "tiny", "--steps", "2",
                 "--batch-size", "4", "--feature-cache", str(cache_dir), "--set", "eval_split=null",
                 "--no-progress"]) == 0
    model = EggHandPolicy.from_pretrained(run / "model")
    assert model.config.encoder == "cached" and model.config.video_dim == SMALL_EGOVIDEO.width
    # Wrong config files are named in the error; a config of the wrong size is refused by the strict loader.
    # The command prints them as one line and exits 2 (into another folder: the cache folder holds the good run).
    args = [str(tmp_path / "cache_bad") if a == str(cache_dir) else a for a in args]
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    capsys.readouterr()
    assert main(args + ["--encoder-config", str(bad)]) == 2
    assert re.fullmatch(r"egghand cache: error: --encoder-config: .*bad.json must hold a JSON object.*\n",
                        capsys.readouterr().err)
    bad.write_text(json.dumps({"widht": 32}))
    assert main(args + ["--encoder-config", str(bad)]) == 2
    assert re.fullmatch(r"egghand cache: error: .*unknown field.*widht.*\n", capsys.readouterr().err)
    assert main(args) == 2  # the release size does not fit the small checkpoint
    err = capsys.readouterr().err
    assert re.fullmatch(r"egghand cache: error: .*ckpt_small.pth: .*\n", err) and err.count("\n") == 1
    # Modality ablation of that model: it re-encodes the corrupted frames with the encoder that built the cache.
    from egghand_lib.ablations import run_ablations
    from egghand_lib.evaluation import evaluate

    res = run_ablations(prep, tmp_path / "abl0", run, which=["modality", "egomotion"], split="train", progress=False)
    assert [r["status"] for r in res["rows"]] == ["not run"] * 5 and "--egovideo" in res["rows"][0]["reason"]
    res = run_ablations(prep, tmp_path / "abl", run, which=["modality"], split="train", progress=False,
                        frame_encoder=egovideo)
    rows = {r["variant"]: r for r in res["rows"]}
    assert all(r["status"] == "ok" for r in rows.values())
    cached = evaluate(prep, "train", run, feature_cache=cache_dir, progress=False)["metrics"]["EggHand"]["egghand"]
    assert rows["clean"]["ade"] == pytest.approx(cached["all"]["ade"], rel=1e-4)  # re-encoded == cached features
    assert rows["noisy vision"]["ade_vs_clean"] != 0.0
    with pytest.raises(ValueError, match="already has an encoder"):
        EggHandPolicy.from_pretrained(run / "model", encoder=egovideo).attach_encoder(egovideo)
