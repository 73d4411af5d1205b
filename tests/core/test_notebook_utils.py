"""egghand_lib.notebook_utils: the helpers the notebooks rely on, on small in-memory data."""

from __future__ import annotations

import numpy as np
import pytest

from egghand_lib import notebook_utils as nu
from egghand_lib.data.episodes import Episode
from egghand_lib.data.windows import WindowDataset
from egghand_lib.geometry import look_at_extrinsics


def episodes(n: int = 2, length: int = 32) -> list[Episode]:
    """Episodes whose head turns and walks while two hands move in front of it (world frame, z up)."""
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.03, (42, 3))
    base[21:, 1] += 0.25
    out = []
    for e in range(n):
        t = np.arange(length)
        eye = np.stack([1.0 + 0.01 * t, 2.0 + 0.02 * e * t, np.full(length, 1.5)], 1)
        yaw = 0.3 * e + 0.02 * t
        target = eye + np.stack([np.cos(yaw), np.sin(yaw), np.full(length, -0.5)], 1)
        ext = np.stack([look_at_extrinsics(a, b) for a, b in zip(eye, target, strict=True)]).astype(np.float32)
        joints = (target[:, None] - [0, 0.1, 0] + base[None] + 0.005 * t[:, None, None]).astype(np.float32)
        valid = rng.random((length, 42)) > 0.1
        out.append(Episode(
            take_uid=f"take{e}", episode_index=e, task=f"task {e}", scenario="s", split="train",
            frame_numbers=np.arange(30, 30 + 3 * length, 3), joints=np.where(valid[..., None], joints, 0),
            valid=valid, extrinsics=ext, intrinsics=np.array([[100, 0, 64], [0, 100, 64], [0, 0, 1]], np.float32),
            frames=np.zeros((length, 16, 16, 3), np.uint8),
        ))
    return out


def test_canonical_checks_and_wrist_positions():
    ds = WindowDataset.from_episodes(episodes())
    checks = nu.canonical_checks(ds)
    for name, (value, expected) in checks.items():
        if expected == "0":
            assert abs(value) < 1e-4, name
        else:
            assert value > 0.5, name  # the cameras look ahead and 27 degrees down: forward part cos(27) > 0.5
    md = nu.checks_markdown(checks)
    assert md.count("\n") == len(checks) + 1 and "stored world joints" in md
    assert nu.episode_of(ds, len(ds) - 1).take_uid == "take1"
    assert np.allclose(nu.window_intrinsics(ds, 0), [[100, 0, 64], [0, 100, 64], [0, 0, 1]])
    pos = nu.wrist_positions(ds)
    a = ds.arrays()
    assert len(pos["world frame"]) == len(pos["canonical frame"]) == int(a["past_valid"][:, -1, 0].sum())
    # Canonical positions are the world positions seen from the first observed camera: closer to the origin.
    assert np.linalg.norm(pos["canonical frame"], axis=1).max() < np.linalg.norm(pos["world frame"], axis=1).min()
    picks = nu.pick_windows(ds, 5)
    assert len(picks) == 5 and picks == sorted(picks) and len(set(picks)) == 5


