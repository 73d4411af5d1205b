"""The whole offline foundation stack from nothing, the way the shipped weights were made
(``egghand pretrain recipe --work DIR [--install]``):

1. EgoSynth 2 pretraining takes of seeds disjoint from the benchmark's (the bench and the demo use seed 0):
   ``PRETRAIN_TAKES`` short training takes from ``PRETRAIN_SEED`` (many scenes, few windows each: what makes
   the encoder's grounding transfer to new scenes) and ``PRETRAIN_VAL_TAKES`` validation takes from
   ``PRETRAIN_VAL_SEED``, generated apart, prepared at ``PRETRAIN_SIZE`` px;
2. EgoVideo-mini pretrained on them (``pretraining.encoder``; the validation takes are only measured);
3. the cpu-small GR00T head pretrained on the same training takes with GR00T's flow objective, reading the
   frozen encoder's cached features (``pretraining.head``);
4. EggHand-mini: the cpu-small model with that encoder (frozen) and that head (loaded as GR00T weights are)
   fine-tuned on the bench preset's train split (seed 0), exactly as ``egghand train --config cpu-small``
   does with the shipped weights;
5. its random-head twin: the same fine-tune (encoder, data, seed, steps) from a random head, so that Table 5
   (pretrained vs random head) can be shown without training. ``egghand pretrain twin`` makes this stage
   alone, with the shipped encoder (``make_random_head_twin``).

``install=True`` copies the results into egghand_lib/resources/weights/ (the package's shipped weights) and
writes their digests into the model cards' "Files" tables (data_cards/*.md).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egghand_lib.data.egosynth import generate_egosynth
from egghand_lib.data.prepare import prepare_dataset
from egghand_lib.io import atomic_write_json, atomic_write_text, file_sha256
from egghand_lib.models.egghand.modeling_egghand import SHIPPED_MINI, SHIPPED_MINI_RANDOM_HEAD
from egghand_lib.models.encoders.egovideo_mini import SHIPPED_DIR as SHIPPED_ENCODER
from egghand_lib.models.gr00t_weights import SHIPPED_GR00T_MINI_HEAD
from egghand_lib.pretraining.encoder import EncoderPretrainConfig, pretrain_encoder
from egghand_lib.pretraining.head import head_pretrain_config, pretrain_head
from egghand_lib.training import TrainConfig, train

PRETRAIN_SEED = 7003
PRETRAIN_TAKES = 3000
PRETRAIN_VAL_SEED = 7004
PRETRAIN_VAL_TAKES = 48
PRETRAIN_DURATION_SEC = (4.5, 5.5)  # short takes: the same pretraining budget spans more scenes
PRETRAIN_SIZE = 96
BENCH_SEED = 0
CARDS = Path(__file__).resolve().parents[2] / "data_cards"
# The model card of each shipped folder; its "Files" table (between these markers) lists every file's digest.
CARD_NAMES = {"encoder": "egovideo_mini.md", "head": "gr00t_mini_head.md", "egghand_mini": "egghand_mini.md",
              "egghand_mini_random_head": "egghand_mini_random_head.md"}
FILES_BEGIN, FILES_END = "<!-- files:begin -->", "<!-- files:end -->"


@dataclass
class RecipeConfig:
    encoder_steps: int = 3000
    head_steps: int = 1500
    mini_steps: int = 2000
    random_head_twin: bool = True  # stage 5: EggHand-mini's fine-tune from a random head
    pretrain_takes: tuple[int, int] | None = None  # (train, val) takes; default (PRETRAIN_TAKES, PRETRAIN_VAL_TAKES)
    bench_preset: str = "bench"
    synth_overrides: dict | None = None  # e.g. smaller takes for a test run


def make_foundation_stack(work_dir: str | Path, config: RecipeConfig | None = None, *, install: bool = False,
                          progress: bool = True) -> dict[str, Any]:
    """Run the recipe (module docstring) in ``work_dir`` (every stage resumable) and return its folders."""
    cfg = config or RecipeConfig()
    work = Path(work_dir)
    synth = dict(cfg.synth_overrides or {})
    n_train, n_val = cfg.pretrain_takes or (PRETRAIN_TAKES, PRETRAIN_VAL_TAKES)
    pretrain = {"duration_sec": PRETRAIN_DURATION_SEC, **synth}
    raw, prep = work / "pretrain_egosynth", work / "pretrain_prepared"
    generate_egosynth(raw, preset="bench", seed=PRETRAIN_SEED, progress=progress,
                      num_takes={"train": n_train, "val": 0, "test": 0}, **pretrain)
    prepare_dataset(raw, prep, splits=("train",), size=PRETRAIN_SIZE, progress=progress)
    val_raw, val_prep = work / "pretrain_val_egosynth", work / "pretrain_val_prepared"
    generate_egosynth(val_raw, preset="bench", seed=PRETRAIN_VAL_SEED, progress=progress,
                      num_takes={"train": 0, "val": n_val, "test": 0}, **pretrain)
    prepare_dataset(val_raw, val_prep, splits=("val",), size=PRETRAIN_SIZE, progress=progress)

    encoder_run = pretrain_encoder(EncoderPretrainConfig(steps=cfg.encoder_steps), prep, raw, work / "encoder",
                                   val_prep_dir=val_prep, val_raw_dir=val_raw, progress=progress)
    encoder_dir = encoder_run.out_dir / "model"
    # no validation split: the pretraining takes' validation set is a folder of its own (the encoder's yardstick)
    head_cfg = head_pretrain_config(cfg.head_steps, feature_cache="auto", eval_split=None)
    head_cfg = head_cfg.replace(model_overrides={**head_cfg.model_overrides, "encoder": "egovideo-mini",
                                                 "encoder_kwargs": {"checkpoint": str(encoder_dir)}})
    _, head_dir = pretrain_head(head_cfg, prep, work / "head", progress=progress)

    bench_prep = prepare_bench_data(work, cfg.bench_preset, synth, progress)
    out = {"encoder": encoder_dir, "head": head_dir, "bench_prepared": bench_prep,
           "egghand_mini": fine_tune_mini(bench_prep, work / "egghand_mini", cfg.mini_steps, encoder_dir, head_dir,
                                          progress)}
    if cfg.random_head_twin:
        out["egghand_mini_random_head"] = fine_tune_mini(bench_prep, work / "egghand_mini_random_head",
                                                         cfg.mini_steps, encoder_dir, None, progress)
    if install:
        install_weights(out)
    return out


def prepare_bench_data(work_dir: str | Path, preset: str = "bench", synth_overrides: dict | None = None,
                       progress: bool = True) -> Path:
    """The benchmark's takes (seed ``BENCH_SEED``) in ``work_dir``/bench_egosynth, prepared at the encoder's size
    into ``work_dir``/bench_prepared (both resumable); returns the prepared folder."""
    work = Path(work_dir)
    bench_raw, bench_prep = work / "bench_egosynth", work / "bench_prepared"
    generate_egosynth(bench_raw, preset=preset, seed=BENCH_SEED, progress=progress, **(synth_overrides or {}))
    # The frames are rendered at 128 px and the encoder reads PRETRAIN_SIZE px: a larger prepared copy only costs.
    prepare_dataset(bench_raw, bench_prep, splits=("train", "val", "test"), size=PRETRAIN_SIZE, progress=progress)
    return bench_prep


def fine_tune_mini(prep_dir: str | Path, run_dir: str | Path, steps: int, encoder_dir: str | Path | None = None,
                   head_dir: str | Path | None = None, progress: bool = True) -> Path:
    """The cpu-small EggHand fine-tuned ``steps`` steps on ``prep_dir``'s train split into ``run_dir`` (resumable);
    returns its model folder.

    encoder_dir: a frozen EgoVideo-mini folder (None: the shipped one); head_dir: a GR00T-layout head folder,
    loaded as GR00T-N1.5-3B's is (None: a random head). No bypass MLP: the GR00T head forecasts.
    """
    # the two fine-tunes of the recipe read the same frozen encoder on the same data: one feature cache
    cfg = TrainConfig.named("cpu-small", max_steps=steps, feature_cache="auto",
                            feature_cache_dir=str(Path(run_dir).parent / "features"))
    model = {**cfg.model_overrides, "encoder": "egovideo-mini", "motion_mlp": 0,
             "encoder_kwargs": {} if encoder_dir is None else {"checkpoint": str(encoder_dir)},
             "decoder_init": "random" if head_dir is None else "gr00t",
             "gr00t_path": None if head_dir is None else str(head_dir)}
    return train(cfg.replace(model_overrides=model), run_dir, prep_dir=prep_dir, progress=progress).out_dir / "model"


def make_random_head_twin(work_dir: str | Path, steps: int = RecipeConfig.mini_steps, *, install: bool = False,
                          progress: bool = True) -> dict[str, Path]:
    """Stage 5 alone, with the shipped encoder: EggHand-mini's twin fine-tuned from a random head on the same data
    (``work_dir``/bench_prepared), seed and steps (``egghand pretrain twin``). Returns its folders."""
    bench_prep = prepare_bench_data(work_dir, progress=progress)
    out = {"bench_prepared": bench_prep,
           "egghand_mini_random_head": fine_tune_mini(bench_prep, Path(work_dir) / "egghand_mini_random_head", steps,
                                                      None, None, progress)}
    if install:
        install_weights(out)
    return out


def install_weights(folders: dict[str, Path]) -> dict[str, dict[str, str]]:
    """Copy the recipe's results (those of ``folders``' keys) into the package, replacing the shipped weights, and
    return the digests.

    The models' configs are rewritten to name the shipped encoder and head instead of the work folder's.
    """
    digests = {}
    shipped = (("encoder", SHIPPED_ENCODER), ("head", SHIPPED_GR00T_MINI_HEAD), ("egghand_mini", SHIPPED_MINI),
               ("egghand_mini_random_head", SHIPPED_MINI_RANDOM_HEAD))
    for key, dest in shipped:
        if key not in folders:
            continue
        src = Path(folders[key])
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest)
        if key.startswith("egghand_mini"):  # name the shipped encoder and head, not the work folder's copies
            cfg_path = dest / "config.json"
            cfg = json.loads(cfg_path.read_text())
            head = "gr00t-mini" if key == "egghand_mini" else "random"
            cfg.update(encoder="egovideo-mini", encoder_kwargs={}, decoder_init=head, gr00t_path=None)
            atomic_write_json(cfg_path, cfg)
        digests[key] = {p.name: file_sha256(p) for p in sorted(dest.iterdir()) if p.is_file()}
        card = CARDS / CARD_NAMES[key]
        if card.is_file():
            write_card_files(card, {name: ((dest / name).stat().st_size, h) for name, h in digests[key].items()})
    return digests


def _files_section(card: str | Path) -> tuple[str, str, str]:
    """A model card's text before, inside and after its Files markers."""
    text = Path(card).read_text()
    if FILES_BEGIN not in text or FILES_END not in text:
        raise ValueError(f"{card}: no Files table (between {FILES_BEGIN} and {FILES_END})")
    head, rest = text.split(FILES_BEGIN, 1)
    table, tail = rest.split(FILES_END, 1)
    return head, table, tail


def card_files(card: str | Path) -> dict[str, tuple[int, str]]:
    """The "Files" table of a model card: {file name: (bytes, sha256)}."""
    table = _files_section(card)[1]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip(" `") for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].replace(",", "").isdigit():
            rows[cells[0]] = (int(cells[1].replace(",", "")), cells[2])
    return rows


def write_card_files(card: str | Path, files: dict[str, tuple[int, str]]) -> None:
    """Replace the "Files" table of a model card with ``files`` ({name: (bytes, sha256)})."""
    head, _, tail = _files_section(card)
    rows = "\n".join(f"| `{name}` | {size:,} | `{digest}` |" for name, (size, digest) in sorted(files.items()))
    table = f"{FILES_BEGIN}\n| file | bytes | sha256 |\n|---|---|---|\n{rows}\n{FILES_END}"
    atomic_write_text(card, head + table + tail)
