"""How much of EgoSynth's next second can be predicted, and from what: ceiling probes for bench/accuracy.py.

bench/accuracy.py compares EggHand with CVM; this script asks what a forecaster could reach at best on
the same test windows, with metrics in the EggHand convention and ratios to CVM on the same windows:

- ``lastpose``: every joint held where it was last seen (``egghand_lib.baselines.LastPose``).
- ``oracle_rotation`` / ``oracle_articulation``: the last pose given the true future rotation of each
  hand (a rigid fit of the palm joints, wrist-relative) / the true future finger articulation seen in
  the last rotation. They split LastPose's MPJPE into the part due to turning hands and the part due to
  bending fingers: a forecaster must predict these changes to beat LastPose on MPJPE.
- ``state_mlp``: a two-layer MLP from the 20 observed frames' joints (offsets from the last pose,
  wrist-relative joints, valid flags) to the 10 future frames, trained here on the train split (L1 on
  the offsets + L1 on wrist-relative joints). A strong reader of past motion, no frames or prompt.
- ``state_mlp_true_objects``: the same MLP, same seed, also given the ground-truth centres of the
  prompt's target and destination objects in the window's canonical frame (EgoSynth's
  ``egosynth/gt/*.npz``): what perfect perception of where the named objects are could add on top of
  the past motion. Skipped (NaN figures) for data without EgoSynth ground truth.

    python bench/predictability.py                 # the demo's data, else EgoSynth bench (as accuracy.py)
    python bench/predictability.py --prep PREP     # any prepared folder (objects from its raw EgoSynth)
    python bench/predictability.py --tiny          # seconds (CI)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import (
    DEFAULT_WORK,
    locate_prepared,
    machine_notes,
    print_figures,
    setup_env,
)

KEYS = ("ade", "fde", "mpjpe", "mpjpe_f")
PALM = (0, 1, 5, 9, 13, 17)  # wrist and the first joint of each finger: rigid while the fingers bend


def palm_rotations(src: np.ndarray, dst: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Rotations R (..., 3, 3) with R @ src_i ~ dst_i over the valid points (least squares, Kabsch).

    src, dst (..., P, 3) wrist-relative points; valid (..., P). Fewer than 4 valid points: identity.
    """
    w = valid[..., None].astype(np.float64)
    a, b = np.where(w > 0, src, 0.0), np.where(w > 0, dst, 0.0)
    H = np.einsum("...pi,...pj->...ij", a, b)  # sum_p a_p b_p^T
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
    D = np.zeros(H.shape)
    D[..., 0, 0] = D[..., 1, 1] = 1.0
    D[..., 2, 2] = np.where(d == 0, 1.0, d)
    R = np.swapaxes(Vt, -1, -2) @ D @ np.swapaxes(U, -1, -2)
    return np.where((valid.sum(-1) >= 4)[..., None, None], R, np.eye(3))