def test_result_tables_from_results_dicts():
    res = {"methods": ["CVM", "EggHand"],
           "metrics": {m: {"egghand": {"all": {"ade": v, "fde": v, "mpjpe": v, "mpjpe_f": v}}}
                       for m, v in (("CVM", 0.3), ("EggHand", 0.2))},
           "per_horizon": {m: {"egghand": {"ade": [0.1, 0.2], "mpjpe": [0.0, 0.1]}} for m in ("CVM", "EggHand")},
           "per_group": {"CVM": {"pour": {"ade": 0.3}, "all": {"ade": 0.3}}, "EggHand": {"pour": {"ade": 0.2}}}}
    assert nu.metrics_rows(res)["EggHand"]["ade"] == 0.2
    assert nu.horizon_curves(res, "mpjpe")["CVM"].tolist() == [0.0, 0.1]
    assert nu.per_group_table(res) == {"pour": {"CVM": 0.3, "EggHand": 0.2}}  # "all" is not a group
    abl = {"rows": [
        {"table": "2 loss", "variant": "L_abs", "status": "ok", "reason": "", "weights": [0.6, 0.0, 0.0],
         "ade": 0.3, "fde": 0.3, "mpjpe": 0.1, "mpjpe_f": 0.1},
        {"table": "3 modality", "variant": "noisy vision", "status": "ok", "reason": "", "ade_vs_clean": 0.05,
         "ade": 0.31, "fde": 0.3, "mpjpe": 0.1, "mpjpe_f": 0.1},
        {"table": "5 head init", "variant": "GR00T-pretrained head", "status": "not run", "reason": "no weights",
         "ade": None, "fde": None, "mpjpe": None, "mpjpe_f": None}]}
    rows, extra = nu.ablation_table(abl, "2 loss")
    assert rows == {"L_abs": {"ade": 0.3, "fde": 0.3, "mpjpe": 0.1, "mpjpe_f": 0.1}}
    assert extra["L_abs"] == {"L_abs": "✓", "L_rel": "", "L_pair": ""}
    _, extra = nu.ablation_table(abl, "3 modality")
    assert extra["noisy vision"] == {"vision": "noise", "language": "✓", "ADE vs clean": "+5.0%"}
    rows, extra = nu.ablation_table(abl, "5 head init")
    assert rows == {"GR00T-pretrained head": {}} and extra["GR00T-pretrained head"]["status"] == "not run: no weights"


def test_paper_setup_status_and_steering_table(tmp_path):
    st = nu.paper_setup_status(None, str(tmp_path))
    assert not st["use_paper"]
    assert any("EgoVideo" in r for r in st["reasons"])
    assert any("model.safetensors.index.json" in r for r in st["reasons"])
    (tmp_path / "ckpt.pth").write_bytes(b"x")
    (tmp_path / "model.safetensors.index.json").write_text("{}")
    st = nu.paper_setup_status(str(tmp_path / "ckpt.pth"), str(tmp_path))
    assert st["use_paper"] == st["cuda"] and all("CUDA" in r for r in st["reasons"])
    cfg = nu.paper_train_config(str(tmp_path / "ckpt.pth"), str(tmp_path), max_steps=3)
    assert cfg.model_preset == "gr00t-n1.5" and cfg.max_steps == 3
    assert cfg.model_overrides["decoder_init"] == "gr00t" and cfg.model_overrides["gr00t_path"] == str(tmp_path)

    ds = WindowDataset.from_episodes(episodes(1))
    w = ds[5]
    own = w["future_joints"].numpy()
    moved = own.copy()
    moved[:, [0, 21]] += [0.0, 0.1, 0.0]  # both wrists 10 cm to the side
    md = nu.steering_markdown({w["task"]: own, "other": moved}, w).splitlines()
    assert md[2].startswith("| **task 0** (own) | 0.0 | - | 0.000 |")
    assert md[3].startswith("| other | 100.0 | - | 0.100 |")
    # An object far along the move: both wrists end 10 cm closer to it; far the other way, 10 cm further.
    point = own[-1, [0, 21]].mean(0) + [0.0, 100.0, 0.0]
    assert nu.pull_toward(moved, own, point) == pytest.approx(0.1, abs=1e-3)
    assert nu.pull_toward(moved, own, point - [0.0, 200.0, 0.0]) == pytest.approx(-0.1, abs=1e-3)
    md = nu.steering_markdown({w["task"]: own, "other": moved}, w, named={"other": point}).splitlines()
    assert md[3].startswith("| other | 100.0 | +100.0 | 0.100 |")


def test_training_history_reads_the_log(tmp_path):
    (tmp_path / "metrics.csv").write_text("step,loss,val_loss\n5,1.0,\n10,0.5,0.7\n")
    h = nu.training_history(tmp_path)
    assert h["step"].tolist() == [5, 10] and np.isnan(h["val_loss"][0]) and h["val_loss"][1] == 0.7
    with pytest.raises(FileNotFoundError, match="metrics.csv"):
        nu.training_history(tmp_path / "nope")


