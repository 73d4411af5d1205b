"""The paper's ablations (Tables 2-5; docs/conventions.md, "Ablations") on any prepared dataset.

- ``modality`` (Table 3): the trained model evaluated with its inputs corrupted: noisy vision (the 4
  frames replaced by Gaussian-noise images), dummy language (the prompt replaced by random words of the
  dataset's task-word vocabulary), and both. Corruptions are applied at evaluation, per window, from a
  seed, and change nothing but the input they target.
- ``egomotion`` (Table 4): metrics of Static, CVM and the model on the top-10% egomotion windows vs all.
- ``loss`` (Table 2): retrained with L_abs only, + L_pair, + L_rel, and all three.
- ``encoder`` (Table 4): retrained with another encoder, all windows and the top-10% egomotion ones: EgoVideo
  vs InternVL3.5-1B (with both weights paths); offline, the pretrained frozen EgoVideo-mini vs the small
  video CNN trained from scratch with the decoder (standing in for "a general encoder").
- ``head_init`` (Table 5): retrained from a pretrained vs a random action head: the GR00T-N1.5-3B head (with
  a GR00T path) or, offline, the cpu-small GR00T-architecture head this toolkit pretrained ("gr00t-mini");
  plus the earlier CPU bypass (a motion MLP beside a random flow head), so the comparison is shown.
Variants that cannot run (missing weights) are reported as "not run" with the reason.

    from egghand_lib.ablations import run_ablations
    res = run_ablations("data/prepared", "results/ablations", model="runs/cpu-small")
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from egghand_lib.egomotion import top_fraction_mask
from egghand_lib.evaluation import (
    BASELINES,
    MODEL_NAME,
    baseline_forecasts,
    md_table,
    open_datasets,
    predict_model,
    select_windows,
    subset_indices,
)
from egghand_lib.io import atomic_write_json, atomic_write_text
from egghand_lib.metrics import ForecastErrors
from egghand_lib.models.egghand import EggHandPolicy
from egghand_lib.models.egghand.modeling_egghand import SHIPPED_MINI_NAME, SHIPPED_MINI_RANDOM_HEAD_NAME
from egghand_lib.models.encoders import build_encoder
from egghand_lib.models.encoders.egovideo_mini import SHIPPED_DIR as SHIPPED_EGOVIDEO_MINI
from egghand_lib.models.gr00t_weights import SHIPPED_GR00T_MINI_HEAD
from egghand_lib.training import TrainConfig, train

ABLATIONS = ("modality", "egomotion", "loss", "encoder", "head_init")
DEFAULT_ABLATIONS = ("modality", "egomotion")
MODALITY_VARIANTS = ("clean", "noisy vision", "dummy language", "noisy vision + dummy language")
# Table 2: L_abs weight fixed, auxiliary terms switched on (weights: abs, rel, pair; official values 0.6/0.2/0.2).
LOSS_VARIANTS: dict[str, tuple[float, float, float]] = {
    "L_abs": (0.6, 0.0, 0.0),
    "L_abs + L_pair": (0.6, 0.0, 0.2),
    "L_abs + L_rel": (0.6, 0.2, 0.0),
    "L_abs + L_rel + L_pair": (0.6, 0.2, 0.2),
}
NOISE_MEAN, NOISE_STD = 127.5, 64.0  # Gaussian-noise images in uint8 pixel units (clipped to [0, 255])
METRIC_KEYS = ("ade", "fde", "mpjpe", "mpjpe_f")


# ----------------------------------------------------------------------------------------------
# Modality corruptions (applied to batches at evaluation)


def _window_seeds(batch: dict, seed: int) -> list[int]:
    """One seed per window from (seed, episode_index, frame_index): independent of batching."""
    n = len(batch["task"]) if "task" in batch else int(batch["frames"].shape[0])
    ep = batch.get("episode_index")
    fr = batch.get("frame_index")
    if ep is None or fr is None:
        raise ValueError("batch: corruptions need 'episode_index' and 'frame_index' to seed each window")
    ep, fr = torch.as_tensor(ep).tolist(), torch.as_tensor(fr).tolist()
    return [int(np.random.SeedSequence([int(seed) % 2**32, int(e) % 2**32, int(f) % 2**32]).generate_state(1)[0])
            for e, f in zip(ep[:n], fr[:n], strict=True)]


def _refuse_cached(batch: dict, what: str) -> None:
    if any(k in batch for k in ("video_tokens", "text_tokens")):
        raise ValueError(f"{what}: the batch carries cached encoder features, which would bypass the corruption; "
                         "evaluate from raw frames and prompts (without the feature cache)")


def noisy_vision(batch: dict, seed: int = 0) -> dict:
    """A copy of ``batch`` whose ``frames`` are Gaussian-noise images of the same shape and dtype.

    uint8 frames: N(127.5, 64^2) pixels, rounded and clipped to [0, 255]; float frames (in [0, 1]): the
    same scaled by 1/255. Every other key is the same object as in ``batch``.

    The noise is drawn per stored pixel, so the encoder sees noise images only when the frames are stored at
    the size it reads: an encoder that resizes larger frames down averages the noise towards a flat grey image,
    another corruption (EgoVideo-mini, 96 px, on frames prepared at 224 px: x1.31 ADE for the shipped
    EggHand-mini against x1.21 on the same windows prepared at 96 px, whose clean ADE is the same). Measure
    Table 3 on frames prepared at the encoder's size (the demo and the recipe prepare at EgoVideo-mini's).
    """
    if "frames" not in batch:
        raise ValueError("batch: noisy_vision needs 'frames'")
    _refuse_cached(batch, "noisy_vision")
    frames = batch["frames"]
    noise = []
    for s in _window_seeds(batch, seed):
        g = torch.Generator().manual_seed(s)
        noise.append(torch.randn(tuple(frames.shape[1:]), generator=g) * NOISE_STD + NOISE_MEAN)
    x = torch.stack(noise).clamp_(0, 255)
    x = x.round().to(torch.uint8) if frames.dtype == torch.uint8 else (x / 255.0).to(frames.dtype)
    return {**batch, "frames": x.to(frames.device)}


_WORD = re.compile(r"[a-z][a-z'-]*")


def task_vocabulary(prompts: Sequence[str]) -> list[str]:
    """The sorted set of lower-case words of ``prompts`` (the task-word vocabulary of a dataset)."""
    vocab = sorted({w for p in prompts for w in _WORD.findall(str(p).lower())})
    if not vocab:
        raise ValueError("prompts: no words found; cannot build a task-word vocabulary")
    return vocab


def dummy_language(batch: dict, vocabulary: Sequence[str], seed: int = 0, pool_size: int | None = 16) -> dict:
    """A copy of ``batch`` whose ``task`` prompts are random text: each prompt becomes as many words as
    it had, drawn uniformly (with replacement) from ``vocabulary``. Every other key is unchanged.

    ``pool_size`` K: each window picks (by its own seed) one of K random texts per word count, drawn
    from ``seed``; a text encoder then meets a few hundred distinct prompts instead of one per window
    (MiniLM runs once per distinct prompt). None: an independent text for every window.
    """
    if "task" not in batch:
        raise ValueError("batch: dummy_language needs 'task'")
    if not vocabulary:
        raise ValueError("vocabulary: empty")
    if pool_size is not None and pool_size < 1:
        raise ValueError(f"pool_size: must be >= 1 or None, got {pool_size}")
    _refuse_cached(batch, "dummy_language")
    vocab = list(vocabulary)
    tasks = []
    for prompt, s in zip(batch["task"], _window_seeds(batch, seed), strict=True):
        n = max(1, len(str(prompt).split()))
        if pool_size is not None:  # text number k of length n, from (seed, n, k) only
            k = int(np.random.default_rng(s).integers(pool_size))
            s = int(np.random.SeedSequence([int(seed) % 2**32, n, k]).generate_state(1)[0])
        rng = np.random.default_rng(s)
        tasks.append(" ".join(vocab[i] for i in rng.integers(0, len(vocab), size=n)))
    return {**batch, "task": tasks}


def make_corruption(name: str, vocabulary: Sequence[str] | None = None, seed: int = 0):
    """The batch transform of a modality variant name (None for "clean")."""
    if name == "clean":
        return None
    if name in ("dummy language", "noisy vision + dummy language") and not vocabulary:
        raise ValueError(f"{name}: needs the task-word vocabulary")
    if name == "noisy vision":
        return lambda b: noisy_vision(b, seed)
    if name == "dummy language":
        return lambda b: dummy_language(b, vocabulary, seed)
    if name == "noisy vision + dummy language":
        return lambda b: dummy_language(noisy_vision(b, seed), vocabulary, seed + 1)
    raise ValueError(f"modality variant: unknown {name!r}; expected one of {MODALITY_VARIANTS}")


# ----------------------------------------------------------------------------------------------
# The runner


def _row(table: str, variant: str, metrics: dict[str, float] | None = None, status: str = "ok", reason: str = "",
         **extra: Any) -> dict[str, Any]:
    row = {"table": table, "variant": variant, "status": status, "reason": reason}
    row.update({k: (None if metrics is None or metrics.get(k) is None or not math.isfinite(metrics[k])
                    else float(metrics[k])) for k in METRIC_KEYS})
    row.update(extra)
    return row


def _train_variant(prep_dir, run_dir: Path, base_config, progress: bool, train_overrides: dict | None = None,
                   **model_overrides: Any):
    if prep_dir is None:
        raise ValueError("prep_dir: retrained ablation variants need the prepared folder")
    cfg = base_config.replace(model_overrides={**base_config.model_overrides, **model_overrides},
                              **(train_overrides or {}))
    if cfg.feature_cache_dir is None:  # variants with the same frozen encoder encode the data once
        cfg = cfg.replace(feature_cache_dir=str(Path(run_dir).parent.parent / "features"))
    result = train(cfg, run_dir, prep_dir=prep_dir, progress=progress)
    return result.model


def run_ablations(prep_dir: str | Path, out_dir: str | Path, model: nn.Module | str | Path | None = None, *,
                  which: Sequence[str] = DEFAULT_ABLATIONS, split: str = "test", train_split: str = "train",
                  protocol: str = "future", edges: str = "mask", train_config: Any = "cpu-small", seed: int = 0,
                  batch_size: int = 32,
                  max_windows: int | None = None, top_fraction: float = 0.1, egovideo_path: str | None = None,
                  internvl_path: str | None = None, gr00t_path: str | None = None, progress: bool = True,
                  dataset=None, train_dataset=None, frame_encoder: nn.Module | None = None,
                  baselines: Sequence[str] = BASELINES,
                  head_models: Mapping[str, nn.Module | str | Path] | None = None) -> dict[str, Any]:
    """Run the ablations in ``which`` (names from ABLATIONS) and write ablations.{md,csv,json} to ``out_dir``.

    ``model``: the trained model (module, run folder or saved model folder) for the evaluation-time
    ablations (modality, egomotion); when None it is trained with ``train_config`` into
    ``out_dir``/runs/base. Retrained variants (loss, encoder, head_init) use ``train_config`` (a
    TrainConfig or a name) with model overrides, each in ``out_dir``/runs/<variant> (resumable).
    Metrics are EggHand-convention on ``split`` (or ``max_windows`` evenly spaced windows of it).
    Returns {"rows": [...], "vocabulary_size": int, ...}; every row has table, variant, status
    ("ok" | "not run"), reason, ade, fde, mpjpe, mpjpe_f and, for the modality rows, the change vs clean.
    ``dataset`` / ``train_dataset``: WindowDatasets to use instead of ``prep_dir``'s splits (the
    retrained variants still need ``prep_dir``).
    A model trained on cached encoder features (``egghand train --feature-cache``) must re-encode the
    corrupted frames and prompts: give the frozen encoder that built the cache as ``frame_encoder``, or
    ``egovideo_path`` (EgoVideo, EggHand's encoder); without either, its modality and egomotion rows are
    "not run". ``baselines``: the baselines of the egomotion table (default Static and CVM; "LastPose" may
    be added). ``head_models``: {variant: trained model} for Table 5 instead of retraining its variants, e.g.
    the shipped EggHand-mini and its random-head twin (``shipped_head_models``), the same fine-tune from the
    two heads; they are evaluated as given.
    """
    unknown = sorted(set(which) - set(ABLATIONS))
    if unknown:
        raise ValueError(f"which: unknown ablation(s) {unknown}; expected names from {ABLATIONS}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(train_config, str):
        train_config = TrainConfig.named(train_config)
    train_config = train_config.replace(protocol=protocol, edges=edges, train_split=train_split)

    ds, train_ds = open_datasets(prep_dir, split, train_split, protocol, dataset, train_dataset, edges)
    idx = subset_indices(len(ds), max_windows)
    arrays = select_windows(ds.arrays(), idx)
    gt, valid = arrays["future_joints"], arrays["future_valid"]
    rows: list[dict[str, Any]] = []
    res: dict[str, Any] = {"split": split, "protocol": protocol, "num_windows": int(len(idx)), "seed": seed,
                           "prep_dir": None if prep_dir is None else str(prep_dir), "which": list(which)}

    def metrics(pred: np.ndarray, sel: np.ndarray | None = None) -> dict[str, float]:
        return ForecastErrors(pred, gt, valid, "egghand").metrics(sel)

    def forecast(net: nn.Module, transform=None, desc: str = "forecast") -> np.ndarray:
        return predict_model(net, ds, idx, batch_size=batch_size, transform=transform, progress=progress,
                             desc=desc)[0]

    needs_model = {"modality", "egomotion"} & set(which)
    net = None
    if needs_model:
        if model is None:
            net = _train_variant(prep_dir, out_dir / "runs" / "base", train_config, progress)
            res["model"] = str(out_dir / "runs" / "base")
        else:
            net = model if isinstance(model, nn.Module) else EggHandPolicy.from_pretrained(model)
            res["model"] = "in-memory" if isinstance(model, nn.Module) else str(model)
        if getattr(net, "encoder", True) is None:  # trained on cached features
            if frame_encoder is None and egovideo_path:
                frame_encoder = build_encoder("egovideo", checkpoint=egovideo_path)
            if frame_encoder is None:
                reason = ("the model reads cached encoder features; corrupting its inputs needs the frozen encoder "
                          "that built them (egovideo_path / --egovideo, or frame_encoder)")
                skipped = [("3 modality", v) for v in MODALITY_VARIANTS if "modality" in which]
                skipped += [("4 egomotion", "all methods")] if "egomotion" in which else []
                rows += [_row(table, variant, status="not run", reason=reason) for table, variant in skipped]
                which = [w for w in which if w not in needs_model]
                net = None
            else:
                net.attach_encoder(frame_encoder)
    clean_pred = forecast(net, desc="clean") if net is not None else None

    if "modality" in which:
        vocab = task_vocabulary(sorted(set(train_ds.arrays()["task"])))
        res["vocabulary_size"] = len(vocab)
        clean = metrics(clean_pred)
        for variant in MODALITY_VARIANTS:
            m = clean if variant == "clean" else metrics(
                forecast(net, make_corruption(variant, vocab, seed), desc=variant))
            rel = {f"{k}_vs_clean": (m[k] / clean[k] - 1.0) if clean[k] else None for k in METRIC_KEYS}
            rows.append(_row("3 modality", variant, m, **rel))

    if "egomotion" in which:
        scores = np.asarray(arrays["egomotion"], dtype=np.float64)
        top = np.asarray(top_fraction_mask(scores, top_fraction), dtype=bool)
        preds = {**baseline_forecasts(arrays, train_ds.arrays(), protocol, methods=baselines), MODEL_NAME: clean_pred}
        pct = round(100 * top_fraction)
        res["num_top"] = int(top.sum())
        for name, p in preds.items():
            rows.append(_row("4 egomotion", f"{name} top {pct}%", metrics(p, top), windows=int(top.sum())))
            rows.append(_row("4 egomotion", f"{name} all", metrics(p), windows=int(len(idx))))

    if "loss" in which:
        for variant, weights in LOSS_VARIANTS.items():
            slug = "loss_" + re.sub(r"[^a-z]+", "_", variant.lower()).strip("_")
            m_net = _train_variant(prep_dir, out_dir / "runs" / slug, train_config, progress, loss_weights=weights)
            rows.append(_row("2 loss", variant, metrics(forecast(m_net, desc=variant)), weights=list(weights)))

    if "encoder" in which:
        scores = np.asarray(arrays["egomotion"], dtype=np.float64)
        top = np.asarray(top_fraction_mask(scores, top_fraction), dtype=bool)
        # (label, run folder, encoder, its options, training-config changes); frozen encoders are cached
        variants = [("EgoVideo-mini (pretrained, frozen)", "encoder_egovideo_mini", "egovideo-mini", {},
                     {"feature_cache": "auto"}),
                    ("small CNN trained from scratch", "encoder_scratch_cnn", "offline", {}, {"feature_cache": None})]
        missing = [n for n, p in (("egovideo_path", egovideo_path), ("internvl_path", internvl_path)) if not p]
        if missing:
            for variant in ("EgoVideo", "InternVL3.5-1B"):
                rows.append(_row("4 encoder", variant, status="not run",
                                 reason=f"needs local encoder weights: {', '.join(missing)} not given"))
        else:
            variants += [("EgoVideo", "encoder_egovideo", "egovideo", {"checkpoint": egovideo_path},
                          {"feature_cache": "auto"}),
                         ("InternVL3.5-1B", "encoder_internvl", "internvl", {"model_dir": internvl_path},
                          {"feature_cache": "auto"})]
        for variant, slug, enc, kwargs, train_over in variants:
            if prep_dir is None:
                rows.append(_row("4 encoder", variant, status="not run",
                                 reason="a retrained variant needs the prepared folder (prep_dir)"))
                continue
            if enc == "egovideo-mini" and not (SHIPPED_EGOVIDEO_MINI / "config.json").is_file():
                rows.append(_row("4 encoder", variant, status="not run", reason=_NOT_SHIPPED))
                continue
            m_net = _train_variant(prep_dir, out_dir / "runs" / slug, train_config, progress, train_over,
                                   encoder=enc, encoder_kwargs=kwargs, video_dim=None, text_dim=None)
            p = forecast(m_net, desc=variant)
            rows.append(_row("4 encoder", variant, metrics(p), top_ade=metrics(p, top)["ade"],
                             top_mpjpe=metrics(p, top)["mpjpe"]))

    if "head_init" in which and head_models:
        # what each row evaluated: a shipped name or folder as given, an in-memory model by its class
        res["head_models"] = {variant: type(m).__name__ if isinstance(m, nn.Module) else str(m)
                              for variant, m in head_models.items()}
        for variant, m in head_models.items():
            m_net = m if isinstance(m, nn.Module) else EggHandPolicy.from_pretrained(m)
            rows.append(_row("5 head init", variant, metrics(forecast(m_net.eval(), desc=variant))))
    elif "head_init" in which:
        if gr00t_path:
            variants = [("GR00T-pretrained head", "head_gr00t",
                         {"decoder_init": "gr00t", "gr00t_path": gr00t_path, "motion_mlp": 0})]
        else:
            rows.append(_row("5 head init", "GR00T-pretrained head", status="not run",
                             reason="needs the GR00T-N1.5-3B directory (gr00t_path); the offline pretrained "
                                    "head (gr00t-mini) stands in for it below"))
            variants = [("pretrained head (gr00t-mini)", "head_gr00t_mini", {"decoder_init": "gr00t-mini",
                                                                             "gr00t_path": None, "motion_mlp": 0})]
        variants += [("random head", "head_random", {"decoder_init": "random", "gr00t_path": None, "motion_mlp": 0}),
                     ("motion MLP beside a random head", "head_random_motion_mlp",
                      {"decoder_init": "random", "gr00t_path": None, "motion_mlp": 256})]
        for variant, slug, over in variants:
            if over["decoder_init"] == "gr00t-mini" and not SHIPPED_GR00T_MINI_HEAD.is_dir():
                rows.append(_row("5 head init", variant, status="not run", reason=_NOT_SHIPPED))
                continue
            if over["decoder_init"] == "gr00t-mini" and train_config.model_preset != "cpu-small":
                rows.append(_row("5 head init", variant, status="not run",
                                 reason=f"the GR00T-mini head has cpu-small sizes; these variants train the "
                                        f"{train_config.model_preset!r} preset (train_config='cpu-small' runs it)"))
                continue
            m_net = _train_variant(prep_dir, out_dir / "runs" / slug, train_config, progress, **over)
            rows.append(_row("5 head init", variant, metrics(forecast(m_net, desc=variant))))

    res["rows"] = rows
    write_ablations(res, out_dir)
    return res


def shipped_head_models() -> dict[str, str]:
    """Table 5 without training: {variant: shipped model name} for ``run_ablations(head_models=...)``, the shipped
    EggHand-mini (fine-tuned from the pretrained GR00T-mini head) and its twin (the same fine-tune from a random
    head: data_cards/egghand_mini_random_head.md)."""
    return {"pretrained head (gr00t-mini)": SHIPPED_MINI_NAME, "random head": SHIPPED_MINI_RANDOM_HEAD_NAME}


_NOT_SHIPPED = ("the offline foundation weights are not in this installation "
                "(egghand_lib/resources/weights); `egghand pretrain recipe --work DIR --install` makes them")


# ----------------------------------------------------------------------------------------------
# Writers


def _f(v: Any, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def ablations_markdown(res: dict[str, Any]) -> str:
    parts = ["# Ablations\n\n", f"split: {res['split']}, protocol: {res['protocol']}, windows: {res['num_windows']}, "
             f"EggHand convention, metres\n"]
    tables: dict[str, list[dict[str, Any]]] = {}
    for r in res["rows"]:
        tables.setdefault(r["table"], []).append(r)
    titles = {"2 loss": "Table 2: loss terms (retrained)", "3 modality": "Table 3: modality corruption at evaluation",
              "4 egomotion": "Table 4: top egomotion windows vs all", "4 encoder": "Table 4: encoder swap (retrained)",
              "5 head init": "Table 5: action-head initialisation (" + (
                  "trained models, as given" if res.get("head_models") else "retrained") + ")"}
    for table, rows in tables.items():
        parts.append(f"\n## {titles.get(table, table)}\n\n")
        header = ["variant", "ADE", "FDE", "MPJPE", "MPJPE-F"]
        extra = table == "3 modality"
        if extra:
            header += ["ADE vs clean", "MPJPE vs clean"]
        header.append("status")
        body = []
        for r in rows:
            line = [r["variant"]] + [_f(r[k]) for k in METRIC_KEYS]
            if extra:
                line += [_pct(r.get("ade_vs_clean")), _pct(r.get("mpjpe_vs_clean"))]
            line.append(r["status"] + (f": {r['reason']}" if r["reason"] else ""))
            body.append(line)
        parts.append(md_table(header, body))
    if "vocabulary_size" in res:
        parts.append(f"\nDummy language draws from a task-word vocabulary of {res['vocabulary_size']} words; noisy "
                     f"vision uses N({NOISE_MEAN}, {NOISE_STD}^2) pixel noise; seed {res['seed']}.\n")
    return "".join(parts)


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:+.1f}%"


def write_ablations(res: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """ablations.json, ablations.md and ablations.csv (one row per variant), each written atomically."""
    out = Path(out_dir)
    paths = {"json": out / "ablations.json", "md": out / "ablations.md", "csv": out / "ablations.csv"}
    cols = ["table", "variant", "status", "reason", *METRIC_KEYS, "ade_vs_clean", "mpjpe_vs_clean", "windows"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in res["rows"]:
        w.writerow({k: ("" if r.get(k) is None else (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r[k]))
                    for k in cols})
    atomic_write_json(paths["json"], res)
    atomic_write_text(paths["md"], ablations_markdown(res))
    atomic_write_text(paths["csv"], buf.getvalue())
    return paths
