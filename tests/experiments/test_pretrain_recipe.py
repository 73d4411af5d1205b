"""`egghand pretrain recipe` end to end at toy size: pretraining takes of their own seed -> EgoVideo-mini ->
the GR00T-layout head -> EggHand-mini loading that head the way GR00T-N1.5-3B's is loaded -> installed
weights that EggHandPolicy.from_pretrained rebuilds (frozen encoder from the installed copy)."""

from __future__ import annotations

import csv
import json

import torch

import egghand_lib.models.encoders.egovideo_mini as egovideo_mini
import egghand_lib.pretraining.recipe as recipe
from egghand_lib.models.egghand import EggHandPolicy
from egghand_lib.models.gr00t_weights import load_gr00t_action_head
from egghand_lib.training import TrainConfig, build_model


def test_recipe_makes_an_encoder_a_head_and_a_model_that_loads_them(tmp_path, monkeypatch):
    cfg = recipe.RecipeConfig(encoder_steps=2, head_steps=2, mini_steps=2, pretrain_takes=(3, 1),
                              bench_preset="tiny", synth_overrides={"duration_sec": (7.0, 7.2), "image_size": 64})
    out = recipe.make_foundation_stack(tmp_path / "work", cfg, progress=False)
    # The pretraining takes are EgoSynth 2 of their own seed, with no test split; the bench data is seed 0.
    pre = json.loads((tmp_path / "work" / "pretrain_egosynth" / "manifest.json").read_text())
    bench = json.loads((tmp_path / "work" / "bench_egosynth" / "manifest.json").read_text())
    assert pre["seed"] == recipe.PRETRAIN_SEED != bench["seed"] == recipe.BENCH_SEED
    assert pre["config"]["num_takes"]["test"] == 0
    val = json.loads((tmp_path / "work" / "pretrain_val_egosynth" / "manifest.json").read_text())
    assert val["seed"] == recipe.PRETRAIN_VAL_SEED not in (recipe.PRETRAIN_SEED, recipe.BENCH_SEED)
    # The encoder's log carries what it reads on the validation takes, not only a loss.
    rows = list(csv.DictReader((tmp_path / "work" / "encoder" / "metrics.csv").open()))
    validated = [r for r in rows if r["val_loss"]]
    assert validated and all(float(validated[-1][f"val_{k}"]) >= 0 for k in
                             ("target_cm", "destination_cm", "pointing_hit", "timing_s"))
    # The head folder is in GR00T's layout: the loader that reads GR00T-N1.5-3B reads all of it.
    mini_cfg = TrainConfig.named("cpu-small")
    head = build_model(mini_cfg.replace(model_overrides={**mini_cfg.model_overrides, "decoder_init": "random"}),
                       stats=None).action_head
    report = load_gr00t_action_head(head, out["head"])
    assert report.loaded and not report.missing and not report.mismatched
    # EggHand-mini is the cpu-small model: no bypass MLP, the frozen encoder, the pretrained head.
    mini = EggHandPolicy.from_pretrained(out["egghand_mini"])
    assert mini.config.motion_mlp == 0 and mini.encoder_frozen and mini.config.encoder == "egovideo-mini"
    # Its twin is the same fine-tune from a random head: same config but the head's initialisation.
    twin = EggHandPolicy.from_pretrained(out["egghand_mini_random_head"])
    differ = {k for k, v in twin.config.to_dict().items() if mini.config.to_dict()[k] != v}
    assert differ == {"decoder_init", "gr00t_path"} and twin.config.decoder_init == "random"
    # Installing rewrites the model's config to name the installed encoder and head.
    pkg = tmp_path / "pkg"
    dests = {"SHIPPED_ENCODER": pkg / "egovideo_mini", "SHIPPED_GR00T_MINI_HEAD": pkg / "head",
             "SHIPPED_MINI": pkg / "egghand_mini", "SHIPPED_MINI_RANDOM_HEAD": pkg / "egghand_mini_random_head"}
    for name, path in dests.items():
        monkeypatch.setattr(recipe, name, path)
    monkeypatch.setattr(egovideo_mini, "SHIPPED_DIR", dests["SHIPPED_ENCODER"])
    cards = tmp_path / "cards"  # copies of the model cards: installing rewrites their Files tables
    cards.mkdir()
    for name in recipe.CARD_NAMES.values():
        (cards / name).write_text((recipe.CARDS / name).read_text())
    monkeypatch.setattr(recipe, "CARDS", cards)
    digests = recipe.install_weights(out)
    assert set(digests) == set(recipe.CARD_NAMES) and all(digests.values())
    for key, name in recipe.CARD_NAMES.items():
        listed = recipe.card_files(cards / name)
        assert {f: h for f, (_, h) in listed.items()} == digests[key]
        folder = {"encoder": dests["SHIPPED_ENCODER"], "head": dests["SHIPPED_GR00T_MINI_HEAD"],
                  "egghand_mini": dests["SHIPPED_MINI"],
                  "egghand_mini_random_head": dests["SHIPPED_MINI_RANDOM_HEAD"]}[key]
        assert all(size == (folder / f).stat().st_size for f, (size, _) in listed.items())
    shipped = json.loads((dests["SHIPPED_MINI"] / "config.json").read_text())
    assert shipped["encoder_kwargs"] == {} and shipped["decoder_init"] == "gr00t-mini"
    shipped_twin = json.loads((dests["SHIPPED_MINI_RANDOM_HEAD"] / "config.json").read_text())
    assert shipped_twin["encoder_kwargs"] == {} and shipped_twin["decoder_init"] == "random"
    installed = EggHandPolicy.from_pretrained(dests["SHIPPED_MINI"])
    for a, b in zip(installed.state_dict().values(), mini.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