def test_train_or_load_reuses_a_finished_run_and_keeps_another_configs_run(tmp_path):
    from egghand_lib.data.prepared import write_stats
    from egghand_lib.data.statistics import compute_stats
    from tests.fixtures.episodes import make_episodes, write_prepared

    eps = make_episodes(2, num_frames=30, size=8)
    prep = write_prepared(tmp_path / "prep", eps)
    write_stats(prep, compute_stats(eps))
    kw = dict(max_steps=2, batch_size=4, eval_split=None)
    model, run = nu.train_or_load("tiny", prep, tmp_path / "run", progress=False, **kw)
    assert run == tmp_path / "run" and (run / "model" / "config.json").is_file()
    weights = (run / "model" / "model.safetensors").read_bytes()
    again, run2 = nu.train_or_load("tiny", prep, tmp_path / "run", progress=False, **kw)
    assert run2 == run and (run / "model" / "model.safetensors").read_bytes() == weights  # loaded, not retrained
    assert all(np.array_equal(a.detach().numpy(), b.detach().numpy())
               for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))
    # Another config (an older toolkit's lr, say) is not an error: it trains beside the kept run.
    other, run3 = nu.train_or_load("tiny", prep, tmp_path / "run", progress=False, lr=1e-4, **kw)
    from egghand_lib.training import TrainConfig

    digest = TrainConfig.named("tiny", lr=1e-4, **kw).digest()
    assert digest != TrainConfig.named("tiny", **kw).digest() == TrainConfig.named("tiny", log_every=7, **kw).digest()
    from egghand_lib.data.prepared import manifest_path
    from egghand_lib.io import file_sha256

    data = file_sha256(manifest_path(prep))[:8]
    assert run3 == tmp_path / f"run-{digest}-{data}" and (run3 / "model" / "config.json").is_file()
    assert (run / "model" / "model.safetensors").read_bytes() == weights
    _, run4 = nu.train_or_load("tiny", prep, tmp_path / "run", progress=False, lr=1e-4, **kw)
    assert run4 == run3
    # Other data (e.g. regenerated by a newer EgoSynth) with the same config trains beside both runs.
    prep2 = write_prepared(tmp_path / "prep2", make_episodes(3, num_frames=30, size=8))
    write_stats(prep2, compute_stats(make_episodes(3, num_frames=30, size=8)))
    _, run5 = nu.train_or_load("tiny", prep2, tmp_path / "run", progress=False, lr=1e-4, **kw)
    assert run5 not in (run, run3) and (run5 / "model" / "config.json").is_file()
    # The data's name for folders of results (notebook 03's ablations) follows its content.
    assert nu.data_digest(prep) == data != nu.data_digest(prep2)


def test_demo_model_trains_once_loads_folders_and_names_its_choices(tmp_path):
    from egghand_lib.data.prepared import write_stats
    from egghand_lib.data.statistics import compute_stats
    from tests.fixtures.episodes import make_episodes, write_prepared

    eps = make_episodes(2, num_frames=30, size=8)
    prep = write_prepared(tmp_path / "egosynth-x" / "prepared", eps)
    write_stats(prep, compute_stats(eps))
    out = tmp_path / "out"
    model, run, text = nu.demo_model("train-tiny", prep, out, train_steps=2, progress=False)
    assert run == out / "models" / "egosynth-x-tiny-2" and "train-tiny" in text and "2 steps" in text
    weights = (run / "model" / "model.safetensors").read_bytes()
    _, run2, _ = nu.demo_model("train-tiny", prep, out, train_steps=2, progress=False)
    assert run2 == run and (run / "model" / "model.safetensors").read_bytes() == weights  # shared, not retrained
    loaded, run3, text = nu.demo_model(str(run), prep, out)
    assert run3 == run and text.startswith("loaded from")
    window = WindowDataset(prep, "train")[3]
    forecast = nu.forecast_fn(loaded)(window)
    assert np.allclose(forecast, nu.forecast_fn(model)(window), atol=1e-6)
    # Hypothesis 0 is the deterministic forecast (same noise seed); the others differ.
    samples = nu.sample_window(loaded, window, 3)
    assert samples.shape == (3, 10, 42, 3) and np.allclose(samples[0], forecast, atol=1e-6)
    assert not np.allclose(samples[1], forecast)
    with pytest.raises(ValueError, match="train-tiny"):
        nu.demo_model("egghand-giant", prep, out)
    shipped, run4, text = nu.demo_model("egghand-mini", prep, out)  # the shipped model: loaded, nothing trained
    assert run4 is None and text.startswith("egghand-mini:") and not shipped.training
    assert shipped.config.hidden_size == 128 and not (out / "models" / "egosynth-x-egghand-mini-None").exists()
    assert nu.data_folder("runs", "bench", 3).as_posix() == "runs/data/egosynth-bench-seed3"


