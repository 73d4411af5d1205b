"""How much of EgoSynth's next second can be predicted, and from what: the benchmark's information budget.

On the test windows of a prepared folder, with metrics in the EggHand convention and ratios to CVM on the
same windows, this script measures what each input reveals about the next second (EgoSynth 2's
acceptance test, see data_cards/egosynth.md):

- ``static`` / ``cvm`` / ``lastpose``: the baselines (``egghand_lib.baselines``; LastPose holds every joint
  where it was last seen).
- ``oracle_rotation`` / ``oracle_articulation``: the last pose given the true future rotation of each
  hand (a rigid fit of the palm joints, wrist-relative) / the true future finger articulation seen in
  the last rotation. They split LastPose's MPJPE into the part due to turning hands and the part due to
  bending fingers.
- ``state_mlp``: a two-layer MLP from 7 of the 20 observed frames' joints (``STATE_FRAMES``; offsets from the last pose,
  wrist-relative joints, valid flags) to the 10 future frames, trained here on the train split (L1 on
  the offsets + L1 on wrist-relative joints). A strong reader of past motion, no frames or prompt.
- ``state_mlp_true_objects``: the same MLP, same seed, also given the ground-truth centres of the
  prompt's target and destination objects in the window's canonical frame at its last observed frame
  (EgoSynth's ``egosynth/gt/*.npz``): perfect perception of where the named objects are (the oracle).
- ``state_mlp_true_objects_pointer``: the oracle with pointer outputs (``train_mlp``'s ``goals``): it can move
  each hand towards either named object by weights it predicts, rather than learn the geometry from coordinates;
  without positions it is the state MLP. A learner that shows more of what the positions are worth.
- ``state_mlp_family``: the same MLP given the task family (one-hot), i.e. what the prompt says to do.
- ``state_mlp_family_true_objects``: both; ``state_mlp_true_objects_cue``: the oracle plus the cue lamp's
  state at the last observed frame (what the frames show about the phase of the task).
- ``state_mlp_true_next_move``: the MLP given what no input states outright: the true goal of the next move
  towards a named object (relative to each last wrist) and the time until it starts. A ceiling for what
  perception of the scene and the task could add for this learner.
- decision windows: the fraction of windows in which some wrist moves more than 3 cm in the next second and
  either starts from rest (slower than 5 cm/s over the last 0.3 s) or turns more than 45 degrees from its
  past velocity (``decision_windows_fraction``, split into ``rest_start_fraction`` / ``turn_fraction``), and
  from the ground truth the fraction whose horizon holds the onset of a move towards a named object.

Object, family and cue probes need EgoSynth ground truth (NaN figures otherwise).

The probes are data-limited on the bench preset's 144 training takes (the oracle's gain grew from 11% to 21% ADE
with 3x the takes in a probe run of 1 December). ``--extra-train-takes N`` also trains every MLP probe on N more
EgoSynth takes (bench preset, seed ``EXTRA_SEED``, rendered at 64 px, train split only; generated and prepared
into ``--work`` once): the same test windows, a learner that has seen enough scenes to show what the inputs hold.

    python bench/predictability.py                 # the demo's data, else EgoSynth bench (as accuracy.py)
    python bench/predictability.py --prep PREP     # any prepared folder (objects from its raw EgoSynth)
    python bench/predictability.py --tiny          # seconds (CI)
    python bench/predictability.py --prep PREP --extra-train-takes 1000   # probes trained on 1,000 more takes
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
EXTRA_SEED = 1  # the extra probe-training takes: another seed than the bench's (0)
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


def _ground_truth(raw_dir: Path, uid: str, cache: dict) -> dict:
    if uid not in cache:
        with np.load(raw_dir / "egosynth" / "gt" / f"{uid}.npz") as z:
            cache[uid] = {k: z[k] for k in z.files}
    return cache[uid]


def _frame_rows(g: dict, frames: np.ndarray, path: Path) -> np.ndarray:
    k = np.searchsorted(g["frame_numbers"], frames)
    bad = (k >= len(g["frame_numbers"])) | (g["frame_numbers"][np.minimum(k, len(g["frame_numbers"]) - 1)] != frames)
    if bad.any():
        raise ValueError(f"{path}: no ground truth for frame {int(frames[bad][0])}")
    return k


def egosynth_features(arrays: dict, raw_dir: Path) -> dict[str, np.ndarray] | None:
    """Per window, from EgoSynth's ground truth at its last observed frame (None without gt files):

    objects (N, 8): target centre (3), destination centre (3) in the window's canonical frame, has-destination
    flag, a constant 1; family (N, 8) one-hot task family; cue (N, 2) lamp phase and go flag; onsets (N,)
    bool: a move towards a named object starts in the next second (observed frame t, onset in (t, t + 1 s]).
    """
    gt_dir, takes_file = raw_dir / "egosynth" / "gt", raw_dir / "takes.json"
    if not gt_dir.is_dir() or not takes_file.is_file():
        return None
    from egghand_lib.data.egosynth import FAMILIES, FPS

    takes = {t["take_uid"]: t.get("egosynth", {}) for t in json.loads(takes_file.read_text())}
    n = len(arrays["take_uid"])
    out = {"objects": np.zeros((n, 8), np.float32), "family": np.zeros((n, len(FAMILIES)), np.float32),
           "cue": np.zeros((n, 2), np.float32), "onsets": np.zeros(n, bool), "next": np.zeros((n, 4), np.float32)}
    uids = np.asarray(arrays["take_uid"]).astype(str)
    frames = np.asarray(arrays["frame_index"], np.int64)
    C = np.asarray(arrays["canonical_T"], np.float64)
    cache: dict[str, dict] = {}
    for uid in np.unique(uids):
        rows = np.flatnonzero(uids == uid)
        g, meta = _ground_truth(raw_dir, uid, cache), takes[uid]
        k = _frame_rows(g, frames[rows], gt_dir / f"{uid}.npz")
        R, t = C[rows, :3, :3], C[rows, :3, 3]
        out["objects"][rows, :3] = np.einsum("nij,nj->ni", R, g["object_centers"][k, int(g["target_index"])]) + t
        dest = int(g["destination_index"]) if "destination_index" in g else (
            meta["objects"].index(meta["destination_object"]) if meta.get("destination_object") else -1)
        if dest >= 0:
            out["objects"][rows, 3:6] = np.einsum("nij,nj->ni", R, g["object_centers"][k, dest]) + t
            out["objects"][rows, 6] = 1.0
        out["objects"][rows, 7] = 1.0
        if meta.get("task_family") in FAMILIES:
            out["family"][rows, FAMILIES.index(meta["task_family"])] = 1.0
        if "cue_phase" in g:
            out["cue"][rows] = np.stack([g["cue_phase"][k], g["cue_go"][k].astype(np.float32)], 1)
            onset = g["onset_times"][g["onset_goals"] >= 0]
            now = frames[rows][:, None] / FPS
            out["onsets"][rows] = ((onset[None] > now + 1e-6) & (onset[None] <= now + 1.0 + 1e-6)).any(1)
            # The next move towards a named object: where its leading hand's grip point goes and when it starts.
            named = g["onset_goals"] >= 0
            order = np.argsort(g["onset_times"][named], kind="stable")
            goal_t = g["onset_times"][named][order].astype(np.float64)
            goal_p = g["onset_goal_positions"][named].astype(np.float64).reshape(-1, 3)[order]
            if len(goal_t):
                nxt = np.searchsorted(goal_t, now[:, 0] + 1e-6, side="right")
                has, k_next = nxt < len(goal_t), np.minimum(nxt, len(goal_t) - 1)
                canon = np.einsum("nij,nj->ni", R, goal_p[k_next]) + t
                out["next"][rows, :3] = np.where(has[:, None], canon, 0.0)
                out["next"][rows, 3] = np.where(has, np.minimum(goal_t[k_next] - now[:, 0], 2.0), 2.0)
            else:
                out["next"][rows, 3] = 2.0
    return out


def decision_windows(arrays: dict, rest_speed: float = 0.05, min_move: float = 0.03,
                     turn_deg: float = 45.0) -> dict[str, np.ndarray]:
    """Per window (N,) bool: some wrist moves > ``min_move`` m in the horizon and starts from rest (slower than
    ``rest_speed`` m/s over the last 3 observed frames) or turns more than ``turn_deg`` from that velocity
    (direction of its largest future displacement). Hands without the needed valid wrists do not count."""
    pj, pv = np.asarray(arrays["past_joints"], np.float64), np.asarray(arrays["past_valid"], bool)
    fj, fv = np.asarray(arrays["future_joints"], np.float64), np.asarray(arrays["future_valid"], bool)
    rest = np.zeros(len(pj), bool)
    turn = np.zeros(len(pj), bool)
    for w in (0, 21):
        ok = pv[:, -1, w] & pv[:, -4, w]
        vel = (pj[:, -1, w] - pj[:, -4, w]) / 0.3
        disp = np.where(fv[:, :, w, None], fj[:, :, w] - pj[:, -1, None, w], 0.0)  # (N, T, 3)
        size = np.linalg.norm(disp, axis=-1)
        far = disp[np.arange(len(pj)), size.argmax(1)]
        moves = ok & (size.max(1) > min_move)
        speed = np.linalg.norm(vel, axis=-1)
        cos = (far * vel).sum(-1) / np.maximum(np.linalg.norm(far, axis=-1) * speed, 1e-12)
        rest |= moves & (speed < rest_speed)
        turn |= moves & (speed >= rest_speed) & (cos < np.cos(np.radians(turn_deg)))
    return {"rest": rest, "turn": turn & ~rest, "any": rest | turn}


# The observed frames the state MLP sees: the last three (velocity, acceleration), then sparser back to 2 s.
# All 20 frames overfit: on bench-sized EgoSynth 2 the MLP's test ADE was 0.35 of CVM with them and 0.30 with
# these seven, and a weaker past-motion baseline would flatter every probe measured against it.
STATE_FRAMES = (0, 8, 12, 15, 17, 18, 19)


def state_features(arrays: dict, anchor: np.ndarray, frames=STATE_FRAMES) -> np.ndarray:
    """(N, F) the observed joints of ``frames`` as offsets from the last pose (/0.25 m), wrist-relative (/0.1 m),
    valid flags."""
    pj = np.asarray(arrays["past_joints"], np.float64)[:, list(frames)]
    pv = np.asarray(arrays["past_valid"], bool)[:, list(frames)]
    wrist = np.repeat([0, 21], 21)
    off = np.where(pv[..., None], (pj - anchor[:, None]) / 0.25, 0.0)
    rel_ok = pv & pv[:, :, wrist]
    rel = np.where(rel_ok[..., None], (pj - pj[:, :, wrist]) / 0.1, 0.0)
    n = len(pj)
    return np.concatenate([off.reshape(n, -1), rel.reshape(n, -1), pv.reshape(n, -1)], 1).astype(np.float32)


def train_mlp(x: np.ndarray, y: np.ndarray, m: np.ndarray, steps: int, width: int, seed: int, val=None,
              eval_every: int = 250, batch: int = 256, goals: np.ndarray | None = None):
    """MLP x (N, F) -> future offsets (N, 10, 42, 3) / 0.25 m, masked L1 + wrist-relative L1. Returns predict(x).

    Inputs are standardised with the training windows' mean and spread (a feature's scale must not decide
    whether the MLP can use it). ``val``: optional (x, y, m) of validation windows (+ their goals); the weights
    with the lowest validation loss (checked every ``eval_every`` steps) are kept, so that inputs that overfit
    sooner are not penalised for it.

    ``goals`` (N, G, 2, 3): optional places relative to each hand's last wrist (metres; zeros where absent). The
    MLP then also outputs weights a (N, 10, G, 2), and each hand moves rigidly by sum_g a * goal: a learner that
    can move a hand towards a given place without having to learn the subtraction. Then predict(x, goals).
    """
    import torch

    torch.manual_seed(seed)
    mean, scale = x.mean(0), x.std(0) + 1e-3
    X, Y, M = torch.as_tensor((x - mean) / scale), torch.as_tensor(y, dtype=torch.float32), torch.as_tensor(m)
    wrist = torch.as_tensor(np.repeat([0, 21], 21))
    hand_of = torch.as_tensor(np.repeat([0, 1], 21))
    n_out, T = Y[0].numel(), Y.shape[1]
    n_goals = 0 if goals is None else goals.shape[1]
    GL = None if goals is None else torch.as_tensor(goals, dtype=torch.float32)
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], width), torch.nn.GELU(), torch.nn.Linear(width, width),
                              torch.nn.GELU(), torch.nn.Linear(width, n_out + T * n_goals * 2))
    torch.nn.init.zeros_(net[-1].weight)  # starts at "hold the last pose"
    torch.nn.init.zeros_(net[-1].bias)
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)

    def forward(xb, gb):
        out = net(xb)
        p = out[:, :n_out].view(len(xb), *Y.shape[1:])
        if gb is None:
            return p
        a = out[:, n_out:].view(len(xb), T, n_goals, 2)
        move = torch.einsum("ntgh,nghc->nthc", a, gb) / 0.25  # (n, T, 2, 3) in the targets' units
        return p + move[:, :, hand_of]

    def loss_of(p, y_, m_):
        rel_ok = m_ & m_[:, :, wrist]
        return (p - y_).abs()[m_].mean() + ((p - p[:, :, wrist]) - (y_ - y_[:, :, wrist])).abs()[rel_ok].mean()

    if val is not None:
        XV, YV, MV = (torch.as_tensor((val[0] - mean) / scale), torch.as_tensor(val[1], dtype=torch.float32),
                      torch.as_tensor(val[2]))
        GV = None if goals is None else torch.as_tensor(val[3], dtype=torch.float32)
    best, best_state = float("inf"), None
    for step in range(steps):
        i = torch.randint(0, len(X), (batch,), generator=gen)
        loss = loss_of(forward(X[i], None if GL is None else GL[i]), Y[i], M[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if val is not None and ((step + 1) % eval_every == 0 or step + 1 == steps):
            with torch.no_grad():
                v = float(loss_of(forward(XV, GV), YV, MV))
            if v < best:
                best, best_state = v, {k: t.clone() for k, t in net.state_dict().items()}
    if best_state is not None:
        net.load_state_dict(best_state)

    def predict(xq: np.ndarray, gq: np.ndarray | None = None) -> np.ndarray:
        with torch.no_grad():
            g = None if goals is None else torch.as_tensor(gq, dtype=torch.float32)
            return forward(torch.as_tensor((xq - mean) / scale), g).numpy()

    return predict


def object_goals(f: dict, anchor: np.ndarray) -> np.ndarray:
    """(N, 2, 2, 3): the target and destination centres relative to each hand's last wrist (zeros if absent)."""
    o = f["objects"]
    places = np.stack([o[:, :3], o[:, 3:6]], 1)  # (N, 2, 3)
    present = np.stack([o[:, 7] > 0, o[:, 6] > 0], 1)
    rel = places[:, :, None, :] - anchor[:, None, [0, 21], :]
    return np.where(present[:, :, None, None], rel, 0.0).astype(np.float32)


