"""EgoVideo-mini: shapes, frozen, deterministic and prompt-conditioned tokens, cacheable, save / load."""

from __future__ import annotations

import pytest
import torch

from egghand_lib.models.encoders import build_encoder
from egghand_lib.models.encoders.egovideo_mini import (
    EgoVideoMiniConfig,
    EgoVideoMiniEncoder,
    load_egovideo_mini,
    save_egovideo_mini,
)

SMALL = {"image_size": 32, "channels": (8, 8, 16), "width": 16, "heads": 2, "video_layers": 1, "pointer_layers": 1,
         "embed_dim": 8}


@pytest.fixture(scope="module")
def encoder() -> EgoVideoMiniEncoder:
    torch.manual_seed(0)
    return EgoVideoMiniEncoder(random_init=True, config=SMALL)


def frames(b: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 4, 3, 48, 48), generator=g, dtype=torch.uint8)


def test_tokens_are_frozen_deterministic_and_conditioned_on_the_prompt(encoder):
    out = encoder(frames(), ["Lift the red cup.", "Wipe the plate with the sponge."])
    assert out.video_tokens.shape == (2, 4 + 3, 16) and out.video_mask.all()
    assert out.text_tokens.shape == (2, 32, encoder.text_dim) and out.text_mask.sum(1).min() > 2
    assert encoder.num_video_tokens == 7 and encoder.frozen and not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.training  # frozen: never in training mode
    again = encoder(frames(), ["Lift the red cup.", "Wipe the plate with the sponge."])
    torch.testing.assert_close(again.video_tokens, out.video_tokens, rtol=0, atol=0)
    other = encoder(frames(), ["Lift the blue box.", "Wipe the plate with the sponge."])
    # the per-frame tokens do not depend on the prompt, the grounded tokens do
    torch.testing.assert_close(other.video_tokens[:, :4], out.video_tokens[:, :4])
    assert not torch.allclose(other.video_tokens[0, 4:], out.video_tokens[0, 4:])
    torch.testing.assert_close(other.video_tokens[1], out.video_tokens[1])  # the batch neighbour changes nothing
    heads = encoder.predict(frames(), ["Lift the red cup.", "Wipe the plate."])
    assert heads["target"].shape == (2, 3) and heads["cue"].shape == (2, 4) and (heads["cue"] <= 1).all()
    # pointing: a distribution over each frame's 2 x 2 cells for each of target, destination and cue lamp
    assert heads["pointing"].shape == (2, 3, 4, 4)
    torch.testing.assert_close(heads["pointing"].sum(-1), torch.ones(2, 3, 4))


def test_save_load_round_trip_and_cache_key(tmp_path, encoder):
    folder = save_egovideo_mini(encoder.model, tmp_path / "mini", data="unit test")
    cfg, state = load_egovideo_mini(folder)
    assert cfg.extra["data"] == "unit test" and cfg.width == 16
    loaded = build_encoder("egovideo-mini", checkpoint=folder)
    x, p = frames(seed=3), ["Pour the bottle into the bowl.", "Tap the green block."]
    torch.testing.assert_close(loaded(x, p).video_tokens, encoder(x, p).video_tokens, rtol=0, atol=0)
    assert loaded.cache_key() == encoder.cache_key()
    other = EgoVideoMiniEncoder(random_init=True, config=SMALL)
    assert other.cache_key()["weights"] != encoder.cache_key()["weights"]
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json: not an EgoVideo-mini config"):
        load_egovideo_mini(folder)
    with pytest.raises(FileNotFoundError, match="expected an EgoVideo-mini folder"):
        load_egovideo_mini(tmp_path / "absent")
    with pytest.raises(ValueError, match="multiple of 16"):
        EgoVideoMiniConfig(image_size=40)


def test_missing_shipped_weights_say_how_to_make_them(tmp_path, monkeypatch):
    import egghand_lib.models.egghand.modeling_egghand as modeling
    import egghand_lib.models.encoders.egovideo_mini as mini
    from egghand_lib.models.egghand import EggHandConfig, EggHandPolicy

    empty = tmp_path / "weights"
    monkeypatch.setattr(mini, "SHIPPED_DIR", empty / "egovideo_mini")
    monkeypatch.setattr(modeling, "SHIPPED_GR00T_MINI_HEAD", empty / "gr00t_mini_head")
    monkeypatch.setattr(modeling, "SHIPPED_MINI", empty / "egghand_mini")
    monkeypatch.setattr(modeling, "SHIPPED_MINI_RANDOM_HEAD", empty / "egghand_mini_random_head")
    for name, (folder, label, stage) in list(modeling.SHIPPED_MODELS.items()):
        monkeypatch.setitem(modeling.SHIPPED_MODELS, name, (empty / folder.name, label, stage))
    with pytest.raises(FileNotFoundError, match="shipped EgoVideo-mini is not in this installation.*egghand pretrain"):
        build_encoder("egovideo-mini")
    with pytest.raises(FileNotFoundError, match="GR00T-mini head is not in this installation.*egghand pretrain"):
        EggHandPolicy(EggHandConfig.preset("tiny", decoder_init="gr00t-mini"))
    with pytest.raises(FileNotFoundError, match="shipped EggHand-mini is not in this installation.*egghand pretrain"):
        EggHandPolicy.from_pretrained("egghand-mini")
    with pytest.raises(FileNotFoundError, match="random-head twin is not in this installation.*egghand pretrain twin"):
        EggHandPolicy.from_pretrained("egghand-mini-random-head")


def test_video_tokens_need_the_prompt_everywhere_they_are_computed(encoder):
    """The grounded tokens read the prompt: the model (with text features cached), the feature-cache helper and
    the streaming forecaster all run the encoder on frames and prompt together, never encode_video alone."""
    from egghand_lib.models.encoders.cached import features_from_batch

    x, prompts = frames(), ["Lift the red cup.", "Wipe the plate with the sponge."]
    with pytest.raises(TypeError, match="depend on the prompt"):
        encoder.encode_video(x)
    full = encoder(x, prompts)
    text, text_mask = encoder.encode_text(prompts)
    got = features_from_batch(encoder, {"frames": x, "task": prompts, "text_tokens": text, "text_mask": text_mask})
    torch.testing.assert_close(got.video_tokens, full.video_tokens, rtol=0, atol=0)