def test_paper_tables_beside_this_runs():
    m = {"ade": 0.1, "fde": 0.2, "mpjpe": 0.03, "mpjpe_f": 0.04}
    res = {"rows": [
        {"table": "3 modality", "variant": v, "status": "ok", **m} for v in
        ("clean", "noisy vision", "dummy language", "noisy vision + dummy language")] + [
        {"table": "4 egomotion", "variant": f"{name} {sub}", "status": "ok", **m, "ade": ade}
        for name in ("Static", "EggHand") for sub, ade in (("top 10%", 0.5), ("all", 0.4))] + [
        {"table": "4 encoder", "variant": v, "status": "not run", "reason": "no weights"}
        for v in ("EgoVideo", "InternVL3.5-1B")] + [
        {"table": "5 head init", "variant": "GR00T-pretrained head", "status": "not run", "reason": "no weights"},
        {"table": "5 head init", "variant": "random head", "status": "ok", **m}]}
    rows, missing = nu.our_ablation_rows(res, "4 egomotion")
    assert rows["EggHand"] == {"top_ade": 0.5, "top_mpjpe": 0.03, "ade": 0.4, "mpjpe": 0.03}
    assert set(rows) == {"Static", "EggHand"} and set(missing) == {"InternVL3.5-1B"}
    md = nu.paper_vs_ours_markdown("4 egomotion", res).splitlines()
    assert md[0] == ("| row | top-10% ADE paper | top-10% ADE ours | top-10% MPJPE paper | top-10% MPJPE ours "
                     "| ADE paper | ADE ours | MPJPE paper | MPJPE ours |")
    # The paper's rows first, in its order (EgoH4 has no run here), then this run's extra rows.
    assert [r.split(" | ")[0] for r in md[2:]] == ["| EgoH4", "| InternVL3.5-1B", "| EggHand", "| Static"]
    assert md[2] == "| EgoH4 | 0.294 | - | 0.139 | - | 0.267 | - | 0.116 | - |"
    assert md[3].count("not run") == 4
    assert md[4] == "| EggHand | 0.276 | 0.500 | 0.106 | 0.030 | 0.271 | 0.400 | 0.076 | 0.030 |"
    md3 = nu.paper_vs_ours_markdown("3 modality", res).splitlines()
    assert len(md3) == 2 + 4 and md3[-1].startswith("| clean | 0.271 | 0.100 | 0.271 | 0.200 |")
    md5 = nu.paper_vs_ours_markdown("5 head init", res).splitlines()
    assert md5[2].startswith("| random head | 0.321 | 0.100 |") and "not run" in md5[3]
    md2 = nu.paper_vs_ours_markdown("2 loss", {"rows": []}).splitlines()
    assert [r.split(" | ")[0] for r in md2[2:]] == [f"| paper row {k} (label lost)" for k in (1, 2, 3)]
    plan = nu.ablation_plan(("modality", "egomotion", "loss", "head_init", "encoder"), "tiny", 32)
    # 4 loss variants, the offline encoder pair, the random head and the motion MLP (gr00t-mini is cpu-small only)
    assert (plan["trainings"], plan["passes"], plan["steps"]) == (8, 13, 30)
    assert nu.ablation_plan(("head_init",), "tiny", None, gr00t_path="/g")["trainings"] == 3
    assert nu.ablation_plan(("head_init",), "cpu-small", None)["trainings"] == 3
    # The shipped pair for Table 5: two forecast passes, no training
    shipped = nu.table5_head_models("shipped")
    assert list(shipped.values()) == ["egghand-mini", "egghand-mini-random-head"]
    assert nu.table5_head_models("retrain") is None
    with pytest.raises(ValueError, match="TABLE5: 'both'"):
        nu.table5_head_models("both")
    pair = nu.ablation_plan(("loss", "head_init"), "tiny", 32, head_models=shipped)
    assert (pair["trainings"], pair["passes"]) == (4, 4 + 2)
    assert nu.ablation_plan(("encoder",), "tiny", None, egovideo_path="/e", internvl_path="/i")["trainings"] == 4