def oracle_forecasts(anchor: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> dict[str, np.ndarray]:
    """LastPose with the true future palm rotation, and with the true future articulation.

    anchor (N, 42, 3) the last pose; gt (N, T, 42, 3), valid (N, T, 42) the future. Returns (N, T, 42, 3) each.
    """
    rot, art = np.empty_like(gt), np.empty_like(gt)
    for h in range(2):
        hand = slice(21 * h, 21 * h + 21)
        a = (anchor[:, hand] - anchor[:, 21 * h, None])[:, None]  # (N, 1, 21, 3)
        g = np.nan_to_num(gt[:, :, hand] - gt[:, :, 21 * h, None])  # (N, T, 21, 3); invalid ones are masked
        a_palm = np.broadcast_to(a[:, :, list(PALM)], g[:, :, list(PALM)].shape)
        ok = valid[:, :, [21 * h + p for p in PALM]] & np.isfinite(a_palm).all(-1)
        R = palm_rotations(np.nan_to_num(a_palm), g[:, :, list(PALM)], ok)  # (N, T, 3, 3)
        wrist = anchor[:, None, 21 * h, None]  # (N, 1, 1, 3)
        rot[:, :, hand] = wrist + np.einsum("ntij,nkj->ntki", R, a[:, 0])  # true rotation, last articulation
        art[:, :, hand] = wrist + np.einsum("ntji,ntkj->ntki", R, g)  # true articulation, last rotation
    return {"oracle_rotation": rot, "oracle_articulation": art}


def object_features(arrays: dict, raw_dir: Path) -> np.ndarray | None:
    """(N, 8) ground-truth target centre (3), destination centre (3) and has-destination flag in each
    window's canonical frame at its last observed frame, and a constant 1; None without EgoSynth gt files."""
    gt_dir = raw_dir / "egosynth" / "gt"
    takes_file = raw_dir / "takes.json"
    if not gt_dir.is_dir() or not takes_file.is_file():
        return None
    takes = {t["take_uid"]: t.get("egosynth", {}) for t in json.loads(takes_file.read_text())}
    out = np.zeros((len(arrays["take_uid"]), 8), np.float32)
    cache: dict[str, dict] = {}
    for n, (uid, frame) in enumerate(zip(arrays["take_uid"], arrays["frame_index"], strict=True)):
        uid = str(uid)
        if uid not in cache:
            with np.load(gt_dir / f"{uid}.npz") as z:
                cache[uid] = {k: z[k] for k in ("frame_numbers", "object_centers", "target_index")}
        g, meta = cache[uid], takes[uid]
        k = int(np.searchsorted(g["frame_numbers"], int(frame)))
        if k >= len(g["frame_numbers"]) or g["frame_numbers"][k] != int(frame):
            raise ValueError(f"{gt_dir / (uid + '.npz')}: no ground truth for frame {int(frame)}")
        C = np.asarray(arrays["canonical_T"][n], np.float64)
        R, t = C[:3, :3], C[:3, 3]
        out[n, :3] = R @ g["object_centers"][k, int(g["target_index"])] + t
        names = list(meta.get("objects", []))
        dest = meta.get("destination_object")
        if dest in names:
            out[n, 3:6] = R @ g["object_centers"][k, names.index(dest)] + t
            out[n, 6] = 1.0
        out[n, 7] = 1.0
    return out


def state_features(arrays: dict, anchor: np.ndarray) -> np.ndarray:
    """(N, F) observed joints as offsets from the last pose (/0.25 m), wrist-relative (/0.1 m), valid flags."""
    pj, pv = np.asarray(arrays["past_joints"], np.float64), np.asarray(arrays["past_valid"], bool)
    wrist = np.repeat([0, 21], 21)
    off = np.where(pv[..., None], (pj - anchor[:, None]) / 0.25, 0.0)
    rel_ok = pv & pv[:, :, wrist]
    rel = np.where(rel_ok[..., None], (pj - pj[:, :, wrist]) / 0.1, 0.0)
    n = len(pj)
    return np.concatenate([off.reshape(n, -1), rel.reshape(n, -1), pv.reshape(n, -1)], 1).astype(np.float32)


def train_mlp(x: np.ndarray, y: np.ndarray, m: np.ndarray, steps: int, width: int, seed: int):
    """MLP x (N, F) -> future offsets (N, 10, 42, 3) / 0.25 m, masked L1 + wrist-relative L1. Returns predict(x)."""
    import torch

    torch.manual_seed(seed)
    X, Y, M = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.float32), torch.as_tensor(m)
    wrist = torch.as_tensor(np.repeat([0, 21], 21))
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], width), torch.nn.GELU(), torch.nn.Linear(width, width),
                              torch.nn.GELU(), torch.nn.Linear(width, Y[0].numel()))
    torch.nn.init.zeros_(net[-1].weight)  # starts at "hold the last pose"
    torch.nn.init.zeros_(net[-1].bias)
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        i = torch.randint(0, len(X), (64,), generator=gen)
        p, y_, m_ = net(X[i]).view(Y[i].shape), Y[i], M[i]
        rel_ok = m_ & m_[:, :, wrist]
        loss = (p - y_).abs()[m_].mean() + ((p - p[:, :, wrist]) - (y_ - y_[:, :, wrist])).abs()[rel_ok].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()

    def predict(xq: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.as_tensor(xq)).view(len(xq), *Y.shape[1:]).numpy()

    return predict


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny EgoSynth and a few MLP steps (CI)")
    ap.add_argument("--prep", type=Path, default=None, help="prepared folder with train and test splits")
    ap.add_argument("--raw", type=Path, default=None, help="its EgoSynth folder (default: from settings.json)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="where generated data goes")
    ap.add_argument("--split", default="test")
    ap.add_argument("--steps", type=int, default=None, help="MLP training steps (default 2000; --tiny 20)")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    setup_env(args.threads)
    from egghand_lib.evaluation import baseline_forecasts, open_datasets
    from egghand_lib.metrics import forecast_metrics

    prep, _ = locate_prepared(args.prep, args.raw, args.work, args.tiny)
    settings = Path(prep) / "settings.json"
    raw_dir = args.raw or (Path(json.loads(settings.read_text())["raw_dir"]) if settings.is_file() else None)
    steps = args.steps or (20 if args.tiny else 2000)

    test, train = open_datasets(prep, args.split, "train", "future")
    A, B = train.arrays(), test.arrays()
    gt, valid = B["future_joints"], B["future_valid"]
    base = baseline_forecasts(B, A, "future", ("CVM", "LastPose"))
    cvm = forecast_metrics(base["CVM"], gt, valid)
    preds = {"lastpose": base["LastPose"], **oracle_forecasts(base["LastPose"][:, 0], gt, valid)}

    anchor_a = baseline_forecasts(A, A, "future", ("LastPose",))["LastPose"][:, 0].astype(np.float64)
    anchor_b = base["LastPose"][:, 0].astype(np.float64)
    xa, xb = state_features(A, anchor_a), state_features(B, anchor_b)
    ya = (np.asarray(A["future_joints"], np.float64) - anchor_a[:, None]) / 0.25
    ma = np.asarray(A["future_valid"], bool) & np.isfinite(ya).all(-1)
    ya = np.nan_to_num(ya)
    objects_a = objects_b = None
    if raw_dir is not None:
        objects_a, objects_b = object_features(A, raw_dir), object_features(B, raw_dir)
    t0 = time.perf_counter()
    predict = train_mlp(xa, ya, ma, steps, args.width, args.seed)
    preds["state_mlp"] = anchor_b[:, None] + 0.25 * predict(xb)
    if objects_a is not None and objects_b is not None:
        def with_objects(x, o, anchor):  # centres, and the target relative to each last wrist
            rel = (o[:, None, :3] - anchor[:, [0, 21]]).reshape(len(o), -1) * o[:, 7:8]
            return np.concatenate([x, o, rel.astype(np.float32)], 1)

        predict_o = train_mlp(with_objects(xa, objects_a, anchor_a), ya, ma, steps, args.width, args.seed)
        preds["state_mlp_true_objects"] = anchor_b[:, None] + 0.25 * predict_o(with_objects(xb, objects_b, anchor_b))
    train_s = time.perf_counter() - t0

    figures: dict[str, float] = {"windows": len(gt), "mlp_steps": steps, "mlp_train_s": train_s}
    figures.update({f"cvm_{k}": cvm[k] for k in KEYS})
    rows = []
    for name, p in preds.items():
        m = forecast_metrics(p, gt, valid)
        rows.append(f"{name:<24}" + "".join(f"{m[k] / cvm[k]:>10.3f}" for k in KEYS))
        for k in (KEYS if name.startswith("state_mlp") else ("ade", "mpjpe")):
            figures[f"{name}_over_cvm_{k}"] = m[k] / cvm[k]
    for k in ("ade", "mpjpe"):
        figures[f"true_objects_gain_{k}"] = (figures[f"state_mlp_over_cvm_{k}"]
                                             / figures.get(f"state_mlp_true_objects_over_cvm_{k}", float("nan")))
    notes = machine_notes() + [
        f"data: {prep}, split {args.split} ({len(gt)} windows); MLP trained on {len(xa)} train windows, "
        f"{steps} steps x batch 64, width {args.width}, seed {args.seed}",
        "object ground truth: " + (str(raw_dir / "egosynth" / "gt") if objects_b is not None else "none (skipped)"),
        f"{'ratio to CVM':<24}" + "".join(f"{k:>10}" for k in KEYS), *rows,
        "true_objects_gain > 1: knowing where the named objects are improves the state MLP",
    ]
    print_figures(figures, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