def extra_train_windows(work: Path, num_takes: int) -> tuple[dict, Path]:
    """The windows (arrays) of ``num_takes`` extra EgoSynth training takes (bench preset, seed EXTRA_SEED, 64 px
    renders, prepared at 32 px: the probes read no pixels), generated and prepared under ``work`` on first use;
    and their EgoSynth folder (for the ground truth)."""
    from egghand_lib.data.egosynth import generate_egosynth
    from egghand_lib.data.prepare import prepare_dataset
    from egghand_lib.data.sources import open_windows

    root = Path(work) / f"probe_train_seed{EXTRA_SEED}_{num_takes}"
    raw = generate_egosynth(root / "raw", preset="bench", seed=EXTRA_SEED, image_size=64,
                            num_takes={"train": num_takes, "val": 0, "test": 0})
    prepare_dataset(raw, root / "prep", splits=("train",), size=32)
    return open_windows("train", "future", prep_dir=root / "prep", load_frames=False).arrays(), Path(raw)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny EgoSynth and a few MLP steps (CI)")
    ap.add_argument("--prep", type=Path, default=None, help="prepared folder with train and test splits")
    ap.add_argument("--raw", type=Path, default=None, help="its EgoSynth folder (default: from settings.json)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="where generated data goes")
    ap.add_argument("--split", default="test")
    ap.add_argument("--steps", type=int, default=None, help="MLP training steps (default 3000; --tiny 20)")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--extra-train-takes", type=int, default=0,
                    help="also train the probes on N more EgoSynth takes of seed EXTRA_SEED (made in --work)")
    args = ap.parse_args()
    setup_env(args.threads)
    from egghand_lib.evaluation import baseline_forecasts, open_datasets
    from egghand_lib.metrics import forecast_metrics

    prep, _ = locate_prepared(args.prep, args.raw, args.work, args.tiny)
    settings = Path(prep) / "settings.json"
    raw_dir = args.raw or (Path(json.loads(settings.read_text())["raw_dir"]) if settings.is_file() else None)
    steps = args.steps or (20 if args.tiny else 3000)

    test, train = open_datasets(prep, args.split, "train", "future")
    val, _ = open_datasets(prep, "val", "train", "future", train_dataset=train)
    A, B, V = train.arrays(), test.arrays(), val.arrays()
    gt, valid = B["future_joints"], B["future_valid"]
    base = baseline_forecasts(B, A, "future", ("Static", "CVM", "LastPose"))
    cvm = forecast_metrics(base["CVM"], gt, valid)
    preds = {"static": base["Static"], "lastpose": base["LastPose"],
             **oracle_forecasts(base["LastPose"][:, 0], gt, valid)}

    anchor_a = baseline_forecasts(A, A, "future", ("LastPose",))["LastPose"][:, 0].astype(np.float64)
    anchor_b = base["LastPose"][:, 0].astype(np.float64)
    anchor_v = baseline_forecasts(V, A, "future", ("LastPose",))["LastPose"][:, 0].astype(np.float64)

    def targets(arrays, anchor):
        y = (np.asarray(arrays["future_joints"], np.float64) - anchor[:, None]) / 0.25
        return np.nan_to_num(y), np.asarray(arrays["future_valid"], bool) & np.isfinite(y).all(-1)

    (ya, ma), (yv, mv) = targets(A, anchor_a), targets(V, anchor_v)
    xa, xb, xv = state_features(A, anchor_a), state_features(B, anchor_b), state_features(V, anchor_v)
    fa = fb = fv = None
    if raw_dir is not None:
        fa, fb, fv = (egosynth_features(a, raw_dir) for a in (A, B, V))

    def with_objects(x, f, anchor):  # centres, and the target / destination relative to each last wrist
        o = f["objects"]
        rel = np.concatenate([(o[:, None, :3] - anchor[:, [0, 21]]).reshape(len(o), -1) * o[:, 7:8],
                              (o[:, None, 3:6] - anchor[:, [0, 21]]).reshape(len(o), -1) * o[:, 6:7]], 1)
        return np.concatenate([x, o, rel.astype(np.float32)], 1)

    n_extra = 0
    if args.extra_train_takes > 0:
        E, extra_raw = extra_train_windows(args.work, args.extra_train_takes)
        anchor_e = baseline_forecasts(E, A, "future", ("LastPose",))["LastPose"][:, 0].astype(np.float64)
        ye, me = targets(E, anchor_e)
        xe, fe = state_features(E, anchor_e), egosynth_features(E, extra_raw) if fa is not None else None
        n_extra = len(xe)
        xa, ya, ma, anchor_a = (np.concatenate(p) for p in ((xa, xe), (ya, ye), (ma, me), (anchor_a, anchor_e)))
        if fa is not None:
            fa = {k: np.concatenate([fa[k], fe[k]]) for k in fa}
    splits = ((xa, fa, anchor_a), (xb, fb, anchor_b), (xv, fv, anchor_v))  # train, test, val
    inputs = {"state_mlp": [x for x, _, _ in splits]}
    if all(f is not None for _, f, _ in splits):
        inputs["state_mlp_true_objects"] = [with_objects(x, f, a) for x, f, a in splits]
        inputs["state_mlp_family"] = [np.concatenate([x, f["family"]], 1) for x, f, _ in splits]
        inputs["state_mlp_family_true_objects"] = [np.concatenate([o, f["family"]], 1) for o, (_, f, _) in
                                                   zip(inputs["state_mlp_true_objects"], splits, strict=True)]
        inputs["state_mlp_true_objects_cue"] = [np.concatenate([o, f["cue"]], 1) for o, (_, f, _) in
                                                zip(inputs["state_mlp_true_objects"], splits, strict=True)]
        # A ceiling for what any perception of the scene could add: the true goal of the next move towards a
        # named object (relative to each last wrist) and its true onset time.
        inputs["state_mlp_true_next_move"] = [
            np.concatenate([x, f["next"], (f["next"][:, None, :3] - a[:, [0, 21]]).reshape(len(x), -1)
                            .astype(np.float32)], 1) for x, f, a in splits]
    t0 = time.perf_counter()
    for name, (x_train, x_test, x_val) in inputs.items():
        predict = train_mlp(x_train, ya, ma, steps, args.width, args.seed, val=(x_val, yv, mv))
        preds[name] = anchor_b[:, None] + 0.25 * predict(x_test)
    if "state_mlp_true_objects" in inputs:  # the oracle with pointer outputs (train_mlp's ``goals``)
        x_train, x_test, x_val = inputs["state_mlp_true_objects"]
        g_train, g_test, g_val = (object_goals(f, a) for _, f, a in splits)
        predict = train_mlp(x_train, ya, ma, steps, args.width, args.seed, val=(x_val, yv, mv, g_val), goals=g_train)
        preds["state_mlp_true_objects_pointer"] = anchor_b[:, None] + 0.25 * predict(x_test, g_test)
    train_s = time.perf_counter() - t0

    decision = decision_windows(B)
    figures: dict[str, float] = {"windows": len(gt), "mlp_steps": steps, "mlp_train_s": train_s,
                                 "mlp_train_windows": len(xa), "extra_train_windows": n_extra}
    figures.update({f"cvm_{k}": cvm[k] for k in KEYS})
    rows, metrics = [], {}
    for name, p in preds.items():
        m = metrics[name] = forecast_metrics(p, gt, valid)
        rows.append(f"{name:<30}" + "".join(f"{m[k] / cvm[k]:>10.3f}" for k in KEYS))
        for k in (KEYS if name.startswith("state_mlp") else ("ade", "mpjpe")):
            figures[f"{name}_over_cvm_{k}"] = m[k] / cvm[k]
    nan = {k: float("nan") for k in KEYS}
    for k in ("ade", "mpjpe"):
        base_k = metrics["state_mlp"][k]
        figures[f"true_objects_gain_{k}"] = base_k / metrics.get("state_mlp_true_objects", nan)[k]
        for probe, label in (("true_objects", "true_objects"), ("true_objects_pointer", "true_objects_pointer"),
                             ("family", "family"),
                             ("family_true_objects", "family_true_objects"), ("true_objects_cue", "true_objects_cue"),
                             ("true_next_move", "true_next_move")):
            figures[f"{label}_improvement_{k}"] = 1.0 - metrics.get(f"state_mlp_{probe}", nan)[k] / base_k
    figures["decision_windows_fraction"] = float(decision["any"].mean())
    figures["rest_start_fraction"] = float(decision["rest"].mean())
    figures["turn_fraction"] = float(decision["turn"].mean())
    figures["named_object_onset_fraction"] = float(fb["onsets"].mean()) if fb is not None else float("nan")
    notes = machine_notes() + [
        f"data: {prep}, split {args.split} ({len(gt)} windows); MLPs trained on {len(xa)} train windows "
        f"({n_extra} of them from {args.extra_train_takes} extra takes of seed {EXTRA_SEED}), "
        f"{steps} steps x batch 256, width {args.width}, seed {args.seed}, weights of the best of {len(xv)} "
        "val windows' loss kept",
        "EgoSynth ground truth: " + (str(raw_dir / "egosynth" / "gt") if fb is not None else "none (skipped)"),
        f"{'ratio to CVM':<30}" + "".join(f"{k:>10}" for k in KEYS), *rows,
        "targets (EgoSynth 2): true_objects_improvement_ade >= 0.30, true_objects_improvement_mpjpe >= 0.10, "
        "family_improvement_ade >= 0.10",
    ]
    print_figures(figures, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