def test_wrist_speed_conventions_and_window_baselines():
    ds = WindowDataset.from_episodes(episodes())
    a = ds.arrays()
    speed = nu.wrist_speed(a)
    assert speed.shape == (len(ds),)
    for i in (0, 20, 40):  # the mean over the valid consecutive pairs of both wrists, written out
        steps = [np.linalg.norm(a["future_joints"][i, t + 1, w] - a["future_joints"][i, t, w])
                 for w in (0, 21) for t in range(9) if a["future_valid"][i, t, w] and a["future_valid"][i, t + 1, w]]
        assert speed[i] == pytest.approx(np.mean(steps), rel=1e-6)
    assert np.isnan(speed[-1])  # the last window's targets lie past the episode's end: all invalid
    held = nu.window_baselines(ds[7], a)
    assert list(held) == ["Static", "CVM", "LastPose"] and held["LastPose"].shape == (10, 42, 3)
    last = ds[7]["past_joints"][-1].numpy()
    seen = ds[7]["past_valid"][-1].numpy()
    assert np.allclose(held["LastPose"][:, seen], last[seen], atol=1e-6)  # joints seen at t stay put
    rng = np.random.default_rng(1)
    gt, valid = a["future_joints"][:20], a["future_valid"][:20].copy()
    pred = gt + rng.normal(0, 0.02, gt.shape).astype(np.float32)
    valid[:, :, [0, 21]] = True
    valid[:10, 3, 0] = False  # half the windows miss a right wrist once
    conv = nu.metric_conventions(pred, gt, valid)
    full = conv["egghand, wrists always valid"], conv["egoh4, wrists always valid"]
    assert full[0]["ade"] == pytest.approx(full[1]["ade"], rel=1e-9)
    assert full[0]["fde"] == pytest.approx(full[1]["fde"], rel=1e-9)
    assert conv["egghand, all windows"]["ade"] != pytest.approx(conv["egoh4, all windows"]["ade"], rel=1e-9)
    valid[10:, 5, 21] = False
    assert set(nu.metric_conventions(pred, gt, valid)) == {"egghand, all windows", "egoh4, all windows"}
    md = nu.steering_markdown({ds[7]["task"]: held["LastPose"]}, ds[7], baselines={"CVM": held["CVM"]})
    assert md.splitlines()[-1].startswith("| CVM (baseline, no prompt) | - | - |")


def test_paper_and_our_relative_changes():
    m = {"ade": 0.1, "fde": 0.2, "mpjpe": 0.03, "mpjpe_f": 0.04}
    res = {"rows": [{"table": "3 modality", "variant": "clean", "status": "ok", **m},
                    {"table": "3 modality", "variant": "noisy vision", "status": "ok", **m, "ade": 0.11}] + [
        {"table": "4 egomotion", "variant": f"CVM {sub}", "status": "ok", **m, "ade": ade}
        for sub, ade in (("top 10%", 0.12), ("all", 0.1))]}
    ch = nu.paper_vs_ours_changes("3 modality", res)
    assert ch["this run"] == {"noisy vision": pytest.approx(10.0)}
    assert ch["paper (EgoExo4D)"]["noisy vision"] == pytest.approx(100 * (0.287 / 0.271 - 1))
    ch = nu.paper_vs_ours_changes("4 egomotion", res)
    assert ch["this run"] == {"CVM": pytest.approx(20.0)} and set(ch["paper (EgoExo4D)"]) == {
        "EgoH4", "InternVL3.5-1B", "EggHand"}
    with pytest.raises(ValueError, match="relative changes"):
        nu.paper_vs_ours_changes("2 loss", res)
    res["rows"] += [{"table": "4 egomotion", "variant": f"LastPose {sub}", "status": "ok", **m}
                    for sub in ("top 10%", "all")]
    note = "For scale, on the same windows and without a model: LastPose ADE 0.100, MPJPE 0.030."
    assert nu.baseline_scale_note(res) == note
    assert nu.baseline_scale_note({"rows": []}) == ""


def test_camera_steps_calm_and_agitated_and_top_changes():
    ds = WindowDataset.from_episodes(episodes())
    inside = nu.inside_episode(ds)
    assert inside.sum() == 2 * (32 - 29) and not inside[0] and inside[19]  # t-19..t+10 within frames 0..31
    calm, agitated = nu.calm_and_agitated(ds)
    scores = ds.arrays()["egomotion"]
    assert scores[calm] < scores[agitated]
    # Windows well inside an episode: every frame is real, so the score is the mean of the camera steps.
    for i in (calm, agitated):
        steps = nu.camera_steps(ds[i])
        assert steps.shape == (29,) and steps.mean() == pytest.approx(float(scores[i]), rel=1e-4)
    # A camera turning about gravity by 3 degrees per frame turns 15 degrees in half a second (5 frames).
    yaw = np.radians(3.0 * np.arange(30))
    R = np.stack([np.array([[np.sin(a), -np.cos(a), 0], [0, 0, -1], [np.cos(a), np.sin(a), 0]]) for a in yaw])
    E = np.concatenate([R, np.zeros((30, 3, 1))], axis=2)
    assert nu.largest_turn_deg({"past_extrinsics": E[:20], "future_extrinsics": E[20:]}) == pytest.approx(15.0)
    res = {"methods": ["CVM", "X"], "metrics": {
        "CVM": {"egghand": {"all": {"ade": 0.1}, "top": {"ade": 0.15}}}, "X": {"egghand": {"all": {"ade": 0.2}}}}}
    assert nu.top_vs_all_changes(res) == {"CVM": pytest.approx(50.0)}


def test_ablations_with_progress_equal_one_run_of_them_all(tmp_path):
    import json

    from egghand_lib.ablations import run_ablations
    from tests.fixtures.learnable_episodes import fake_datasets, single_thread, tiny_model

    with single_thread():
        train, test = fake_datasets()
        model = tiny_model(train)
        kw = dict(model=model, dataset=test, train_dataset=train, max_windows=30, progress=False,
                  baselines=nu.COMPARED_BASELINES)
        res = nu.run_ablations_with_progress(None, tmp_path / "each", ("modality", "egomotion", "encoder"), **kw)
        once = run_ablations(None, tmp_path / "once", which=("modality", "egomotion", "encoder"), **kw)
    strip = once["rows"]
    assert res["rows"] == strip and res["num_top"] == once["num_top"] > 0
    assert res["vocabulary_size"] == once["vocabulary_size"] and res["which"] == ["modality", "egomotion", "encoder"]
    assert json.loads((tmp_path / "each" / "ablations.json").read_text())["rows"] == json.loads(json.dumps(strip))
    assert {r["variant"] for r in res["rows"] if r["table"] == "4 egomotion"} >= {"LastPose top 10%", "LastPose all"}
